// MQTT decoder: round trips through the encoder, chunking invariance, every
// named error with framing continuing afterwards, the size limit, resync, and
// the promise that a password never leaves the decoder.
#include "mqttlive/mqtt_decoder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <new>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "mqttlive/mqtt_encoder.h"

// ---- allocation tracking ------------------------------------------------------
// Replacing the global allocator in this test binary lets the tests see what
// the decoder allocates while it is being fed: no big blocks for skipped
// payloads, and no heap block that ever holds a password.
namespace {

struct LiveBlock {
  void* ptr = nullptr;
  size_t size = 0;
};

struct AllocTracker {
  bool active = false;  // record allocations made now (inside MqttDecoder::feed)
  size_t count = 0;
  size_t max_size = 0;
  std::array<LiveBlock, 64> live{};  // tracked blocks not yet freed
};

constinit AllocTracker g_alloc;

void* trackedAlloc(size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) return nullptr;
  if (g_alloc.active) {
    ++g_alloc.count;
    g_alloc.max_size = std::max(g_alloc.max_size, size);
    // Zero-filled so stale bytes of an earlier allocation cannot pose as a copied secret.
    std::memset(p, 0, size);
    for (auto& b : g_alloc.live) {
      if (b.ptr == nullptr) {
        b = {p, size};
        break;
      }
    }
  }
  return p;
}

void trackedFree(void* p) {
  if (p == nullptr) return;
  for (auto& b : g_alloc.live) {
    if (b.ptr == p) b = {};
  }
  std::free(p);
}

}  // namespace

void* operator new(size_t size) {
  if (void* p = trackedAlloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new[](size_t size) {
  if (void* p = trackedAlloc(size)) return p;
  throw std::bad_alloc();
}
void* operator new(size_t size, const std::nothrow_t&) noexcept { return trackedAlloc(size); }
void* operator new[](size_t size, const std::nothrow_t&) noexcept { return trackedAlloc(size); }
void operator delete(void* p) noexcept { trackedFree(p); }
void operator delete[](void* p) noexcept { trackedFree(p); }
void operator delete(void* p, size_t) noexcept { trackedFree(p); }
void operator delete[](void* p, size_t) noexcept { trackedFree(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { trackedFree(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { trackedFree(p); }

namespace mqttlive {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes text(std::string_view s) { return Bytes(s.begin(), s.end()); }

// An emitted packet with its views copied: views die with the callback.
struct Seen {
  MqttPacket pkt;
  std::string client_id;
  std::string assigned_client_id;
};

std::string describe(const Seen& s) {
  const MqttPacket& p = s.pkt;
  std::string out = packetTypeName(p.type);
  auto add = [&](const char* k, uint64_t v) { out += std::string(" ") + k + "=" + std::to_string(v); };
  add("flags", p.flags);
  add("rl", p.remaining_length);
  add("level", p.protocol_level);
  add("clean", p.clean_start);
  add("will", p.will_flag);
  add("user", p.username_flag);
  add("pass", p.password_flag);
  add("ka", p.keepalive);
  out += " cid=" + s.client_id;
  add("sp", p.session_present);
  add("rc", p.reason_code);
  add("has_ska", p.has_server_keepalive);
  add("ska", p.server_keepalive);
  out += " acid=" + s.assigned_client_id;
  add("has_se", p.has_session_expiry);
  add("se", p.session_expiry);
  add("qos", p.qos);
  add("has_pid", p.has_packet_id);
  add("pid", p.packet_id);
  return out;
}

class Collector : public MqttDecoderCallbacks {
 public:
  void onPacket(const MqttPacket& p) override {
    const bool was_active = g_alloc.active;
    g_alloc.active = false;  // our own bookkeeping is not the decoder's
    for (std::string_view v : {p.client_id, p.assigned_client_id}) {
      if (!secret.empty()) {
        EXPECT_EQ(v.find(secret), std::string_view::npos) << "secret leaked in a view";
      }
      if (!v.empty() && forbidden_begin != nullptr) {
        const auto* b = reinterpret_cast<const uint8_t*>(v.data());
        EXPECT_TRUE(b + v.size() <= forbidden_begin || b >= forbidden_end)
            << "view overlaps the password bytes";
      }
    }
    Seen s;
    s.pkt = p;
    s.client_id = std::string(p.client_id);
    s.assigned_client_id = std::string(p.assigned_client_id);
    s.pkt.client_id = {};
    s.pkt.assigned_client_id = {};
    packets.push_back(std::move(s));
    g_alloc.active = was_active;
  }
  void onError(ParseError e) override {
    const bool was_active = g_alloc.active;
    g_alloc.active = false;
    errors.push_back(e);
    g_alloc.active = was_active;
  }

  std::vector<std::string> described() const {
    std::vector<std::string> out;
    for (const auto& s : packets) out.push_back(describe(s));
    return out;
  }
  std::vector<PacketType> types() const {
    std::vector<PacketType> out;
    for (const auto& s : packets) out.push_back(s.pkt.type);
    return out;
  }

  std::vector<Seen> packets;
  std::vector<ParseError> errors;
  std::string secret;                        // must never appear in a view
  const uint8_t* forbidden_begin = nullptr;  // input bytes no view may overlap
  const uint8_t* forbidden_end = nullptr;
};

// Feeds `stream` in pieces of the given sizes (the last one takes the rest).
void feedSizes(MqttDecoder& d, const Bytes& stream, const std::vector<size_t>& sizes, Collector& c,
               const MqttDecoderLimits& limits = {}) {
  size_t pos = 0;
  for (size_t i = 0; pos < stream.size(); ++i) {
    const size_t n = i < sizes.size() ? std::min(sizes[i], stream.size() - pos) : stream.size() - pos;
    d.feed(std::span(stream.data() + pos, n), limits, c);
    pos += n;
  }
}

void feedAll(MqttDecoder& d, const Bytes& stream, Collector& c, const MqttDecoderLimits& limits = {}) {
  d.feed(stream, limits, c);
}

void feedBytewise(MqttDecoder& d, const Bytes& stream, Collector& c, const MqttDecoderLimits& limits = {}) {
  for (uint8_t b : stream) d.feed(std::span(&b, 1), limits, c);
}

void feedRandom(MqttDecoder& d, const Bytes& stream, Collector& c, uint32_t seed, size_t max_chunk,
                const MqttDecoderLimits& limits = {}) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> dist(1, max_chunk);
  size_t pos = 0;
  while (pos < stream.size()) {
    const size_t n = std::min(dist(rng), stream.size() - pos);
    d.feed(std::span(stream.data() + pos, n), limits, c);
    pos += n;
  }
}

// Decodes one whole stream in one chunk with a decoder at `level`.
Collector decode(const Bytes& stream, uint8_t level = 0, const MqttDecoderLimits& limits = {}) {
  MqttDecoder d;
  d.setProtocolLevel(level);
  Collector c;
  feedAll(d, stream, c, limits);
  return c;
}

constexpr uint8_t kLevels[] = {kMqtt31, kMqtt311, kMqtt5};

// ---- names ----------------------------------------------------------------------

TEST(MqttDecoder, ParseErrorNames) {
  const char* expected[] = {"reserved_type",        "bad_fixed_header_flags", "invalid_qos",
                            "bad_remaining_length", "packet_too_large",       "bad_protocol_name",
                            "bad_protocol_level",   "malformed_connect",      "malformed_connack",
                            "malformed_properties", "malformed_packet",       "resync"};
  static_assert(std::size(expected) == static_cast<size_t>(ParseError::kCount));
  for (size_t i = 0; i < std::size(expected); ++i) {
    EXPECT_STREQ(toString(static_cast<ParseError>(i)), expected[i]);
  }
}

TEST(MqttDecoder, PacketTypeAndProtocolNames) {
  const char* expected[] = {"RESERVED", "CONNECT",  "CONNACK",    "PUBLISH", "PUBACK",      "PUBREC",
                            "PUBREL",   "PUBCOMP",  "SUBSCRIBE",  "SUBACK",  "UNSUBSCRIBE", "UNSUBACK",
                            "PINGREQ",  "PINGRESP", "DISCONNECT", "AUTH"};
  static_assert(std::size(expected) == kPacketTypeCount);
  for (int i = 0; i < kPacketTypeCount; ++i) {
    EXPECT_STREQ(packetTypeName(static_cast<PacketType>(i)), expected[i]);
  }
  EXPECT_STREQ(protocolName(3), "3.1");
  EXPECT_STREQ(protocolName(4), "3.1.1");
  EXPECT_STREQ(protocolName(5), "5.0");
  EXPECT_EQ(protocolName(0), nullptr);
  EXPECT_EQ(protocolName(6), nullptr);
}

// ---- round trips ------------------------------------------------------------------

TEST(MqttDecoder, RoundTripConnectEveryLevel) {
  for (uint8_t level : kLevels) {
    for (int variant = 0; variant < 4; ++variant) {
      SCOPED_TRACE(testing::Message() << "level " << int{level} << " variant " << variant);
      ConnectSpec s;
      s.protocol_level = level;
      s.client_id = variant == 3 ? "" : "client-" + std::to_string(variant);
      s.keepalive = static_cast<uint16_t>(30 * variant + 5);
      s.clean_start = variant % 2 == 0;
      s.will = variant >= 1;
      s.username = variant >= 2 ? "user" : "";
      s.password = variant >= 2 ? "pw" : "";
      s.has_session_expiry = variant >= 1;
      s.session_expiry = 3600u * static_cast<uint32_t>(variant);
      MqttDecoder d;
      Collector c;
      feedAll(d, encodeConnect(s), c);
      ASSERT_TRUE(c.errors.empty());
      ASSERT_EQ(c.packets.size(), 1u);
      const MqttPacket& p = c.packets[0].pkt;
      EXPECT_EQ(p.type, PacketType::kConnect);
      EXPECT_EQ(p.protocol_level, level);
      EXPECT_EQ(p.clean_start, s.clean_start);
      EXPECT_EQ(p.will_flag, s.will);
      EXPECT_EQ(p.username_flag, !s.username.empty());
      EXPECT_EQ(p.password_flag, !s.password.empty());
      EXPECT_EQ(p.keepalive, s.keepalive);
      EXPECT_EQ(c.packets[0].client_id, s.client_id);
      EXPECT_EQ(p.has_session_expiry, level == kMqtt5 && s.has_session_expiry);
      EXPECT_EQ(p.session_expiry, level == kMqtt5 ? s.session_expiry : 0u);
      // The client-side decoder learns the level from CONNECT itself.
      EXPECT_EQ(d.protocolLevel(), level);
    }
  }
}

TEST(MqttDecoder, RoundTripConnackEveryLevel) {
  for (uint8_t level : kLevels) {
    for (uint8_t decoder_level : {level, uint8_t{0}}) {
      SCOPED_TRACE(testing::Message() << "level " << int{level} << " decoder level " << int{decoder_level});
      ConnackSpec s;
      s.protocol_level = level;
      s.session_present = true;
      s.reason_code = level == kMqtt5 ? 0x86 : 4;
      s.has_server_keepalive = true;
      s.server_keepalive = 25;
      s.assigned_client_id = "auto-4711";
      const Collector c = decode(encodeConnack(s), decoder_level);
      ASSERT_TRUE(c.errors.empty());
      ASSERT_EQ(c.packets.size(), 1u);
      const MqttPacket& p = c.packets[0].pkt;
      EXPECT_EQ(p.type, PacketType::kConnack);
      EXPECT_TRUE(p.session_present);
      EXPECT_EQ(p.reason_code, s.reason_code);
      const bool v5 = level == kMqtt5;
      EXPECT_EQ(p.has_server_keepalive, v5);
      EXPECT_EQ(p.server_keepalive, v5 ? 25 : 0);
      EXPECT_EQ(c.packets[0].assigned_client_id, v5 ? "auto-4711" : "");
    }
  }
}

TEST(MqttDecoder, ConnackSessionExpiryProperty) {
  // 20 08 | 00 00 | props 05: 11 00 00 0e 10
  const Bytes b = {0x20, 0x08, 0x00, 0x00, 0x05, 0x11, 0x00, 0x00, 0x0E, 0x10};
  const Collector c = decode(b, kMqtt5);
  ASSERT_EQ(c.packets.size(), 1u);
  EXPECT_TRUE(c.packets[0].pkt.has_session_expiry);
  EXPECT_EQ(c.packets[0].pkt.session_expiry, 3600u);
  EXPECT_FALSE(c.packets[0].pkt.has_server_keepalive);
}

TEST(MqttDecoder, V5ConnackInOldFormatWhenBrokerRefusesLevel) {
  // A 3.1.1-only broker answers a v5 CONNECT with a two-byte CONNACK.
  const Collector c = decode({0x20, 0x02, 0x00, 0x01}, kMqtt5);
  ASSERT_EQ(c.packets.size(), 1u);
  EXPECT_EQ(c.packets[0].pkt.reason_code, 1);
  EXPECT_TRUE(c.errors.empty());
}

TEST(MqttDecoder, RoundTripPublishEveryLevelAndQos) {
  for (uint8_t level : kLevels) {
    for (uint8_t qos = 0; qos <= 2; ++qos) {
      for (bool retain : {false, true}) {
        SCOPED_TRACE(testing::Message() << "level " << int{level} << " qos " << int{qos});
        const bool dup = qos > 0 && retain;
        const Bytes payload(37, 0xAB);
        const Collector c = decode(encodePublish(level, "a/b/c", qos, 777, payload, retain, dup), level);
        ASSERT_TRUE(c.errors.empty());
        ASSERT_EQ(c.packets.size(), 1u);
        const MqttPacket& p = c.packets[0].pkt;
        EXPECT_EQ(p.type, PacketType::kPublish);
        EXPECT_EQ(p.qos, qos);
        EXPECT_EQ(p.has_packet_id, qos > 0);
        EXPECT_EQ(p.packet_id, qos > 0 ? 777 : 0);
        EXPECT_EQ((p.flags & 0x01) != 0, retain);
        EXPECT_EQ((p.flags & 0x08) != 0, dup);
        EXPECT_EQ(p.remaining_length, 2u + 5u + (qos > 0 ? 2u : 0u) + (level == kMqtt5 ? 1u : 0u) + 37u);
      }
    }
  }
}

TEST(MqttDecoder, RoundTripAcksEveryLevel) {
  const PacketType types[] = {PacketType::kPuback, PacketType::kPubrec, PacketType::kPubrel,
                              PacketType::kPubcomp, PacketType::kUnsuback};
  for (uint8_t level : kLevels) {
    for (PacketType t : types) {
      for (uint8_t rc : {uint8_t{0}, uint8_t{0x10}}) {
        if (level != kMqtt5 && rc != 0) continue;
        SCOPED_TRACE(testing::Message() << packetTypeName(t) << " level " << int{level} << " rc " << int{rc});
        const Bytes b = encodeAck(t, level, 0xBEEF, rc);
        EXPECT_EQ(b[0] & 0x0F, t == PacketType::kPubrel ? 2 : 0);
        for (uint8_t decoder_level : {level, uint8_t{0}}) {
          const Collector c = decode(b, decoder_level);
          ASSERT_TRUE(c.errors.empty());
          ASSERT_EQ(c.packets.size(), 1u);
          EXPECT_EQ(c.packets[0].pkt.type, t);
          EXPECT_TRUE(c.packets[0].pkt.has_packet_id);
          EXPECT_EQ(c.packets[0].pkt.packet_id, 0xBEEF);
          // UNSUBACK carries properties where the others carry the reason code.
          if (t != PacketType::kUnsuback) {
            EXPECT_EQ(c.packets[0].pkt.reason_code, rc);
          }
        }
      }
    }
  }
}

TEST(MqttDecoder, RoundTripSubscribeSubackUnsubscribeEveryLevel) {
  for (uint8_t level : kLevels) {
    SCOPED_TRACE(testing::Message() << "level " << int{level});
    const Bytes stream = cat({encodeSubscribe(level, 11, {"a/#", "b/+/c"}, 1),
                              encodeSuback(level, 11, {1, 0x80}), encodeUnsubscribe(level, 12, {"a/#"})});
    const Collector c = decode(stream, level);
    ASSERT_TRUE(c.errors.empty());
    ASSERT_EQ(c.packets.size(), 3u);
    EXPECT_EQ(c.packets[0].pkt.type, PacketType::kSubscribe);
    EXPECT_EQ(c.packets[0].pkt.flags, 2);
    EXPECT_EQ(c.packets[0].pkt.packet_id, 11);
    EXPECT_EQ(c.packets[1].pkt.type, PacketType::kSuback);
    EXPECT_EQ(c.packets[1].pkt.packet_id, 11);
    EXPECT_EQ(c.packets[2].pkt.type, PacketType::kUnsubscribe);
    EXPECT_EQ(c.packets[2].pkt.flags, 2);
    EXPECT_EQ(c.packets[2].pkt.packet_id, 12);
    for (const auto& s : c.packets) EXPECT_TRUE(s.pkt.has_packet_id);
  }
}

TEST(MqttDecoder, RoundTripPingsEveryLevel) {
  for (uint8_t level : kLevels) {
    const Collector c = decode(cat({encodePingreq(), encodePingresp()}), level);
    ASSERT_TRUE(c.errors.empty());
    EXPECT_EQ(c.types(), (std::vector{PacketType::kPingreq, PacketType::kPingresp}));
    EXPECT_EQ(c.packets[0].pkt.remaining_length, 0u);
  }
}

TEST(MqttDecoder, RoundTripDisconnectEveryLevel) {
  for (uint8_t level : kLevels) {
    for (uint8_t rc : {uint8_t{0}, uint8_t{0x8E}}) {
      for (uint8_t decoder_level : {level, uint8_t{0}}) {
        SCOPED_TRACE(testing::Message()
                     << "level " << int{level} << " rc " << int{rc} << " decoder " << int{decoder_level});
        const Collector c = decode(encodeDisconnect(level, rc), decoder_level);
        ASSERT_TRUE(c.errors.empty());
        ASSERT_EQ(c.packets.size(), 1u);
        EXPECT_EQ(c.packets[0].pkt.type, PacketType::kDisconnect);
        EXPECT_EQ(c.packets[0].pkt.reason_code, level == kMqtt5 ? rc : 0);
      }
    }
  }
}

TEST(MqttDecoder, DisconnectSessionExpiryV5) {
  // e0 07 | 04 | props 05: 11 00 01 51 80  (Disconnect with Will Message, expiry 86400)
  const Bytes b = {0xE0, 0x07, 0x04, 0x05, 0x11, 0x00, 0x01, 0x51, 0x80};
  for (uint8_t level : {kMqtt5, uint8_t{0}}) {
    const Collector c = decode(b, level);
    ASSERT_EQ(c.packets.size(), 1u);
    EXPECT_EQ(c.packets[0].pkt.reason_code, 4);
    EXPECT_TRUE(c.packets[0].pkt.has_session_expiry);
    EXPECT_EQ(c.packets[0].pkt.session_expiry, 86400u);
  }
  // Reason code only, no property length.
  const Collector c = decode({0xE0, 0x01, 0x81}, kMqtt5);
  ASSERT_EQ(c.packets.size(), 1u);
  EXPECT_EQ(c.packets[0].pkt.reason_code, 0x81);
}

TEST(MqttDecoder, RoundTripAuth) {
  for (uint8_t level : {kMqtt5, uint8_t{0}}) {
    const Collector c = decode(cat({encodeAuth(0x18), {0xF0, 0x00}}), level);
    ASSERT_TRUE(c.errors.empty());
    ASSERT_EQ(c.packets.size(), 2u);
    EXPECT_EQ(c.packets[0].pkt.type, PacketType::kAuth);
    EXPECT_EQ(c.packets[0].pkt.reason_code, 0x18);
    EXPECT_EQ(c.packets[1].pkt.reason_code, 0);
  }
}

TEST(MqttDecoder, AuthBeforeV5IsReservedType) {
  for (uint8_t level : {kMqtt31, kMqtt311}) {
    const Collector c = decode(cat({encodeAuth(0x18), encodePingresp()}), level);
    EXPECT_EQ(c.errors, std::vector{ParseError::kReservedType});
    EXPECT_EQ(c.types(), std::vector{PacketType::kPingresp});
  }
}

TEST(MqttDecoder, BridgeProtocolLevelBit) {
  // Mosquitto bridges send level | 0x80.
  ConnectSpec s;
  s.client_id = "bridge";
  Bytes b = encodeConnect(s);
  b[2 + 6] = 0x84;  // header(2) + name(6) -> level
  MqttDecoder d;
  Collector c;
  feedAll(d, b, c);
  ASSERT_EQ(c.packets.size(), 1u);
  EXPECT_EQ(c.packets[0].pkt.protocol_level, kMqtt311);
  EXPECT_EQ(c.packets[0].client_id, "bridge");
  EXPECT_EQ(d.protocolLevel(), kMqtt311);
}

TEST(MqttDecoder, V5ConnectWithManyProperties) {
  // Every property kind in one CONNECT, to exercise the walker.
  Bytes props = {0x11, 0,    0,    0,    60,                    // session expiry (four-byte)
                 0x21, 0,    10,                                // receive maximum (two-byte)
                 0x17, 1,                                       // request problem info (byte)
                 0x0B, 0x80, 0x01,                              // subscription id (varint, two bytes)
                 0x15, 0,    3,    'a',  'b',  'c',             // auth method (string)
                 0x16, 0,    2,    0xFF, 0x00,                  // auth data (binary)
                 0x26, 0,    1,    'k',  0,    2,   'v', 'w'};  // user property (pair)
  Bytes body = {0, 4, 'M', 'Q', 'T', 'T', 5, 0x02, 0, 30};
  appendVarInt(body, static_cast<uint32_t>(props.size()));
  body.insert(body.end(), props.begin(), props.end());
  body.insert(body.end(), {0, 2, 'i', 'd'});
  Bytes pkt = {0x10};
  appendVarInt(pkt, static_cast<uint32_t>(body.size()));
  pkt.insert(pkt.end(), body.begin(), body.end());
  const Collector c = decode(pkt);
  ASSERT_TRUE(c.errors.empty());
  ASSERT_EQ(c.packets.size(), 1u);
  EXPECT_EQ(c.packets[0].client_id, "id");
  EXPECT_TRUE(c.packets[0].pkt.has_session_expiry);
  EXPECT_EQ(c.packets[0].pkt.session_expiry, 60u);
  EXPECT_EQ(c.packets[0].pkt.keepalive, 30);
}

// ---- chunking ---------------------------------------------------------------------

// A v5 session with every packet type, long and short packets, properties.
Bytes mixedStream() {
  ConnectSpec cs;
  cs.protocol_level = kMqtt5;
  cs.client_id = std::string(300, 'c');
  cs.will = true;
  cs.username = "alice";
  cs.password = "pw";
  cs.has_session_expiry = true;
  cs.session_expiry = 120;
  ConnackSpec ca;
  ca.protocol_level = kMqtt5;
  ca.has_server_keepalive = true;
  ca.server_keepalive = 40;
  ca.assigned_client_id = "assigned";
  Bytes s = cat({encodeConnect(cs), encodeConnack(ca)});
  for (int i = 0; i < 12; ++i) {
    const auto qos = static_cast<uint8_t>(i % 3);
    const Bytes payload(static_cast<size_t>(i * 437), static_cast<uint8_t>(i));
    const auto pid = static_cast<uint16_t>(i + 1);
    s = cat(
        {s,
         encodePublish(kMqtt5, "sensors/" + std::string(static_cast<size_t>(i * 20), 't'), qos, pid, payload),
         encodeAck(PacketType::kPuback, kMqtt5, pid, i % 2 ? 0x10 : 0)});
  }
  return cat({s,
              encodeAck(PacketType::kPubrec, kMqtt5, 5),
              encodeAck(PacketType::kPubrel, kMqtt5, 5),
              encodeAck(PacketType::kPubcomp, kMqtt5, 5),
              encodeSubscribe(kMqtt5, 6, {"x/#"}, 2),
              encodeSuback(kMqtt5, 6, {2}),
              encodeUnsubscribe(kMqtt5, 7, {"x/#"}),
              encodeAck(PacketType::kUnsuback, kMqtt5, 7),
              encodePingreq(),
              encodePingresp(),
              encodeAuth(0x19),
              {0xE0, 0x07, 0x04, 0x05, 0x11, 0x00, 0x01, 0x51, 0x80},
              encodeDisconnect(kMqtt5, 0)});
}

TEST(MqttDecoder, ChunkingDoesNotChangePackets) {
  const Bytes stream = mixedStream();
  MqttDecoder whole;
  Collector reference;
  feedAll(whole, stream, reference);
  ASSERT_TRUE(reference.errors.empty());
  ASSERT_EQ(reference.packets.size(), 2u + 24u + 12u);
  EXPECT_EQ(reference.packets[0].client_id, std::string(300, 'c'));
  EXPECT_EQ(reference.packets[1].assigned_client_id, "assigned");

  {
    MqttDecoder d;
    Collector c;
    feedBytewise(d, stream, c);
    EXPECT_EQ(c.described(), reference.described());
    EXPECT_TRUE(c.errors.empty());
  }
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    MqttDecoder d;
    Collector c;
    feedRandom(d, stream, c, seed, seed % 2 ? 17 : 1500);
    EXPECT_EQ(c.described(), reference.described());
    EXPECT_TRUE(c.errors.empty());
  }
}

TEST(MqttDecoder, SeveralPacketsInOneChunk) {
  ConnectSpec cs;
  cs.client_id = "multi";
  const Bytes stream = cat({encodeConnect(cs), encodePublish(kMqtt311, "t", 1, 9, text("x")), encodePingreq(),
                            encodeDisconnect(kMqtt311)});
  const Collector c = decode(stream);
  ASSERT_TRUE(c.errors.empty());
  EXPECT_EQ(c.types(), (std::vector{PacketType::kConnect, PacketType::kPublish, PacketType::kPingreq,
                                    PacketType::kDisconnect}));
  EXPECT_EQ(c.packets[0].client_id, "multi");
  EXPECT_EQ(c.packets[1].pkt.packet_id, 9);
}

TEST(MqttDecoder, TenPublishesInOneChunk) {
  Bytes stream;
  for (uint16_t i = 0; i < 10; ++i) {
    stream =
        cat({stream, encodePublish(kMqtt311, "topic/" + std::to_string(i), 1, static_cast<uint16_t>(100 + i),
                                   text("payload " + std::to_string(i)))});
  }
  const Collector c = decode(stream, kMqtt311);
  ASSERT_TRUE(c.errors.empty());
  ASSERT_EQ(c.packets.size(), 10u);
  for (uint16_t i = 0; i < 10; ++i) {
    EXPECT_EQ(c.packets[i].pkt.type, PacketType::kPublish);
    EXPECT_EQ(c.packets[i].pkt.packet_id, 100 + i);
  }
}

TEST(MqttDecoder, HeadBeyondBufferCapIsReportedAsParsed) {
  // The client id ends past the 4096-byte head cap: split delivery reports the
  // CONNECT without it (no error); a chunk holding it all parses it in place.
  ConnectSpec cs;
  cs.client_id = std::string(5000, 'k');
  cs.keepalive = 77;
  const Bytes stream = cat({encodeConnect(cs), encodePingreq()});
  {
    MqttDecoder d;
    Collector c;
    g_alloc = {};
    g_alloc.active = true;
    feedBytewise(d, stream, c);
    g_alloc.active = false;
    EXPECT_TRUE(c.errors.empty());
    ASSERT_EQ(c.types(), (std::vector{PacketType::kConnect, PacketType::kPingreq}));
    EXPECT_EQ(c.packets[0].pkt.keepalive, 77);
    EXPECT_EQ(c.packets[0].pkt.protocol_level, kMqtt311);
    EXPECT_EQ(c.packets[0].client_id, "");
    EXPECT_LE(g_alloc.max_size, 4096u);
  }
  const Collector c = decode(stream);
  ASSERT_EQ(c.packets.size(), 2u);
  EXPECT_EQ(c.packets[0].client_id, cs.client_id);
}

TEST(MqttDecoder, NothingStaysAllocatedBetweenPackets) {
  const Bytes stream = mixedStream();
  MqttDecoder d;
  Collector c;
  size_t cut = 0;
  // Feed up to each packet boundary in two pieces; after the boundary no
  // decoder block may be live.
  std::vector<size_t> boundaries;
  {
    MqttDecoder probe;
    Collector pc;
    for (size_t i = 0; i < stream.size(); ++i) {
      probe.feed(std::span(&stream[i], 1), {}, pc);
      if (pc.packets.size() > boundaries.size()) boundaries.push_back(i + 1);
    }
  }
  g_alloc = {};
  for (size_t end : boundaries) {
    // A PUBLISH is reported before its payload ends; only whole-packet ends count.
    const size_t mid = cut + (end - cut) / 2;
    g_alloc.active = true;
    d.feed(std::span(stream.data() + cut, mid - cut), {}, c);
    d.feed(std::span(stream.data() + mid, end - mid), {}, c);
    g_alloc.active = false;
    cut = end;
  }
  d.feed(std::span(stream.data() + cut, stream.size() - cut), {}, c);
  EXPECT_TRUE(c.errors.empty());
  for (const auto& b : g_alloc.live) EXPECT_EQ(b.ptr, nullptr) << "decoder block still live: " << b.size;
}

// ---- errors: each is reachable and framing continues -------------------------------

struct ErrorCase {
  const char* name;
  Bytes bytes;
  ParseError expected;
  uint8_t level = 0;
  uint32_t max_packet_size = 1u << 20;
};

Bytes connectWith(std::initializer_list<uint8_t> body) {
  Bytes b = {0x10, static_cast<uint8_t>(body.size())};
  b.insert(b.end(), body);
  return b;
}

std::vector<ErrorCase> errorCases() {
  std::vector<ErrorCase> v;
  v.push_back({"type 0", {0x00, 0x02, 0xAA, 0xBB}, ParseError::kReservedType});
  v.push_back({"AUTH at 3.1.1", encodeAuth(0x18), ParseError::kReservedType, kMqtt311});
  v.push_back({"SUBSCRIBE flags 0",
               {0x80, 0x06, 0x00, 0x01, 0x00, 0x01, 'a', 0x00},
               ParseError::kBadFixedHeaderFlags});
  v.push_back({"PINGREQ flags 1", {0xC1, 0x00}, ParseError::kBadFixedHeaderFlags});
  v.push_back({"PUBREL flags 0", {0x60, 0x02, 0x00, 0x01}, ParseError::kBadFixedHeaderFlags});
  v.push_back({"CONNACK flags 8", {0x28, 0x02, 0x00, 0x00}, ParseError::kBadFixedHeaderFlags});
  v.push_back({"PUBLISH qos 3", {0x36, 0x05, 0x00, 0x01, 't', 0x00, 0x01}, ParseError::kInvalidQos});
  v.push_back({"too large", cat({{0x30, 0xC8, 0x01, 0x00, 0x01, 't'}, Bytes(197, 0x55)}),
               ParseError::kPacketTooLarge, 0, 100});
  v.push_back({"name MQTX", connectWith({0, 4, 'M', 'Q', 'T', 'X', 4, 2, 0, 60, 0, 0}),
               ParseError::kBadProtocolName});
  v.push_back({"name length 5", connectWith({0, 5, 'M', 'Q', 'T', 'T', 'X', 4, 2, 0, 60, 0, 0}),
               ParseError::kBadProtocolName});
  v.push_back(
      {"level 6", connectWith({0, 4, 'M', 'Q', 'T', 'T', 6, 2, 0, 60, 0, 0}), ParseError::kBadProtocolLevel});
  v.push_back({"MQIsdp level 4", connectWith({0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 4, 2, 0, 60, 0, 0}),
               ParseError::kBadProtocolLevel});
  v.push_back({"reserved connect flag", connectWith({0, 4, 'M', 'Q', 'T', 'T', 4, 3, 0, 60, 0, 0}),
               ParseError::kMalformedConnect});
  v.push_back({"client id past end", connectWith({0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0xFF, 0xFF}),
               ParseError::kMalformedConnect});
  v.push_back(
      {"connect cut short", connectWith({0, 4, 'M', 'Q', 'T', 'T', 4, 2}), ParseError::kMalformedConnect});
  v.push_back({"connack length 1", {0x20, 0x01, 0x00}, ParseError::kMalformedConnack});
  v.push_back(
      {"connack length 3 at 3.1.1", {0x20, 0x03, 0x00, 0x00, 0x00}, ParseError::kMalformedConnack, kMqtt311});
  v.push_back(
      {"connack reserved ack flags", {0x20, 0x02, 0x02, 0x00}, ParseError::kMalformedConnack, kMqtt311});
  v.push_back({"connect property id 0x7f",
               connectWith({0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 2, 0x7F, 0x00, 0, 0}),
               ParseError::kMalformedProperties});
  v.push_back({"connect property length past end",
               connectWith({0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 9, 0x11}),
               ParseError::kMalformedProperties});
  v.push_back({"connect property value past block",
               connectWith({0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 3, 0x11, 0, 0, 0, 0}),
               ParseError::kMalformedProperties});
  v.push_back({"connect property length 5 bytes",
               connectWith({0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0}),
               ParseError::kMalformedProperties});
  v.push_back({"connack string property overruns",
               {0x20, 0x07, 0x00, 0x00, 0x04, 0x12, 0x00, 0x09, 'a'},
               ParseError::kMalformedProperties,
               kMqtt5});
  v.push_back(
      {"disconnect bad property", {0xE0, 0x03, 0x00, 0x01, 0x00}, ParseError::kMalformedProperties, kMqtt5});
  v.push_back({"puback length 1", {0x40, 0x01, 0x00}, ParseError::kMalformedPacket});
  v.push_back(
      {"puback length 3 at 3.1.1", {0x40, 0x03, 0x00, 0x01, 0x00}, ParseError::kMalformedPacket, kMqtt311});
  v.push_back({"pingreq length 1", {0xC0, 0x01, 0x00}, ParseError::kMalformedPacket});
  v.push_back({"topic past end", {0x30, 0x04, 0x00, 0x09, 'a', 'b'}, ParseError::kMalformedPacket});
  v.push_back({"subscribe without filter", {0x82, 0x02, 0x00, 0x01}, ParseError::kMalformedPacket});
  v.push_back({"disconnect body at 3.1.1", {0xE0, 0x01, 0x00}, ParseError::kMalformedPacket, kMqtt311});
  v.push_back({"auth bad reason", {0xF0, 0x01, 0x42}, ParseError::kMalformedPacket, kMqtt5});
  return v;
}

TEST(MqttDecoder, EveryErrorIsNamedAndFramingContinues) {
  std::set<ParseError> seen;
  for (const ErrorCase& ec : errorCases()) {
    SCOPED_TRACE(ec.name);
    // A valid packet after the bad one must still decode, however it is chunked.
    const Bytes stream =
        cat({ec.bytes, encodePublish(kMqtt311, "after", 1, 4242, text("ok")), encodePingreq()});
    MqttDecoderLimits limits;
    limits.max_packet_size = ec.max_packet_size;
    for (int mode = 0; mode < 3; ++mode) {
      MqttDecoder d;
      d.setProtocolLevel(ec.level);
      Collector c;
      if (mode == 0) feedAll(d, stream, c, limits);
      if (mode == 1) feedBytewise(d, stream, c, limits);
      if (mode == 2) feedRandom(d, stream, c, 7, 5, limits);
      EXPECT_EQ(c.errors, std::vector{ec.expected}) << "mode " << mode;
      ASSERT_EQ(c.types(), (std::vector{PacketType::kPublish, PacketType::kPingreq})) << "mode " << mode;
      EXPECT_EQ(c.packets[0].pkt.packet_id, 4242);
      EXPECT_FALSE(d.resyncing());
    }
    seen.insert(ec.expected);
  }
  // Bad remaining length and resync are covered below; everything else here.
  EXPECT_EQ(seen.size(), static_cast<size_t>(ParseError::kCount) - 2);
}

TEST(MqttDecoder, BadRemainingLengthResyncsToTheNextPacket) {
  // Four length bytes all with the continuation bit; then junk, then packets.
  const Bytes stream = cat({{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0x00},
                            encodePingreq(),
                            encodeAck(PacketType::kPuback, kMqtt311, 3),
                            encodePingreq()});
  for (int mode = 0; mode < 2; ++mode) {
    MqttDecoder d;
    d.setProtocolLevel(kMqtt311);
    Collector c;
    if (mode == 0) feedAll(d, stream, c);
    if (mode == 1) feedBytewise(d, stream, c);
    EXPECT_EQ(c.errors, (std::vector{ParseError::kBadRemainingLength, ParseError::kResync})) << mode;
    EXPECT_EQ(c.types(), (std::vector{PacketType::kPingreq, PacketType::kPuback, PacketType::kPingreq}))
        << mode;
  }
}

TEST(MqttDecoder, FourByteRemainingLengthIsAccepted) {
  // 2^21 needs four length bytes; with a limit above it the packet is decoded.
  const Bytes payload((1u << 21) - 5, 0x20);  // + topic "big" = 2^21
  const Bytes stream = cat({encodePublish(kMqtt311, "big", 0, 0, payload), encodePingreq()});
  ASSERT_EQ(stream[4] & 0x80, 0);
  ASSERT_EQ(stream[3] & 0x80, 0x80);
  MqttDecoderLimits limits;
  limits.max_packet_size = 4u << 20;
  const Collector c = decode(stream, kMqtt311, limits);
  EXPECT_TRUE(c.errors.empty());
  ASSERT_EQ(c.types(), (std::vector{PacketType::kPublish, PacketType::kPingreq}));
  EXPECT_EQ(c.packets[0].pkt.remaining_length, (1u << 21));
}

// ---- size limit -------------------------------------------------------------------

TEST(MqttDecoder, OversizedPacketIsSkippedWithoutBuffering) {
  MqttDecoderLimits limits;
  limits.max_packet_size = 1u << 20;
  const uint32_t announced = 8u << 20;
  Bytes header = {0x32};
  appendVarInt(header, announced);
  const Bytes junk(64 * 1024, 0x31);  // looks like PUBLISH headers, must not matter
  const Bytes after = encodePingreq();
  MqttDecoder d;
  d.setProtocolLevel(kMqtt311);
  Collector c;
  g_alloc = {};
  g_alloc.active = true;
  d.feed(header, limits, c);
  for (uint32_t left = announced; left > 0;) {
    const uint32_t n = std::min<uint32_t>(left, static_cast<uint32_t>(junk.size()));
    d.feed(std::span(junk.data(), n), limits, c);
    left -= n;
  }
  d.feed(after, limits, c);
  g_alloc.active = false;
  EXPECT_EQ(c.errors, std::vector{ParseError::kPacketTooLarge});
  EXPECT_EQ(c.types(), std::vector{PacketType::kPingreq});
  EXPECT_EQ(g_alloc.count, 0u);
}

TEST(MqttDecoder, Announced256MegabytesCostsNoMemory) {
  // The largest Remaining Length there is: 268435455 bytes, under the default limit.
  const Bytes header = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
  const Bytes junk(1u << 20, 0x00);
  const Bytes after = encodeAck(PacketType::kPuback, kMqtt311, 99);
  MqttDecoder d;
  Collector c;
  g_alloc = {};
  g_alloc.active = true;
  d.feed(header, {}, c);
  uint32_t left = 268435455u;
  while (left > 0) {
    const uint32_t n = std::min<uint32_t>(left, static_cast<uint32_t>(junk.size()));
    d.feed(std::span(junk.data(), n), {}, c);
    left -= n;
  }
  d.feed(after, {}, c);
  g_alloc.active = false;
  EXPECT_EQ(c.errors, std::vector{ParseError::kPacketTooLarge});
  ASSERT_EQ(c.types(), std::vector{PacketType::kPuback});
  EXPECT_EQ(c.packets[0].pkt.packet_id, 99);
  EXPECT_EQ(g_alloc.count, 0u);
}

// ---- resync -----------------------------------------------------------------------

TEST(MqttDecoder, GapMidPacketResyncs) {
  ConnectSpec cs;
  cs.client_id = "gappy";
  const Bytes connect = encodeConnect(cs);
  const Bytes lost =
      encodePublish(kMqtt311, "some/topic", 1, 1, text("the quick brown fox jumps over the lazy dog"));
  const Bytes after = cat({encodeAck(PacketType::kPuback, kMqtt311, 77), encodePingreq(),
                           encodePublish(kMqtt311, "x", 1, 78, text("yz"))});
  MqttDecoder d;
  Collector c;
  d.feed(connect, {}, c);
  d.feed(std::span(lost.data(), 20), {}, c);  // first part of the PUBLISH
  ASSERT_EQ(c.packets.size(), 2u);            // CONNECT, and the PUBLISH head
  d.onGap();
  EXPECT_TRUE(d.resyncing());
  // The stream resumes in the middle of the payload.
  d.feed(cat({Bytes(lost.begin() + 30, lost.end()), after}), {}, c);
  EXPECT_FALSE(d.resyncing());
  EXPECT_EQ(c.errors, std::vector{ParseError::kResync});
  ASSERT_EQ(c.types(), (std::vector{PacketType::kConnect, PacketType::kPublish, PacketType::kPuback,
                                    PacketType::kPingreq, PacketType::kPublish}));
  EXPECT_EQ(c.packets[2].pkt.packet_id, 77);
  EXPECT_EQ(c.packets[4].pkt.packet_id, 78);
  EXPECT_EQ(d.protocolLevel(), kMqtt311);  // the level survives the gap
}

TEST(MqttDecoder, GapWhileAssemblingHeadDropsIt) {
  ConnectSpec cs;
  cs.client_id = "will-be-lost";
  const Bytes connect = encodeConnect(cs);
  MqttDecoder d;
  Collector c;
  d.feed(std::span(connect.data(), 10), {}, c);  // head is now buffered
  d.onGap();
  d.feed(cat({encodePingreq(), encodePingreq()}), {}, c);
  EXPECT_TRUE(c.errors.empty());  // resumed exactly on a boundary: nothing discarded
  EXPECT_EQ(c.types(), (std::vector{PacketType::kPingreq, PacketType::kPingreq}));
}

TEST(MqttDecoder, MidstreamStartingMidPacket) {
  const Bytes earlier = encodePublish(kMqtt311, "telemetry/room1", 0, 0, text("{\"t\": \"twenty-one\"}"));
  const Bytes after = cat({encodePublish(kMqtt311, "telemetry/room2", 1, 5, text("{\"t\": \"nineteen\"}")),
                           encodeAck(PacketType::kPuback, kMqtt311, 6), encodePingreq()});
  const Bytes stream = cat({Bytes(earlier.begin() + 9, earlier.end()), after});
  for (int mode = 0; mode < 3; ++mode) {
    SCOPED_TRACE(mode);
    MqttDecoder d;
    d.startMidstream();
    EXPECT_TRUE(d.resyncing());
    Collector c;
    if (mode == 0) feedAll(d, stream, c);
    if (mode == 1) feedBytewise(d, stream, c);
    if (mode == 2) feedRandom(d, stream, c, 3, 9);
    EXPECT_EQ(c.errors, std::vector{ParseError::kResync});
    ASSERT_EQ(c.types(), (std::vector{PacketType::kPublish, PacketType::kPuback, PacketType::kPingreq}));
    EXPECT_EQ(c.packets[0].pkt.packet_id, 5);
    EXPECT_EQ(c.packets[1].pkt.packet_id, 6);
  }
}

TEST(MqttDecoder, MidstreamAtPacketBoundaryLosesNothing) {
  // As in captures that start on an established connection: CONNACK split over
  // two segments, then a large PUBLISH spanning segments, then DISCONNECT.
  const Bytes stream = cat({encodeConnack({}), encodePublish(kMqtt311, "img", 0, 0, Bytes(3000, 0xD8)),
                            encodeDisconnect(kMqtt311)});
  const std::vector<std::vector<size_t>> splits = {{1}, {2, 1400, 1400}, {4}, {stream.size()}};
  for (const auto& sizes : splits) {
    MqttDecoder d;
    d.startMidstream();
    Collector c;
    feedSizes(d, stream, sizes, c);
    EXPECT_TRUE(c.errors.empty());
    EXPECT_EQ(c.types(), (std::vector{PacketType::kConnack, PacketType::kPublish, PacketType::kDisconnect}));
  }
}

TEST(MqttDecoder, ResyncReportsOncePerEpisode) {
  MqttDecoder d;
  d.startMidstream();
  Collector c;
  const Bytes junk(1000, 0x00);  // type 0 everywhere: never a candidate
  for (int i = 0; i < 10; ++i) d.feed(junk, {}, c);
  d.onGap();  // still the same unresolved episode
  d.feed(junk, {}, c);
  d.feed(cat({encodePingreq(), encodePingresp(), encodePingreq()}), {}, c);
  EXPECT_EQ(c.errors, std::vector{ParseError::kResync});
  EXPECT_EQ(c.packets.size(), 3u);
  // A new gap after framing was re-established is a new episode.
  d.onGap();
  d.feed(cat({junk, encodePingreq(), encodePingreq()}), {}, c);
  EXPECT_EQ(c.errors, (std::vector{ParseError::kResync, ParseError::kResync}));
  EXPECT_EQ(c.packets.size(), 5u);
}

TEST(MqttDecoder, WrongGuessAfterResyncKeepsSearching) {
  MqttDecoder d;
  d.setProtocolLevel(kMqtt311);
  d.startMidstream();
  Collector c;
  // A PUBLISH-looking header whose packet runs past the chunk, with enough body
  // to look right (topic "abcdefgh"): accepted on weak evidence.
  d.feed(cat({{0x00, 0x00, 0x30, 0x14, 0x00, 0x08}, text("abcdefgh")}), {}, c);
  EXPECT_EQ(c.types(), std::vector{PacketType::kPublish});
  // The next "packet" is bad: the guess was wrong, so no error of its own, just more searching.
  d.feed(cat({text("0123456789"), {0xC1, 0x00}, encodePingreq(), encodePingreq()}), {}, c);
  EXPECT_EQ(c.errors, std::vector{ParseError::kResync});
  EXPECT_EQ(c.types(), (std::vector{PacketType::kPublish, PacketType::kPingreq, PacketType::kPingreq}));
  // Framing is trusted again: errors are reported as such.
  d.feed(Bytes{0xC1, 0x00}, {}, c);
  EXPECT_EQ(c.errors, (std::vector{ParseError::kResync, ParseError::kBadFixedHeaderFlags}));
}

TEST(MqttDecoder, TooLittleEvidenceWaitsForTheNextChunk) {
  MqttDecoder d;
  d.setProtocolLevel(kMqtt311);
  d.startMidstream();
  Collector c;
  // 30 05 00 03 'a' could be a PUBLISH, but three body bytes prove little: the
  // decision waits, and the next chunk shows that no header follows it.
  d.feed(Bytes{0x00, 0x00, 0x30, 0x05, 0x00, 0x03, 'a'}, {}, c);
  EXPECT_TRUE(c.packets.empty());
  EXPECT_TRUE(d.resyncing());
  d.feed(cat({{'b', 'c', 0xC1, 0x00}, encodePingreq(), encodePingreq()}), {}, c);
  EXPECT_EQ(c.errors, std::vector{ParseError::kResync});
  EXPECT_EQ(c.types(), (std::vector{PacketType::kPingreq, PacketType::kPingreq}));
}

TEST(MqttDecoder, ResyncIgnoresTextPayloads) {
  // Digits and letters look like PUBLISH/PUBCOMP headers; none may be taken.
  std::string noise;
  for (int i = 0; i < 200; ++i)
    noise += "{\"seq\": " + std::to_string(i * 7919) + ", \"ok\": true, \"p\": 0.5}";
  const Bytes packets = cat({encodeAck(PacketType::kPuback, kMqtt311, 1), encodePingreq(),
                             encodePublish(kMqtt311, "a/b", 1, 2, text("v"))});
  for (uint8_t level : {uint8_t{0}, kMqtt311, kMqtt5}) {
    SCOPED_TRACE(int{level});
    MqttDecoder d;
    d.setProtocolLevel(level);
    d.startMidstream();
    Collector c;
    d.feed(cat({text(noise), packets}), {}, c);
    EXPECT_EQ(c.errors, std::vector{ParseError::kResync});
    EXPECT_EQ(c.types(), (std::vector{PacketType::kPuback, PacketType::kPingreq, PacketType::kPublish}));
  }
}

// ---- secrets ----------------------------------------------------------------------

TEST(MqttDecoder, PasswordNeverLeavesTheDecoder) {
  const std::string secret = "s3cr3t-pw";
  for (uint8_t level : kLevels) {
    SCOPED_TRACE(int{level});
    ConnectSpec cs;
    cs.protocol_level = level;
    cs.client_id = "dev-42";
    cs.will = true;
    cs.will_topic = "dev/42/status";
    cs.will_payload = "offline";
    cs.username = "device";
    cs.password = secret;
    cs.has_session_expiry = true;
    cs.session_expiry = 30;
    const Bytes stream = cat({encodeConnect(cs), encodePingreq()});
    const auto at = std::search(stream.begin(), stream.end(), secret.begin(), secret.end());
    ASSERT_NE(at, stream.end());
    for (int mode = 0; mode < 4; ++mode) {
      MqttDecoder d;
      Collector c;
      c.secret = secret;
      c.forbidden_begin = stream.data() + (at - stream.begin());
      c.forbidden_end = c.forbidden_begin + secret.size();
      g_alloc = {};
      // After every piece, no live decoder block may hold the password.
      auto check = [&] {
        for (const auto& b : g_alloc.live) {
          if (b.ptr == nullptr) continue;
          const std::string_view mem(static_cast<const char*>(b.ptr), b.size);
          EXPECT_EQ(mem.find(secret.substr(0, 3)), std::string_view::npos) << "password copied to the heap";
        }
      };
      std::mt19937 rng(static_cast<uint32_t>(mode));
      size_t pos = 0;
      while (pos < stream.size()) {
        size_t n = stream.size();
        if (mode == 1) n = 1;
        if (mode == 2) n = std::uniform_int_distribution<size_t>(1, 6)(rng);
        if (mode == 3) n = 17;  // splits just before the client id / inside the will
        n = std::min(n, stream.size() - pos);
        g_alloc.active = true;
        d.feed(std::span(stream.data() + pos, n), {}, c);
        g_alloc.active = false;
        check();
        pos += n;
      }
      EXPECT_TRUE(c.errors.empty());
      ASSERT_EQ(c.types(), (std::vector{PacketType::kConnect, PacketType::kPingreq})) << mode;
      const MqttPacket& p = c.packets[0].pkt;
      EXPECT_EQ(c.packets[0].client_id, "dev-42");
      EXPECT_TRUE(p.will_flag);
      EXPECT_TRUE(p.username_flag);
      EXPECT_TRUE(p.password_flag);
      EXPECT_EQ(p.protocol_level, level);
    }
  }
}

// ---- robustness -------------------------------------------------------------------

TEST(MqttDecoder, SurvivesRandomAndMutatedInput) {
  const Bytes valid = mixedStream();
  std::mt19937 rng(12345);
  for (int iter = 0; iter < 1500; ++iter) {
    Bytes input;
    const int kind = iter % 3;
    if (kind == 0) {
      input.resize(std::uniform_int_distribution<size_t>(0, 3000)(rng));
      for (auto& b : input) b = static_cast<uint8_t>(rng());
    } else {
      input = valid;
      const int flips = std::uniform_int_distribution<int>(1, kind == 1 ? 4 : 60)(rng);
      for (int f = 0; f < flips; ++f) {
        input[std::uniform_int_distribution<size_t>(0, input.size() - 1)(rng)] = static_cast<uint8_t>(rng());
      }
    }
    MqttDecoder d;
    if (iter % 4 == 1) d.startMidstream();
    d.setProtocolLevel(static_cast<uint8_t>(iter % 6));
    MqttDecoderLimits limits;
    limits.max_packet_size = iter % 5 == 0 ? 64 : 1u << 20;
    Collector c;
    size_t pos = 0;
    while (pos < input.size()) {
      const size_t n = std::min(std::uniform_int_distribution<size_t>(1, 700)(rng), input.size() - pos);
      d.feed(std::span(input.data() + pos, n), limits, c);
      if (rng() % 50 == 0) d.onGap();
      pos += n;
    }
    // Whatever happened, the decoder still frames a clean stream afterwards.
    d.onGap();
    const Bytes tail = cat({encodePingreq(), encodePingreq(), encodePingreq()});
    const size_t before = c.packets.size();
    d.feed(tail, limits, c);
    EXPECT_EQ(c.packets.size(), before + 3) << "iteration " << iter;
  }
}

TEST(MqttDecoder, MovedDecoderKeepsState) {
  ConnectSpec cs;
  cs.client_id = "mover";
  const Bytes connect = encodeConnect(cs);
  MqttDecoder a;
  Collector c;
  a.feed(std::span(connect.data(), 15), {}, c);
  MqttDecoder b = std::move(a);
  b.feed(std::span(connect.data() + 15, connect.size() - 15), {}, c);
  ASSERT_EQ(c.packets.size(), 1u);
  EXPECT_EQ(c.packets[0].client_id, "mover");
}

// The inline parser of the commonest packets must agree with the general one
// wherever it answers: every first byte, every short length, bodies that are
// sound, truncated or random, at every protocol level.
TEST(MqttDecoderFastPath, ParseCommonAgreesWithParseWhole) {
  std::mt19937 rng(7);
  const MqttDecoderLimits limits;
  int answered = 0;
  for (int first = 0; first < 256; ++first) {
    for (uint32_t len : {0u,   1u,   2u,   3u,   4u,   5u,   6u,   7u,   8u,    9u,    10u,   11u,   12u,  13u,
                         14u,  15u,  16u,  17u,  18u,  19u,  20u,  21u,  22u,   23u,   24u,   126u,  127u, 128u,
                         129u, 200u, 300u, 999u, 16383u, 16384u}) {
      for (int trial = 0; trial < (len <= 24 ? 24 : 6); ++trial) {
        std::vector<uint8_t> body(len);
        for (auto& b : body) b = static_cast<uint8_t>(rng());
        // Half the PUBLISH bodies get a topic length that fits.
        if (len >= 2 && trial % 2 == 0) {
          body[0] = 0;
          body[1] = static_cast<uint8_t>(rng() % std::min<uint32_t>(len - 1, 256));
        }
        MqttPacket fast;
        if (!MqttDecoder::parseCommon(static_cast<uint8_t>(first), body.data(), len, fast)) continue;
        ++answered;
        for (uint8_t level : {uint8_t{0}, kMqtt31, kMqtt311, kMqtt5}) {
          MqttPacket slow;
          ASSERT_TRUE(
              MqttDecoder::parseWhole(static_cast<uint8_t>(first), level, body.data(), len, limits, slow))
              << "first " << first << " len " << len << " level " << int{level};
          EXPECT_EQ(fast.type, slow.type);
          EXPECT_EQ(fast.flags, slow.flags);
          EXPECT_EQ(fast.remaining_length, slow.remaining_length);
          EXPECT_EQ(fast.qos, slow.qos);
          EXPECT_EQ(fast.has_packet_id, slow.has_packet_id);
          EXPECT_EQ(fast.packet_id, slow.packet_id);
          EXPECT_EQ(fast.reason_code, slow.reason_code);
        }
      }
    }
  }
  // PINGREQ, PINGRESP, PUBACK and the PUBLISH variants were all answered.
  EXPECT_GT(answered, 1000);
}

// Whole packets with a remaining length of two to four bytes, minimal or not,
// go the inline way when they arrive whole; a byte at a time they go the
// general way. Both must see the same packets and the same errors.
TEST(MqttDecoderFastPath, LongAndNonMinimalLengthsMatchTheGeneralPath) {
  const Bytes stream = cat({encodePublish(kMqtt311, "t/long", 0, 0, Bytes(200, 0x41)),
                            encodePublish(kMqtt311, "t/longer", 1, 77, Bytes(20000, 0x42)),
                            Bytes{0xC0, 0x80, 0x00},                    // PINGREQ, length 0 in two bytes
                            Bytes{0x40, 0x82, 0x80, 0x00, 0x00, 0x07},  // PUBACK 7, length 2 in three bytes
                            encodePingreq(),
                            Bytes{0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01},  // a fifth length byte
                            encodePingreq(), encodePingreq()});
  ASSERT_EQ(stream[2] & 0x80, 0);  // 2-byte length
  ASSERT_EQ(stream[1] & 0x80, 0x80);
  MqttDecoder whole;
  Collector a;
  feedAll(whole, stream, a);
  MqttDecoder bytewise;
  Collector b;
  feedBytewise(bytewise, stream, b);
  EXPECT_EQ(a.described(), b.described());
  EXPECT_EQ(a.errors, b.errors);
  ASSERT_GE(a.packets.size(), 5u);
  EXPECT_EQ(a.packets[0].pkt.remaining_length, 2u + 6u + 200u);
  EXPECT_EQ(a.packets[1].pkt.packet_id, 77);
  EXPECT_EQ(a.packets[1].pkt.remaining_length, 2u + 8u + 2u + 20000u);
  EXPECT_EQ(a.packets[2].pkt.type, PacketType::kPingreq);
  EXPECT_EQ(a.packets[3].pkt.type, PacketType::kPuback);
  EXPECT_EQ(a.packets[3].pkt.packet_id, 7);
  ASSERT_FALSE(a.errors.empty());
  EXPECT_EQ(a.errors[0], ParseError::kBadRemainingLength);
}

}  // namespace
}  // namespace mqttlive
