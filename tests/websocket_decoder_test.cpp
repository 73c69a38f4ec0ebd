// WebSocket stage: the upgrade, every frame shape, masking, fragmentation,
// control frames between fragments, errors, resynchronisation, and the same
// results whatever the chunking (down to one byte at a time).
#include "mqttlive/websocket_decoder.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace mqttlive {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

const std::string kRequest =
    "GET /mqtt HTTP/1.1\r\nHost: broker:8083\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    "Sec-WebSocket-Protocol: mqtt\r\n\r\n";
const std::string kResponse =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";

struct FrameSpec {
  uint8_t opcode = 2;
  bool fin = true;
  bool masked = true;
  uint8_t rsv = 0;  // bits 0x70
  uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};
  int len_form = 0;  // 0: shortest, 16 or 64: force that extended length
};

Bytes frame(const Bytes& payload, const FrameSpec& s = {}) {
  Bytes f;
  f.push_back(static_cast<uint8_t>((s.fin ? 0x80 : 0) | s.rsv | s.opcode));
  const uint8_t m = s.masked ? 0x80 : 0;
  const uint64_t n = payload.size();
  if (s.len_form == 64 || (s.len_form == 0 && n > 0xffff)) {
    f.push_back(m | 127);
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<uint8_t>(n >> (8 * i)));
  } else if (s.len_form == 16 || (s.len_form == 0 && n > 125)) {
    f.push_back(m | 126);
    f.push_back(static_cast<uint8_t>(n >> 8));
    f.push_back(static_cast<uint8_t>(n));
  } else {
    f.push_back(static_cast<uint8_t>(m | n));
  }
  if (s.masked) f.insert(f.end(), s.key, s.key + 4);
  for (size_t i = 0; i < n; ++i) f.push_back(s.masked ? static_cast<uint8_t>(payload[i] ^ s.key[i & 3]) : payload[i]);
  return f;
}

FrameSpec serverFrame(uint8_t opcode = 2, bool fin = true) {
  FrameSpec s;
  s.masked = false;
  s.opcode = opcode;
  s.fin = fin;
  return s;
}
FrameSpec clientFrame(uint8_t opcode = 2, bool fin = true) {
  FrameSpec s;
  s.opcode = opcode;
  s.fin = fin;
  return s;
}

Bytes pattern(size_t n, uint8_t seed = 1) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 8));
  return b;
}

struct Recorder : WebSocketCallbacks {
  Bytes payload;
  std::vector<WsError> errors;
  std::vector<WsOpcode> controls;
  int upgraded = 0;
  int lost = 0;
  void onWsPayload(std::span<const uint8_t> b) override { payload.insert(payload.end(), b.begin(), b.end()); }
  void onWsPayloadLost() override { ++lost; }
  void onWsUpgraded() override { ++upgraded; }
  void onWsControl(WsOpcode op) override { controls.push_back(op); }
  void onWsError(WsError e) override { errors.push_back(e); }
  size_t count(WsError e) const {
    size_t n = 0;
    for (auto x : errors) n += x == e;
    return n;
  }
};

// Feeds `bytes` in pieces of `piece` bytes (0 = all at once).
Recorder run(const Bytes& bytes, bool from_client, size_t piece = 0, const WebSocketLimits& limits = {},
             WebSocketDecoder* dec_out = nullptr, bool midstream = false) {
  WebSocketDecoder local(from_client);
  WebSocketDecoder& d = dec_out ? *dec_out : local;
  if (midstream) d.startMidstream();
  Recorder r;
  if (piece == 0) piece = bytes.size() + 1;
  for (size_t off = 0; off < bytes.size(); off += piece) {
    const size_t k = std::min(piece, bytes.size() - off);
    d.feed(std::span<const uint8_t>(bytes.data() + off, k), limits, r);
  }
  return r;
}

TEST(WebSocket, UpgradeThenMaskedClientFrame) {
  const Bytes mqtt = {0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00};
  WebSocketDecoder d(true);
  auto r = run(text(kRequest) + frame(mqtt, clientFrame()), true, 0, {}, &d);
  EXPECT_EQ(r.upgraded, 1);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.payload, mqtt);
  EXPECT_TRUE(d.upgraded());
}

TEST(WebSocket, ServerResponseAndUnmaskedFrame) {
  const Bytes connack = {0x20, 0x02, 0x00, 0x00};
  auto r = run(text(kResponse) + frame(connack, serverFrame()), false);
  EXPECT_EQ(r.upgraded, 1);
  EXPECT_TRUE(r.errors.empty());
  EXPECT_EQ(r.payload, connack);
}

TEST(WebSocket, EveryLengthForm) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{125}, size_t{126}, size_t{127}, size_t{65535}, size_t{65536},
                   size_t{70000}}) {
    for (bool client : {true, false}) {
      SCOPED_TRACE(std::to_string(n) + (client ? " client" : " server"));
      const Bytes p = pattern(n, static_cast<uint8_t>(n));
      auto r = run(text(client ? kRequest : kResponse) + frame(p, client ? clientFrame() : serverFrame()), client);
      EXPECT_TRUE(r.errors.empty());
      EXPECT_EQ(r.payload, p);
    }
  }
  // Non-minimal length encodings are legal enough to decode.
  for (int form : {16, 64}) {
    FrameSpec s = clientFrame();
    s.len_form = form;
    auto r = run(text(kRequest) + frame(pattern(10), s), true);
    EXPECT_TRUE(r.errors.empty());
    EXPECT_EQ(r.payload, pattern(10));
  }
}

TEST(WebSocket, MaskingAcrossChunkBoundaries) {
  Bytes all = text(kRequest);
  Bytes want;
  for (int i = 0; i < 5; ++i) {
    FrameSpec s = clientFrame();
    for (int k = 0; k < 4; ++k) s.key[k] = static_cast<uint8_t>(0x11 * (i + 1) + k * 0x40);
    const Bytes p = pattern(static_cast<size_t>(3 + 250 * i), static_cast<uint8_t>(i));
    all = all + frame(p, s);
    want = want + p;
  }
  for (size_t piece : {size_t{1}, size_t{2}, size_t{3}, size_t{5}, size_t{7}, size_t{513}, size_t{0}}) {
    SCOPED_TRACE(piece);
    auto r = run(all, true, piece);
    EXPECT_TRUE(r.errors.empty());
    EXPECT_EQ(r.payload, want);
  }
}

TEST(WebSocket, FragmentedMessageWithControlFramesInBetween) {
  const Bytes a = pattern(10, 1), b = pattern(300, 2), c = pattern(5, 3);
  Bytes all = text(kRequest) + frame(a, clientFrame(2, false)) + frame(text("hi"), clientFrame(9)) +
              frame(b, clientFrame(0, false)) + frame({}, clientFrame(10)) + frame(c, clientFrame(0, true)) +
              frame(pattern(4, 9), clientFrame());
  for (size_t piece : {size_t{0}, size_t{1}, size_t{4}}) {
    SCOPED_TRACE(piece);
    auto r = run(all, true, piece);
    EXPECT_TRUE(r.errors.empty());
    EXPECT_EQ(r.payload, a + b + c + pattern(4, 9));
    EXPECT_EQ(r.controls, (std::vector<WsOpcode>{WsOpcode::kPing, WsOpcode::kPong}));
  }
}

TEST(WebSocket, CloseFrameIsExposed) {
  WebSocketDecoder d(false);
  Bytes close_payload = {0x03, 0xe8};  // 1000 normal closure
  auto r = run(text(kResponse) + frame(pattern(3), serverFrame()) + frame(close_payload, serverFrame(8)), false, 1,
               {}, &d);
  EXPECT_EQ(r.controls, std::vector<WsOpcode>{WsOpcode::kClose});
  EXPECT_TRUE(d.closeSeen());
  EXPECT_EQ(r.payload, pattern(3));
}

TEST(WebSocket, OneByteAtATimeMatchesWhole) {
  std::mt19937 rng(42);
  Bytes all = text(kRequest);
  for (int i = 0; i < 40; ++i) {
    const auto n = static_cast<size_t>(rng() % 400);
    const int kind = static_cast<int>(rng() % 4);
    if (kind == 0) {
      all = all + frame(pattern(static_cast<size_t>(rng() % 20)), clientFrame(9));
    } else {
      FrameSpec s = clientFrame();
      s.key[0] = static_cast<uint8_t>(rng());
      s.key[3] = static_cast<uint8_t>(rng());
      all = all + frame(pattern(n, static_cast<uint8_t>(i)), s);
    }
  }
  auto whole = run(all, true);
  auto bytewise = run(all, true, 1);
  std::uniform_int_distribution<size_t> dist(1, 64);
  WebSocketDecoder d(true);
  Recorder random;
  for (size_t off = 0; off < all.size();) {
    const size_t k = std::min(dist(rng), all.size() - off);
    d.feed(std::span<const uint8_t>(all.data() + off, k), {}, random);
    off += k;
  }
  EXPECT_TRUE(whole.errors.empty());
  EXPECT_EQ(whole.payload, bytewise.payload);
  EXPECT_EQ(whole.payload, random.payload);
  EXPECT_EQ(whole.controls, bytewise.controls);
}

TEST(WebSocket, BadUpgrades) {
  auto post = run(text("POST /mqtt HTTP/1.1\r\nUpgrade: websocket\r\n\r\n") + frame(pattern(4), clientFrame()), true);
  EXPECT_EQ(post.errors, std::vector<WsError>{WsError::kBadUpgrade});
  EXPECT_TRUE(post.payload.empty());

  auto refused = run(text("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") + frame(pattern(4), serverFrame()),
                     false);
  EXPECT_EQ(refused.errors, std::vector<WsError>{WsError::kBadUpgrade});
  EXPECT_TRUE(refused.payload.empty());

  auto no_upgrade = run(text("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), true);
  EXPECT_EQ(no_upgrade.errors, std::vector<WsError>{WsError::kBadUpgrade});
  EXPECT_EQ(no_upgrade.upgraded, 0);

  // Upgrade header spelled differently, several protocols offered: fine.
  auto mixed = run(text("GET / HTTP/1.1\r\nuPGRADE:  WebSocket \r\nsec-websocket-protocol: wamp, MQTT\r\n\r\n") +
                       frame(pattern(2), clientFrame()),
                   true);
  EXPECT_TRUE(mixed.errors.empty());
  EXPECT_EQ(mixed.payload, pattern(2));

  // No mqtt subprotocol offered: counted, decoding goes on.
  auto other = run(text("GET / HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: chat\r\n\r\n") +
                       frame(pattern(2), clientFrame()),
                   true);
  EXPECT_EQ(other.errors, std::vector<WsError>{WsError::kNotMqtt});
  EXPECT_EQ(other.payload, pattern(2));

  // Bare LF line endings are accepted.
  auto lf = run(text("HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n") + frame(pattern(2), serverFrame()),
                false);
  EXPECT_TRUE(lf.errors.empty());
  EXPECT_EQ(lf.payload, pattern(2));
}

TEST(WebSocket, HeadersAreBounded) {
  std::string big = "GET /mqtt HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: mqtt\r\n";
  while (big.size() < 9000) big += "X-Padding: " + std::string(100, 'a') + "\r\n";
  big += "\r\n";
  WebSocketDecoder d(true);
  auto r = run(text(big) + frame(pattern(4), clientFrame()), true, 1000, {}, &d);
  EXPECT_EQ(r.errors, std::vector<WsError>{WsError::kHeadersTooLarge});
  EXPECT_TRUE(r.payload.empty());
  EXPECT_TRUE(d.failed());
  // The same under a raised limit is fine; long lines are only looked at in part.
  WebSocketLimits lim;
  lim.max_header_bytes = 16384;
  auto ok = run(text(big) + frame(pattern(4), clientFrame()), true, 1000, lim);
  EXPECT_TRUE(ok.errors.empty());
  EXPECT_EQ(ok.payload, pattern(4));
}

TEST(WebSocket, FrameErrors) {
  // Unmasked client frame: counted, still decoded (the framing is sound).
  auto unmasked = run(text(kRequest) + frame(pattern(3), serverFrame()), true);
  EXPECT_EQ(unmasked.errors, std::vector<WsError>{WsError::kBadFrame});
  EXPECT_EQ(unmasked.payload, pattern(3));

  // Continuation with no message open: counted, payload dropped.
  auto cont = run(text(kRequest) + frame(pattern(3), clientFrame(0)) + frame(pattern(2), clientFrame()), true);
  EXPECT_EQ(cont.errors, std::vector<WsError>{WsError::kBadFrame});
  EXPECT_EQ(cont.payload, pattern(2));

  // Text frame: MQTT must be binary; payload skipped.
  auto txt = run(text(kRequest) + frame(text("hello"), clientFrame(1)) + frame(pattern(2), clientFrame()), true);
  EXPECT_EQ(txt.errors, std::vector<WsError>{WsError::kBadFrame});
  EXPECT_EQ(txt.payload, pattern(2));
  EXPECT_EQ(txt.lost, 1);

  // Control frame too long or fragmented.
  auto ping = run(text(kRequest) + frame(pattern(126), clientFrame(9)) + frame(pattern(2), clientFrame()), true);
  EXPECT_EQ(ping.errors, std::vector<WsError>{WsError::kBadFrame});
  EXPECT_EQ(ping.payload, pattern(2));

  // permessage-deflate (RSV1): cannot be read.
  FrameSpec z = clientFrame();
  z.rsv = 0x40;
  auto comp = run(text(kRequest) + frame(pattern(8), z) + frame(pattern(2), clientFrame()), true);
  EXPECT_EQ(comp.errors, std::vector<WsError>{WsError::kCompressed});
  EXPECT_EQ(comp.payload, pattern(2));

  // Too large: skipped, the next frame decodes.
  WebSocketLimits lim;
  lim.max_frame_size = 100;
  auto big = run(text(kRequest) + frame(pattern(101), clientFrame()) + frame(pattern(100), clientFrame()), true, 7, lim);
  EXPECT_EQ(big.errors, std::vector<WsError>{WsError::kFrameTooLarge});
  EXPECT_EQ(big.payload, pattern(100));
  EXPECT_EQ(big.lost, 1);
}

// A QoS 0 PUBLISH to topic "t" with `n` bytes of payload: what resync looks for.
Bytes publish(size_t n, uint8_t seed) {
  Bytes p = {0x30, static_cast<uint8_t>(3 + n), 0x00, 0x01, 't'};
  const Bytes body = pattern(n, seed);
  p.insert(p.end(), body.begin(), body.end());
  return p;
}

TEST(WebSocket, ReservedOpcodeLosesFramingAndResynchronises) {
  FrameSpec bad = clientFrame(3);  // reserved data opcode
  auto r = run(text(kRequest) + frame(pattern(6, 0x10), bad) + frame(publish(5, 0x20), clientFrame()), true);
  ASSERT_GE(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], WsError::kBadFrame);
  EXPECT_EQ(r.payload, publish(5, 0x20));
  FrameSpec rsv = clientFrame();
  rsv.rsv = 0x20;
  auto r2 = run(text(kRequest) + frame(Bytes(6, 0x00), rsv) + frame(publish(5, 0x20), clientFrame()), true);
  EXPECT_EQ(r2.errors.front(), WsError::kBadFrame);
  EXPECT_EQ(r2.payload, publish(5, 0x20));
}

TEST(WebSocket, GapThenResync) {
  for (int key = 0; key < 256; ++key) {
    SCOPED_TRACE(key);
    WebSocketDecoder d(true);
    Recorder r;
    FrameSpec s = clientFrame();
    s.key[0] = static_cast<uint8_t>(key * 4), s.key[1] = static_cast<uint8_t>(key * 7 + 1);
    const Bytes first = text(kRequest) + frame(publish(10, 1), s);
    const Bytes second = frame(publish(100, 2), s);
    const Bytes third = frame(publish(12, 3), s);
    d.feed(first, {}, r);
    d.feed(std::span<const uint8_t>(second.data(), 20), {}, r);  // frame cut by a gap
    d.onGap();
    // After the hole: the rest of the second frame (masked noise), then whole frames.
    Bytes after(second.begin() + 30, second.end());
    const Bytes pingreq = {0xc0, 0x00};
    after = after + third + frame(pingreq, s);
    d.feed(after, {}, r);
    const Bytes second_payload = publish(100, 2);
    const Bytes delivered_before_gap(second_payload.begin(), second_payload.begin() + 14);  // 20 - 6 header
    EXPECT_EQ(r.payload, publish(10, 1) + delivered_before_gap + publish(12, 3) + pingreq);
    EXPECT_LE(r.count(WsError::kResync), 1u);
  }
}

TEST(WebSocket, MidstreamPickup) {
  for (size_t piece : {size_t{1}, size_t{3}, size_t{1000}}) {
    SCOPED_TRACE(piece);
    // Starts inside a frame's payload, then whole frames.
    const Bytes f1 = frame(publish(50, 1), clientFrame());
    Bytes stream(f1.begin() + 25, f1.end());
    stream = stream + frame(publish(7, 2), clientFrame()) + frame(publish(9, 3), clientFrame());
    auto r = run(stream, true, piece, {}, nullptr, true);
    EXPECT_EQ(r.payload, publish(7, 2) + publish(9, 3));
    EXPECT_EQ(r.errors, std::vector<WsError>{WsError::kResync});
  }
  // Only the SYN was missed: the upgrade is still there.
  auto h = run(text(kResponse) + frame(pattern(4), serverFrame()), false, 0, {}, nullptr, true);
  EXPECT_TRUE(h.errors.empty());
  EXPECT_EQ(h.upgraded, 1);
  EXPECT_EQ(h.payload, pattern(4));
}

TEST(WebSocket, ErrorNames) {
  EXPECT_STREQ(toString(WsError::kBadUpgrade), "ws_bad_upgrade");
  EXPECT_STREQ(toString(WsError::kBadFrame), "ws_bad_frame");
  EXPECT_STREQ(toString(WsError::kFrameTooLarge), "ws_frame_too_large");
  for (int i = 0; i < static_cast<int>(WsError::kCount); ++i)
    EXPECT_STRNE(toString(static_cast<WsError>(i)), "unknown");
}

}  // namespace
}  // namespace mqttlive
