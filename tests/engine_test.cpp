// The whole offline path (libpcap -> decode -> reassembly -> MQTT -> tracker ->
// JSON) over captures the tests write themselves, one per behaviour.
#include "mqttlive/engine.h"
#include "mqttlive/json_events.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "mqttlive/mqtt_encoder.h"
#include "mqttlive/packet_decoder.h"
#include "support/capture_run.h"

namespace mqttlive {
namespace {

using namespace mqttlive::testing;
constexpr Micros kS = kMicrosPerSecond;
constexpr Micros kT0 = 1'700'000'000 * kS;

ConnectSpec spec(const std::string& id, uint16_t keepalive, uint8_t level = kMqtt311) {
  ConnectSpec s;
  s.client_id = id;
  s.keepalive = keepalive;
  s.protocol_level = level;
  return s;
}

struct Scenario {
  PcapWriter w;
  Endpoint client = v4("10.1.0.2", 51000);
  Endpoint broker = v4("10.1.0.1", 1883);
  TcpConversation conv{w, client, broker};
  // Handshake + CONNECT/CONNACK at kT0.
  void connect(const ConnectSpec& s, const ConnackSpec& a = ConnackSpec{}) {
    conv.handshake(kT0);
    conv.client(kT0 + 1000, encodeConnect(s));
    conv.broker(kT0 + 2000, encodeConnack(a));
  }
};

std::string closeReason(const std::vector<std::string>& lines) {
  auto c = eventsOf(lines, "closed");
  return c.size() == 1 ? field(c[0], "reason") : "<" + std::to_string(c.size()) + " closed events>";
}

TEST(Engine, GracefulDisconnect) {
  Scenario s;
  s.connect(spec("g", 10));
  s.conv.client(kT0 + 3 * kS, encodeDisconnect(kMqtt311));
  s.conv.clientFin(kT0 + 3 * kS + 100);
  auto lines = runCapture(s.w);
  EXPECT_EQ(closeReason(lines), "\"graceful_disconnect\"");
  auto closed = eventsOf(lines, "closed");
  EXPECT_EQ(field(closed[0], "client_tcp"), "\"responsive\"");
  EXPECT_EQ(field(closed[0], "ts"), "1700000003.000100");
  EXPECT_EQ(field(eventsOf(lines, "connected")[0], "client"), "\"10.1.0.2:51000\"");
  EXPECT_EQ(eventsOf(lines, "keepalive_expired").size(), 0u);
  EXPECT_EQ(field(lines.back(), "event"), "\"summary\"");
}

TEST(Engine, ClientFinAndRstWithoutDisconnect) {
  Scenario a;
  a.connect(spec("f", 10));
  a.conv.clientFin(kT0 + 2 * kS);
  EXPECT_EQ(closeReason(runCapture(a.w)), "\"client_fin_without_disconnect\"");
  Scenario b;
  b.connect(spec("r", 10));
  b.conv.clientRst(kT0 + 2 * kS);
  EXPECT_EQ(closeReason(runCapture(b.w)), "\"client_rst_without_disconnect\"");
}

TEST(Engine, VanishedClientBrokerEnforcesKeepalive) {
  Scenario s;
  s.connect(spec("vanished", 4));
  // Last client packet: CONNECT at kT0+1000us; deadline = +6 s. Mosquitto-style late FIN at +8 s, never ACKed.
  s.conv.brokerFin(kT0 + 8 * kS, TcpConversation::Reply::kNothing);
  auto lines = runCapture(s.w);
  auto exp = eventsOf(lines, "keepalive_expired");
  ASSERT_EQ(exp.size(), 1u);
  EXPECT_EQ(field(exp[0], "ts"), "1700000006.001000");
  EXPECT_EQ(closeReason(lines), "\"broker_close_keepalive\"");
  auto closed = eventsOf(lines, "closed")[0];
  EXPECT_EQ(field(closed, "client_tcp"), "\"unresponsive\"");
  EXPECT_EQ(field(closed, "expired"), "true");
  EXPECT_EQ(field(closed, "closed_by"), "\"broker\"");
  EXPECT_EQ(field(closed, "past_deadline"), "1.999000");
}

TEST(Engine, HungApplicationIsToldApartFromVanishedHost) {
  Scenario s;
  s.connect(spec("hung", 4));
  s.conv.brokerFin(kT0 + 7 * kS, TcpConversation::Reply::kAckOnly);
  auto closed = eventsOf(runCapture(s.w), "closed");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(field(closed[0], "reason"), "\"broker_close_keepalive\"");
  EXPECT_EQ(field(closed[0], "client_tcp"), "\"responsive\"");
}

TEST(Engine, BrokerCloseOfAnActiveClientIsOther) {
  Scenario s;
  s.connect(spec("kicked", 60));
  s.conv.client(kT0 + 5 * kS, encodePingreq());
  s.conv.brokerFin(kT0 + 6 * kS);
  EXPECT_EQ(closeReason(runCapture(s.w)), "\"broker_close_other\"");
}

TEST(Engine, TakeoverV5) {
  PcapWriter w;
  Endpoint broker = v4("10.1.0.1", 1883);
  TcpConversation old(w, v4("10.1.0.2", 51000), broker, 100, 900);
  TcpConversation neu(w, v4("10.1.0.3", 52000), broker, 300, 700);
  old.handshake(kT0);
  old.client(kT0 + 1000, encodeConnect(spec("dup", 30, kMqtt5)));
  old.broker(kT0 + 2000, encodeConnack(ConnackSpec{.protocol_level = kMqtt5}));
  neu.handshake(kT0 + 5 * kS);
  neu.client(kT0 + 5 * kS + 1000, encodeConnect(spec("dup", 30, kMqtt5)));
  old.broker(kT0 + 5 * kS + 1500, encodeDisconnect(kMqtt5, 0x8E));
  old.brokerFin(kT0 + 5 * kS + 1600);
  neu.broker(kT0 + 5 * kS + 2000, encodeConnack(ConnackSpec{.protocol_level = kMqtt5}));
  auto lines = runCapture(w);
  auto t = eventsOf(lines, "takeover");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(field(t[0], "client"), "\"10.1.0.3:52000\"");
  EXPECT_EQ(field(t[0], "previous_client"), "\"10.1.0.2:51000\"");
  EXPECT_EQ(field(t[0], "client_id"), "\"dup\"");
  EXPECT_EQ(closeReason(lines), "\"broker_close_takeover\"");
  EXPECT_EQ(eventsOf(lines, "open_at_end").size(), 1u);
}

TEST(Engine, ServerKeepAliveFromConnackGovernsTheDeadline) {
  Scenario s;
  ConnackSpec a{.protocol_level = kMqtt5, .has_server_keepalive = true, .server_keepalive = 2};
  s.connect(spec("sk", 60, kMqtt5), a);
  s.conv.clientNoAck(kT0 + 10 * kS, encodePingreq());
  auto lines = runCapture(s.w);
  auto c = eventsOf(lines, "connected");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(field(c[0], "keepalive"), "2");
  EXPECT_EQ(field(c[0], "keepalive_requested"), "60");
  EXPECT_EQ(field(c[0], "keepalive_source"), "\"server_keepalive\"");
  auto exp = eventsOf(lines, "keepalive_expired");
  ASSERT_EQ(exp.size(), 1u);
  EXPECT_EQ(field(exp[0], "ts"), "1700000003.001000");
}

TEST(Engine, PasswordNeverLeavesTheDecoder) {
  Scenario s;
  ConnectSpec c = spec("secretive", 10);
  c.username = "user";
  c.password = "hunter2-TOPSECRET";
  s.connect(c);
  auto lines = runCapture(s.w);
  ASSERT_FALSE(lines.empty());
  for (const auto& l : lines) EXPECT_EQ(l.find("TOPSECRET"), std::string::npos) << l;
  EXPECT_EQ(field(eventsOf(lines, "connected")[0], "username_present"), "true");
}

TEST(Engine, MidstreamPickupLearnsKeepaliveFromPings) {
  PcapWriter w;
  TcpConversation c(w, v4("10.1.0.2", 51000), v4("10.1.0.1", 1883), 777777, 888888);
  // No handshake, no CONNECT: the capture starts with pings every 20 s.
  for (int i = 0; i < 4; ++i) {
    c.client(kT0 + i * 20 * kS, encodePingreq());
    c.broker(kT0 + i * 20 * kS + 500, encodePingresp());
  }
  auto lines = runCapture(w);
  ASSERT_EQ(eventsOf(lines, "midstream").size(), 1u);
  auto learned = eventsOf(lines, "keepalive_learned");
  ASSERT_EQ(learned.size(), 1u);
  EXPECT_EQ(field(learned[0], "keepalive"), "20");
  EXPECT_EQ(field(learned[0], "keepalive_source"), "\"inferred\"");
  EXPECT_EQ(field(learned[0], "client_id"), "null");
  auto end = eventsOf(lines, "open_at_end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(field(end[0], "state"), "\"active\"");
}

// Sends `bytes` as several segments in the given order (indices into the split).
void sendSplit(PcapWriter& w, const Endpoint& src, const Endpoint& dst, uint32_t seq, uint32_t ack, Micros ts,
               const std::vector<uint8_t>& bytes, size_t piece, const std::vector<size_t>& order) {
  for (size_t k = 0; k < order.size(); ++k) {
    size_t off = order[k] * piece;
    if (off >= bytes.size()) continue;
    std::vector<uint8_t> part(bytes.begin() + static_cast<long>(off),
                              bytes.begin() + static_cast<long>(std::min(bytes.size(), off + piece)));
    w.addTcp(ts + static_cast<Micros>(k), src, dst, seq + static_cast<uint32_t>(off), ack,
             tcpflag::kAck | tcpflag::kPsh, part);
  }
}

TEST(Engine, SegmentedReorderedAndDuplicatedConnectStillDecodes) {
  PcapWriter w;
  Endpoint cl = v4("10.1.0.2", 51000), br = v4("10.1.0.1", 1883);
  TcpConversation c(w, cl, br, 0xfffffff0u, 5000);  // ISN near 2^32: sequence numbers wrap inside CONNECT
  c.handshake(kT0);
  auto bytes = encodeConnect(spec("reordered-client", 10));
  uint32_t seq = c.clientSeq();
  sendSplit(w, cl, br, seq, c.brokerSeq(), kT0 + 1000, bytes, 3, {2, 0, 1, 1, 5, 4, 3, 6, 7, 8, 9, 10, 2});
  auto lines = runCapture(w);
  auto sum = lines.back();
  EXPECT_EQ(field(sum, "mqtt_packets_client"), "{\"CONNECT\":1}") << sum;
  EXPECT_EQ(field(sum, "gaps"), "0");
  EXPECT_EQ(field(eventsOf(lines, "open_at_end")[0], "client_id"), "\"reordered-client\"");
}

TEST(Engine, GapIsCountedAndDecoderResynchronises) {
  PcapWriter w;
  Endpoint cl = v4("10.1.0.2", 51000), br = v4("10.1.0.1", 1883);
  TcpConversation c(w, cl, br);
  c.handshake(kT0);
  c.client(kT0 + 1000, encodeConnect(spec("lossy", 10)));
  c.broker(kT0 + 2000, encodeConnack(ConnackSpec{}));
  // A PUBLISH whose middle segment was never captured, then pings.
  std::vector<uint8_t> payload(3000, 'x');
  auto pub = encodePublish(kMqtt311, "t", 0, 0, payload);
  uint32_t seq = c.clientSeq();
  sendSplit(w, cl, br, seq, c.brokerSeq(), kT0 + 2 * kS, pub, 1000, {0, 2, 3});
  // Advance the conversation's sequence past the PUBLISH without capturing it.
  PcapWriter scratch;
  TcpConversation skip(scratch, cl, br, seq, c.brokerSeq());
  skip.clientNoAck(0, pub);
  TcpConversation c2(w, cl, br, skip.clientSeq(), c.brokerSeq());
  c2.client(kT0 + 3 * kS, encodePingreq());
  c2.broker(kT0 + 3 * kS + 400, encodePingresp());
  auto lines = runCapture(w);
  auto sum = lines.back();
  EXPECT_EQ(field(sum, "gaps"), "1") << sum;
  EXPECT_EQ(field(sum, "gap_bytes"), "1000") << sum;
  EXPECT_NE(field(sum, "mqtt_packets_client").find("\"PINGREQ\":1"), std::string::npos) << sum;
  EXPECT_NE(field(sum, "mqtt_packets_broker").find("\"PINGRESP\":1"), std::string::npos) << sum;
}

TEST(Engine, KeepaliveZeroClientStaysOpenWithoutExpiry) {
  Scenario s;
  s.connect(spec("zero", 0));
  s.conv.client(kT0 + 1000 * kS, encodePingreq());
  EngineConfig cfg;
  cfg.tracker.no_keepalive_idle = 100 * kS;
  auto lines = runCapture(s.w, cfg);
  EXPECT_EQ(eventsOf(lines, "keepalive_expired").size(), 0u);
  auto end = eventsOf(lines, "open_at_end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(field(end[0], "deadline"), "null");
  EXPECT_EQ(field(end[0], "keepalive"), "0");
}

TEST(Engine, Ipv6EndpointsAndOtherPorts) {
  PcapWriter w;
  TcpConversation c(w, v6("2001:db8::2", 40000), v6("2001:db8::1", 8883));
  c.handshake(kT0);
  c.client(kT0 + 1000, encodeConnect(spec("six", 10)));
  c.broker(kT0 + 2000, encodeConnack(ConnackSpec{}));
  EngineConfig cfg;
  EXPECT_TRUE(eventsOf(runCapture(w, cfg), "connected").empty());  // 8883 is not a listener by default
  cfg.broker_ports = {8883};
  auto lines = runCapture(w, cfg);
  auto c1 = eventsOf(lines, "connected");
  ASSERT_EQ(c1.size(), 1u);
  EXPECT_EQ(field(c1[0], "client"), "\"[2001:db8::2]:40000\"");
  EXPECT_EQ(field(c1[0], "broker"), "\"[2001:db8::1]:8883\"");
}

TEST(Engine, FlowTableCapIsCounted) {
  PcapWriter w;
  for (uint16_t i = 0; i < 5; ++i) {
    TcpConversation c(w, v4("10.1.0.2", static_cast<uint16_t>(50000 + i)), v4("10.1.0.1", 1883));
    c.handshake(kT0 + i);
  }
  EngineConfig cfg;
  cfg.max_flows = 3;
  auto sum = runCapture(w, cfg).back();
  EXPECT_EQ(field(sum, "tcp_flows"), "3");
  EXPECT_EQ(field(sum, "flows_evicted"), "{\"table_full\":2}") << sum;
}

}  // namespace
}  // namespace mqttlive

namespace mqttlive {
namespace {

TEST(Engine, CaptureDropsMakeSilenceUncertain) {
  using namespace mqttlive::testing;
  struct Sink : EventSink {
    std::vector<std::string> lines;
    void onEvent(const Event& e) override {
      std::string l;
      JsonEventWriter::format(l, e);
      lines.push_back(l);
    }
  } sink;
  EngineConfig cfg;
  Engine engine(cfg, sink);
  Endpoint cl = v4("10.1.0.2", 51000), br = v4("10.1.0.1", 1883);
  auto frame = [&](const Endpoint& s, const Endpoint& d, uint32_t seq, uint32_t ack, uint8_t flags,
                   const std::vector<uint8_t>& p) { return PcapWriter::buildFrame(dlt::kEthernet, s, d, seq, ack, flags, p); };
  engine.onFrame(kT0, dlt::kEthernet, frame(cl, br, 100, 0, tcpflag::kSyn, {}));
  auto connect = encodeConnect(spec("dropped", 4));
  engine.onFrame(kT0 + 10, dlt::kEthernet, frame(cl, br, 101, 0, tcpflag::kAck | tcpflag::kPsh, connect));
  engine.onCaptureDrops(3);
  engine.advanceTo(kT0 + 7 * kS);
  ASSERT_FALSE(sink.lines.empty());
  EXPECT_EQ(field(sink.lines.back(), "event"), "\"keepalive_expired\"");
  EXPECT_EQ(field(sink.lines.back(), "uncertain"), "true") << sink.lines.back();
}

}  // namespace
}  // namespace mqttlive
