// Honesty of the verdicts, end to end through the engine (capture -> TCP ->
// MQTT -> tracker -> JSON): data we did not see never turns into a confident
// verdict against the client, and a keepalive is never invented.
//  - capture drops make the verdicts of the connections open at that moment
//    uncertain (expiry and close), until the client is heard again;
//  - a TCP gap on a flow (bytes never captured: a hole given up, a FIN beyond
//    what we saw, a snaplen cut) makes its verdict uncertain instead of
//    blaming the client;
//  - a connection picked up midstream has no keepalive (null, no deadline, no
//    expiry) until one is inferred from a steady cadence, and then it says
//    "inferred".
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mqttlive/engine.h"
#include "mqttlive/json_events.h"
#include "mqttlive/mqtt_encoder.h"
#include "mqttlive/packet_decoder.h"
#include "mqttlive/pcap_writer.h"
#include "support/capture_run.h"

namespace mqttlive {
namespace {

using namespace mqttlive::testing;
constexpr Micros kS = kMicrosPerSecond;
constexpr Micros kT0 = 1'700'000'000 * kS;

ConnectSpec spec(const std::string& id, uint16_t keepalive) {
  ConnectSpec s;
  s.client_id = id;
  s.keepalive = keepalive;
  return s;
}

// Handshake at kT0, CONNECT 1 ms later, CONNACK 1 ms after that.
void connectAtT0(TcpConversation& c, const std::string& id, uint16_t keepalive) {
  c.handshake(kT0);
  c.client(kT0 + 1000, encodeConnect(spec(id, keepalive)));
  c.broker(kT0 + 2000, encodeConnack(ConnackSpec{}));
}

struct Lines : EventSink {
  std::vector<std::string> lines;
  void onEvent(const Event& e) override {
    std::string l;
    JsonEventWriter::format(l, e);
    lines.push_back(l);
  }
  std::vector<std::string> of(const std::string& event) const { return eventsOf(lines, event); }
};

// Frames of a PcapWriter (classic little-endian pcap) fed to an engine up to
// and including the frame at `until` (index), returning the next index.
size_t feedFrames(Engine& engine, const PcapWriter& w, size_t from, size_t until) {
  const auto& b = w.bytes();
  size_t index = 0;
  for (size_t pos = 24; pos + 16 <= b.size(); ++index) {
    auto le32 = [&](size_t at) {
      return b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (uint32_t{b[at + 3]} << 24);
    };
    const uint32_t caplen = le32(pos + 8);
    if (index >= from && index <= until) {
      const Micros ts = static_cast<Micros>(le32(pos)) * kS + le32(pos + 4);
      engine.onFrame(ts, dlt::kEthernet, std::span<const uint8_t>(b.data() + pos + 16, caplen));
    }
    pos += 16 + caplen;
  }
  return until + 1;
}

// ---- capture drops ----

TEST(Honesty, CaptureDropsMakeTheExpiryAndTheBrokerCloseUncertain) {
  PcapWriter w;
  TcpConversation c(w, v4("10.4.0.2", 51000), v4("10.4.0.1", 1883));
  connectAtT0(c, "dropped", 4);
  // The broker closes the silent client at 1.5 x 4 s (Mosquitto: plain FIN).
  c.brokerFin(kT0 + 7 * kS, TcpConversation::Reply::kFin);

  Lines sink;
  Engine engine(EngineConfig{}, sink);
  // Everything up to the CONNACK (handshake: 3 frames, CONNECT + ACK, CONNACK + ACK).
  feedFrames(engine, w, 0, 6);
  engine.onCaptureDrops(5);  // the kernel dropped packets: maybe the client's pings
  feedFrames(engine, w, 7, 1000);
  engine.finish(kT0 + 20 * kS);

  const auto expired = sink.of("keepalive_expired");
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(field(expired[0], "uncertain"), "true") << expired[0];
  const auto closed = sink.of("closed");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(field(closed[0], "uncertain"), "true") << closed[0];
}

TEST(Honesty, AfterDropsAClientHeardAgainIsJudgedWithCertainty) {
  PcapWriter w;
  TcpConversation c(w, v4("10.4.0.2", 51001), v4("10.4.0.1", 1883));
  connectAtT0(c, "recovered", 4);
  c.client(kT0 + 3 * kS, encodePingreq());  // heard after the drops
  c.broker(kT0 + 3 * kS + 500, encodePingresp());

  Lines sink;
  Engine engine(EngineConfig{}, sink);
  feedFrames(engine, w, 0, 6);
  engine.onCaptureDrops(5);
  feedFrames(engine, w, 7, 1000);
  engine.advanceTo(kT0 + 20 * kS);
  const auto expired = sink.of("keepalive_expired");
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(field(expired[0], "uncertain"), "false") << expired[0];
}

// ---- TCP gaps ----

// The client's DISCONNECT was never captured; its FIN was. Seen naively that
// is "closed without DISCONNECT"; the FIN's sequence number shows bytes are
// missing, so the verdict must say it is uncertain.
TEST(Honesty, BytesMissingBeforeTheClientFinMakeTheCloseUncertain) {
  PcapWriter w;
  const Endpoint cl = v4("10.4.0.2", 51002), br = v4("10.4.0.1", 1883);
  TcpConversation c(w, cl, br);
  connectAtT0(c, "lost-disconnect", 30);
  PcapWriter scratch;  // the DISCONNECT goes here: not in the capture
  TcpConversation hidden(scratch, cl, br, c.clientSeq(), c.brokerSeq());
  hidden.client(kT0 + 5 * kS, encodeDisconnect(kMqtt311));
  TcpConversation after(w, cl, br, hidden.clientSeq(), hidden.brokerSeq());
  after.clientFin(kT0 + 5 * kS + 100);

  const auto lines = runCapture(w);
  const auto closed = eventsOf(lines, "closed");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(field(closed[0], "uncertain"), "true") << closed[0];
  EXPECT_EQ(field(closed[0], "gaps"), "1") << closed[0];
  EXPECT_NE(field(closed[0], "reason"), "\"graceful_disconnect\"");  // not invented either
  EXPECT_EQ(field(lines.back(), "gaps"), "1") << lines.back();
}

// A snaplen cut: the client's last PUBLISH was longer than the capture keeps,
// so it never decodes. The silence after it may be our loss, not the client's.
TEST(Honesty, SnaplenCutAfterTheLastClientPacketMakesTheExpiryUncertain) {
  PcapWriter w;
  const Endpoint cl = v4("10.4.0.2", 51003), br = v4("10.4.0.1", 1883);
  TcpConversation c(w, cl, br);
  connectAtT0(c, "cut", 4);
  const std::vector<uint8_t> big(3000, 'p');
  const auto pub = encodePublish(kMqtt311, "t", 0, 0, big);
  std::vector<uint8_t> frame =
      PcapWriter::buildFrame(dlt::kEthernet, cl, br, c.clientSeq(), c.brokerSeq(), tcpflag::kAck | tcpflag::kPsh, pub);

  Lines sink;
  Engine engine(EngineConfig{}, sink);
  feedFrames(engine, w, 0, 1000);
  frame.resize(200);  // captured with snaplen 200: IP says 3000+ bytes, 200 are here
  engine.onFrame(kT0 + 2 * kS, dlt::kEthernet, frame);
  engine.advanceTo(kT0 + 20 * kS);
  EXPECT_EQ(engine.stats().gaps_by_reason[static_cast<int>(GapReason::kSnaplen)], 1u);
  const auto expired = sink.of("keepalive_expired");
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(field(expired[0], "uncertain"), "true") << expired[0];
}

// A hole that later client data sits behind is given up when the broker
// acknowledges past it; the client was heard after the hole, so the silence
// that follows is real and the expiry is certain.
TEST(Honesty, ClientHeardAfterAHoleIsJudgedWithCertainty) {
  PcapWriter w;
  const Endpoint cl = v4("10.4.0.2", 51004), br = v4("10.4.0.1", 1883);
  TcpConversation c(w, cl, br);
  connectAtT0(c, "hole", 4);
  PcapWriter scratch;
  TcpConversation hidden(scratch, cl, br, c.clientSeq(), c.brokerSeq());
  hidden.clientNoAck(kT0 + 1 * kS, encodePingreq());  // lost
  TcpConversation after(w, cl, br, hidden.clientSeq(), c.brokerSeq());
  after.client(kT0 + 2 * kS, encodePingreq());  // seen, behind the hole; the broker ACKs both
  after.broker(kT0 + 30 * kS, encodePublish(kMqtt311, "later", 0, 0, {1}));  // packet time moves on
  const auto lines = runCapture(w);
  EXPECT_EQ(field(lines.back(), "gaps"), "1") << lines.back();
  const auto expired = eventsOf(lines, "keepalive_expired");
  ASSERT_EQ(expired.size(), 1u) << lines.back();
  EXPECT_EQ(field(expired[0], "uncertain"), "false") << expired[0];
  // The ping behind the hole counts from when it was delivered: the broker's ACK, microseconds later.
  const double last = std::stod(field(expired[0], "last_activity"));
  EXPECT_GE(last, 1700000002.0) << expired[0];
  EXPECT_LT(last, 1700000002.001) << expired[0];
}

// ---- midstream: no invented keepalive ----

TEST(Honesty, MidstreamWithoutACadenceHasNoKeepaliveNoDeadlineNoExpiry) {
  PcapWriter w;
  TcpConversation c(w, v4("10.4.0.2", 51005), v4("10.4.0.1", 1883), 424242, 848484);
  // No handshake, no CONNECT: irregular client traffic, then a long silence.
  c.client(kT0, encodePublish(kMqtt311, "a", 0, 0, {1}));
  c.client(kT0 + 7 * kS, encodePingreq());
  c.broker(kT0 + 7 * kS + 300, encodePingresp());
  c.client(kT0 + 50 * kS, encodePublish(kMqtt311, "a", 0, 0, {2}));
  c.client(kT0 + 61 * kS, encodePingreq());
  c.broker(kT0 + 61 * kS + 300, encodePingresp());
  c.broker(kT0 + 5000 * kS, encodePublish(kMqtt311, "down", 0, 0, {3}));  // broker traffic: not activity

  const auto lines = runCapture(w);
  ASSERT_EQ(eventsOf(lines, "midstream").size(), 1u);
  EXPECT_TRUE(eventsOf(lines, "keepalive_learned").empty());
  EXPECT_TRUE(eventsOf(lines, "keepalive_expired").empty());
  for (const auto& l : lines) {
    if (field(l, "event") == "\"summary\"") continue;
    EXPECT_EQ(field(l, "client_id"), "null") << l;
    EXPECT_EQ(field(l, "midstream"), "true") << l;
    if (!field(l, "keepalive").empty()) EXPECT_EQ(field(l, "keepalive"), "null") << l;
    if (!field(l, "keepalive_source").empty()) EXPECT_EQ(field(l, "keepalive_source"), "null") << l;
  }
  const auto end = eventsOf(lines, "open_at_end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(field(end[0], "deadline"), "null") << end[0];
  EXPECT_EQ(field(end[0], "state"), "\"active\"") << end[0];
}

TEST(Honesty, MidstreamKeepaliveIsOnlyEverInferredAndSaysSo) {
  PcapWriter w;
  TcpConversation c(w, v4("10.4.0.2", 51006), v4("10.4.0.1", 1883), 515151, 626262);
  for (int i = 0; i < 4; ++i) {
    c.client(kT0 + i * 15 * kS, encodePingreq());
    c.broker(kT0 + i * 15 * kS + 400, encodePingresp());
  }
  c.broker(kT0 + 200 * kS, encodePublish(kMqtt311, "later", 0, 0, {1}));  // moves packet time on
  const auto lines = runCapture(w);
  const auto learned = eventsOf(lines, "keepalive_learned");
  ASSERT_EQ(learned.size(), 1u);
  EXPECT_EQ(field(learned[0], "keepalive"), "15");
  EXPECT_EQ(field(learned[0], "keepalive_source"), "\"inferred\"");
  // Every later verdict carries the inferred keepalive and says where it came from.
  const auto expired = eventsOf(lines, "keepalive_expired");
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(field(expired[0], "keepalive_source"), "\"inferred\"") << expired[0];
  EXPECT_EQ(field(expired[0], "midstream"), "true") << expired[0];
  for (const auto& l : lines) {
    const std::string src = field(l, "keepalive_source");
    if (!src.empty() && src != "null") EXPECT_EQ(src, "\"inferred\"") << l;
  }
}

}  // namespace
}  // namespace mqttlive
