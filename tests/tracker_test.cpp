#include "mqttlive/tracker.h"

#include <gtest/gtest.h>

#include "support/recording_sink.h"

namespace mqttlive {
namespace {

using testing::RecordingSink;
constexpr Micros kS = kMicrosPerSecond;
constexpr Micros kT0 = 1'700'000'000 * kS;

Endpoint ep(uint8_t last, uint16_t port) {
  uint8_t a[4] = {10, 0, 0, last};
  return Endpoint{IpAddr::fromV4(a), port};
}

MqttPacket connect(std::string_view id, uint16_t keepalive, uint8_t level = kMqtt311) {
  MqttPacket p;
  p.type = PacketType::kConnect;
  p.protocol_level = level;
  p.client_id = id;
  p.keepalive = keepalive;
  p.clean_start = true;
  return p;
}
MqttPacket connack(uint8_t code = 0) {
  MqttPacket p;
  p.type = PacketType::kConnack;
  p.reason_code = code;
  return p;
}
MqttPacket simple(PacketType t, uint8_t reason = 0) {
  MqttPacket p;
  p.type = t;
  p.reason_code = reason;
  return p;
}

class TrackerTest : public ::testing::Test {
 protected:
  ConnHandle openConnected(uint8_t host, std::string_view id, uint16_t keepalive, Micros at = kT0) {
    ConnHandle h = tracker.open(at, ep(host, 40000), ep(1, 1883), false);
    tracker.onClientPacket(h, at, connect(id, keepalive));
    tracker.onBrokerPacket(h, at + 1000, connack());
    return h;
  }
  void close(ConnHandle h, Micros at, Side side, bool rst = false, ClientTcp tcp = ClientTcp::kResponsive) {
    tracker.onCloseStarted(h, at, side, rst);
    tracker.onClosed(h, tcp);
  }
  TrackerConfig cfg;
  RecordingSink sink;
  SessionTracker tracker{cfg, sink};
};

TEST_F(TrackerTest, ConnectedCarriesEffectiveKeepaliveAndItsSource) {
  openConnected(2, "dev-1", 10);
  ASSERT_EQ(sink.count(EventType::kConnected), 1u);
  const std::string& line = sink.lines[0];
  EXPECT_NE(line.find("\"event\":\"connected\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"client_id\":\"dev-1\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"keepalive\":10,\"keepalive_source\":\"connect\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"protocol\":\"3.1.1\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"client\":\"10.0.0.2:40000\",\"broker\":\"10.0.0.1:1883\""), std::string::npos) << line;
}

TEST_F(TrackerTest, ExpiryFiresAtTheExactDeadlineAndOnlyOnce) {
  openConnected(2, "dev-1", 10);
  const Micros deadline = kT0 + 15 * kS;  // CONNECT at kT0 is the last activity
  tracker.advanceTo(deadline - 1);
  EXPECT_EQ(sink.count(EventType::kKeepaliveExpired), 0u);
  tracker.advanceTo(deadline + 7 * kS);
  ASSERT_EQ(sink.count(EventType::kKeepaliveExpired), 1u);
  EXPECT_EQ(sink.ts.back(), deadline);
  EXPECT_EQ(tracker.stateCounts()[static_cast<int>(ConnState::kExpired)], 1u);
  tracker.advanceTo(deadline + 100 * kS);
  EXPECT_EQ(sink.count(EventType::kKeepaliveExpired), 1u);
}

TEST_F(TrackerTest, ClientActivityPushesTheDeadlineOut) {
  ConnHandle h = openConnected(2, "dev-1", 10);
  tracker.advanceTo(kT0 + 9 * kS);
  tracker.onClientPacket(h, kT0 + 9 * kS, simple(PacketType::kPingreq));
  tracker.advanceTo(kT0 + 20 * kS);
  EXPECT_EQ(sink.count(EventType::kKeepaliveExpired), 0u);
  tracker.advanceTo(kT0 + 24 * kS);
  ASSERT_EQ(sink.count(EventType::kKeepaliveExpired), 1u);
  EXPECT_EQ(sink.ts.back(), kT0 + 24 * kS);
}

TEST_F(TrackerTest, BrokerTrafficIsNotClientActivity) {
  ConnHandle h = openConnected(2, "dev-1", 10);
  tracker.onBrokerPacket(h, kT0 + 12 * kS, simple(PacketType::kPublish));
  tracker.advanceTo(kT0 + 15 * kS);
  EXPECT_EQ(sink.count(EventType::kKeepaliveExpired), 1u);
}

TEST_F(TrackerTest, FactorIsConfigurable) {
  cfg.keepalive_factor = 2.0;
  SessionTracker t2(cfg, sink);
  ConnHandle h = t2.open(kT0, ep(2, 1), ep(1, 1883), false);
  t2.onClientPacket(h, kT0, connect("x", 10));
  t2.advanceTo(kT0 + 19 * kS);
  EXPECT_EQ(sink.count(EventType::kKeepaliveExpired), 0u);
  t2.advanceTo(kT0 + 21 * kS);
  EXPECT_EQ(sink.count(EventType::kKeepaliveExpired), 1u);
  EXPECT_EQ(sink.ts.back(), kT0 + 20 * kS);
}

TEST_F(TrackerTest, ServerKeepAliveOverridesTheRequest) {
  ConnHandle h = tracker.open(kT0, ep(2, 1), ep(1, 1883), false);
  tracker.onClientPacket(h, kT0, connect("", 0, kMqtt5));
  MqttPacket ack = connack();
  ack.has_server_keepalive = true;
  ack.server_keepalive = 65535;
  ack.assigned_client_id = "auto-1234";
  tracker.onBrokerPacket(h, kT0 + 10, ack);
  const std::string& line = sink.lines.back();
  EXPECT_NE(line.find("\"client_id\":\"auto-1234\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"keepalive\":65535,\"keepalive_source\":\"server_keepalive\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"keepalive_requested\":0"), std::string::npos) << line;
  EXPECT_NE(line.find("\"protocol\":\"5.0\""), std::string::npos) << line;
  EXPECT_EQ(tracker.info(h)->deadline, kT0 + 98'302 * kS + kS / 2);
}

TEST_F(TrackerTest, KeepaliveZeroHasNoDeadlineButGoesIdle) {
  cfg.no_keepalive_idle = 60 * kS;
  SessionTracker t2(cfg, sink);
  ConnHandle h = t2.open(kT0, ep(2, 1), ep(1, 1883), false);
  t2.onClientPacket(h, kT0, connect("zero", 0));
  t2.onBrokerPacket(h, kT0, connack());
  t2.advanceTo(kT0 + 59 * kS);
  EXPECT_EQ(t2.stateCounts()[static_cast<int>(ConnState::kActive)], 1u);
  t2.advanceTo(kT0 + 3600 * kS);
  EXPECT_EQ(sink.count(EventType::kKeepaliveExpired), 0u);
  EXPECT_EQ(t2.stateCounts()[static_cast<int>(ConnState::kNoKeepaliveIdle)], 1u);
  EXPECT_EQ(t2.info(h)->deadline, 0);
  t2.onClientPacket(h, kT0 + 3601 * kS, simple(PacketType::kPublish));
  EXPECT_EQ(t2.stateCounts()[static_cast<int>(ConnState::kActive)], 1u);
}

TEST_F(TrackerTest, EveryCloseReason) {
  ConnHandle a = openConnected(2, "a", 10);
  tracker.onClientPacket(a, kT0 + 1 * kS, simple(PacketType::kDisconnect));
  close(a, kT0 + 1 * kS, Side::kBroker);  // broker closes after DISCONNECT: still graceful
  ConnHandle b = openConnected(3, "b", 10);
  close(b, kT0 + 2 * kS, Side::kClient);
  ConnHandle c = openConnected(4, "c", 10);
  close(c, kT0 + 2 * kS, Side::kClient, true);
  ConnHandle d = openConnected(5, "d", 10);
  close(d, kT0 + 14 * kS, Side::kBroker, false, ClientTcp::kUnresponsive);  // silent 14 s > 10 s: early enforcement
  ConnHandle e = openConnected(6, "e", 10);
  close(e, kT0 + 3 * kS, Side::kBroker);  // silent only 3 s
  ConnHandle f = openConnected(7, "f", 60);
  tracker.onBrokerPacket(f, kT0 + 4 * kS, simple(PacketType::kDisconnect, 0x8D));
  close(f, kT0 + 4 * kS, Side::kBroker);
  ConnHandle g = openConnected(8, "g", 60);
  tracker.onBrokerPacket(g, kT0 + 4 * kS, simple(PacketType::kDisconnect, 0x8E));
  close(g, kT0 + 4 * kS, Side::kBroker);
  EXPECT_EQ(sink.reasons, (std::vector<CloseReason>{
                              CloseReason::kGracefulDisconnect, CloseReason::kClientFinWithoutDisconnect,
                              CloseReason::kClientRstWithoutDisconnect, CloseReason::kBrokerCloseKeepalive,
                              CloseReason::kBrokerCloseOther, CloseReason::kBrokerCloseKeepalive,
                              CloseReason::kBrokerCloseTakeover}));
  // d closed 1 s before its 15 s deadline: enforcement delay -1 s.
  ASSERT_EQ(sink.delays.size(), 2u);
  EXPECT_EQ(sink.delays[0], -1 * kS);
  EXPECT_EQ(tracker.openCount(), 0u);
  const std::string& dline = sink.lines[static_cast<size_t>(sink.first(EventType::kClosed)) + 6];
  EXPECT_NE(dline.find("\"reason\":\"broker_close_keepalive\""), std::string::npos) << dline;
  EXPECT_NE(dline.find("\"client_tcp\":\"unresponsive\""), std::string::npos) << dline;
  EXPECT_NE(dline.find("\"expired\":false"), std::string::npos) << dline;
}

TEST_F(TrackerTest, CloseAfterExpiryIsMarkedExpired) {
  ConnHandle h = openConnected(2, "late", 10);
  tracker.advanceTo(kT0 + 17 * kS);
  close(h, kT0 + 18 * kS, Side::kBroker, false, ClientTcp::kUnresponsive);
  ASSERT_EQ(sink.reasons.size(), 1u);
  EXPECT_EQ(sink.reasons[0], CloseReason::kBrokerCloseKeepalive);
  EXPECT_NE(sink.lines.back().find("\"expired\":true"), std::string::npos);
  EXPECT_NE(sink.lines.back().find("\"duration\":18.000000"), std::string::npos) << sink.lines.back();
  ASSERT_EQ(sink.delays.size(), 1u);
  EXPECT_EQ(sink.delays[0], 3 * kS);
}

TEST_F(TrackerTest, DeadlineBeforeCloseStillFiresFirst) {
  ConnHandle h = openConnected(2, "x", 10);
  // No advanceTo between: the close itself must not swallow the expiry.
  close(h, kT0 + 20 * kS, Side::kBroker);
  ASSERT_EQ(sink.count(EventType::kKeepaliveExpired), 1u);
  EXPECT_LT(sink.first(EventType::kKeepaliveExpired), sink.first(EventType::kClosed));
}

TEST_F(TrackerTest, TakeoverNamesBothAndExplainsTheOldClose) {
  ConnHandle old = openConnected(2, "shared", 30);
  tracker.advanceTo(kT0 + 5 * kS);
  ConnHandle neu = openConnected(3, "shared", 30, kT0 + 5 * kS);
  ASSERT_EQ(sink.count(EventType::kTakeover), 1u);
  const std::string& line = sink.lines[static_cast<size_t>(sink.first(EventType::kTakeover))];
  EXPECT_NE(line.find("\"client\":\"10.0.0.3:40000\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"previous_client\":\"10.0.0.2:40000\""), std::string::npos) << line;
  close(old, kT0 + 5 * kS + 2000, Side::kBroker);
  EXPECT_EQ(sink.reasons.back(), CloseReason::kBrokerCloseTakeover);
  // The new holder of the id can itself be taken over later.
  openConnected(4, "shared", 30, kT0 + 6 * kS);
  EXPECT_EQ(sink.count(EventType::kTakeover), 2u);
  EXPECT_TRUE(tracker.info(neu)->taken_over);
}

TEST_F(TrackerTest, ConnectRefusedCarriesTheCode) {
  ConnHandle h = tracker.open(kT0, ep(2, 1), ep(1, 1883), false);
  tracker.onClientPacket(h, kT0, connect("bad", 10, kMqtt5));
  tracker.onBrokerPacket(h, kT0 + 10, connack(134));
  ASSERT_EQ(sink.count(EventType::kConnectRefused), 1u);
  EXPECT_NE(sink.lines.back().find("\"code\":134"), std::string::npos);
  EXPECT_EQ(tracker.stats().refused_by_code[134], 1u);
  EXPECT_EQ(sink.count(EventType::kConnected), 0u);
}

TEST_F(TrackerTest, PingRoundTrip) {
  ConnHandle h = openConnected(2, "p", 10);
  tracker.onClientPacket(h, kT0 + 5 * kS, simple(PacketType::kPingreq));
  tracker.onBrokerPacket(h, kT0 + 5 * kS + 1234, simple(PacketType::kPingresp));
  tracker.onBrokerPacket(h, kT0 + 6 * kS, simple(PacketType::kPingresp));  // unsolicited: no sample
  EXPECT_EQ(sink.rtts, std::vector<Micros>{1234});
}

TEST_F(TrackerTest, MidstreamLearnsKeepaliveFromPingCadence) {
  ConnHandle h = tracker.open(kT0, ep(2, 1), ep(1, 1883), true);
  for (int i = 0; i < 3; ++i) tracker.onClientPacket(h, kT0 + i * 30 * kS + i * 1000, simple(PacketType::kPingreq));
  ASSERT_EQ(sink.count(EventType::kMidstream), 1u);
  ASSERT_EQ(sink.count(EventType::kKeepaliveLearned), 1u);
  const std::string& line = sink.lines.back();
  EXPECT_NE(line.find("\"keepalive\":30,\"keepalive_source\":\"inferred\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"client_id\":null"), std::string::npos) << line;
  EXPECT_NE(line.find("\"midstream\":true"), std::string::npos) << line;
  tracker.advanceTo(kT0 + 60 * kS + 2000 + 45 * kS);
  EXPECT_EQ(sink.count(EventType::kKeepaliveExpired), 1u);
}

TEST_F(TrackerTest, MidstreamCadenceRestartsAfterAnotherPacket) {
  // Any other client packet breaks a cadence: pings only count again from the next one.
  ConnHandle h = tracker.open(kT0, ep(2, 1), ep(1, 1883), true);
  tracker.onClientPacket(h, kT0, simple(PacketType::kPingreq));
  tracker.onClientPacket(h, kT0 + 30 * kS, simple(PacketType::kPingreq));
  tracker.onClientPacket(h, kT0 + 45 * kS, simple(PacketType::kPublish));
  tracker.onClientPacket(h, kT0 + 60 * kS, simple(PacketType::kPingreq));
  tracker.onClientPacket(h, kT0 + 90 * kS, simple(PacketType::kPingreq));
  EXPECT_EQ(sink.count(EventType::kKeepaliveLearned), 0u);
  tracker.onClientPacket(h, kT0 + 120 * kS, simple(PacketType::kPingreq));
  EXPECT_EQ(sink.count(EventType::kKeepaliveLearned), 1u);
}

TEST_F(TrackerTest, MidstreamNeverInventsAKeepalive) {
  ConnHandle h = tracker.open(kT0, ep(2, 1), ep(1, 1883), true);
  tracker.onClientPacket(h, kT0, simple(PacketType::kPublish));
  tracker.onClientPacket(h, kT0 + 10 * kS, simple(PacketType::kPingreq));
  tracker.onClientPacket(h, kT0 + 40 * kS, simple(PacketType::kPingreq));  // one interval is not a cadence
  tracker.advanceTo(kT0 + 100'000 * kS);
  EXPECT_EQ(sink.count(EventType::kKeepaliveLearned), 0u);
  EXPECT_EQ(sink.count(EventType::kKeepaliveExpired), 0u);
  EXPECT_FALSE(tracker.info(h)->keepalive_known);
}

TEST_F(TrackerTest, MissingDataMakesSilenceUncertainUntilTheClientSpeaks) {
  ConnHandle h = openConnected(2, "u", 10);
  tracker.onDataMissing(h);
  tracker.advanceTo(kT0 + 16 * kS);
  EXPECT_NE(sink.lines.back().find("\"uncertain\":true"), std::string::npos) << sink.lines.back();
  tracker.onClientPacket(h, kT0 + 17 * kS, simple(PacketType::kPingreq));
  tracker.advanceTo(kT0 + 40 * kS);
  EXPECT_NE(sink.lines.back().find("\"uncertain\":false"), std::string::npos) << sink.lines.back();
}

TEST_F(TrackerTest, CapacityIsBoundedAndCounted) {
  cfg.max_connections = 2;
  SessionTracker t2(cfg, sink);
  EXPECT_NE(t2.open(kT0, ep(2, 1), ep(1, 1883), false), kNoConn);
  EXPECT_NE(t2.open(kT0, ep(3, 1), ep(1, 1883), false), kNoConn);
  EXPECT_EQ(t2.open(kT0, ep(4, 1), ep(1, 1883), false), kNoConn);
  EXPECT_EQ(t2.stats().rejected_full, 1u);
}

TEST_F(TrackerTest, FinishReportsOpenConnectionsWithState) {
  openConnected(2, "still-here", 10);
  tracker.finish(kT0 + 20 * kS);
  ASSERT_EQ(sink.count(EventType::kOpenAtEnd), 1u);
  const std::string& line = sink.lines.back();
  EXPECT_NE(line.find("\"state\":\"expired\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"silent_for\":20.000000"), std::string::npos) << line;
}

TEST_F(TrackerTest, HostileClientIdStaysOneJsonLine) {
  std::string id = "a\"b\\c\nd\x01\xff\xc3\xa9";
  openConnected(2, id, 10);
  const std::string& line = sink.lines.back();
  EXPECT_EQ(line.find('\n'), std::string::npos);
  EXPECT_NE(line.find(R"("client_id":"a\"b\\c\u000ad\u0001\ufffdé")"), std::string::npos) << line;
}

// --- Request -> acknowledgement round trips (PUBLISH/SUBSCRIBE) ---

MqttPacket publish(uint8_t qos, uint16_t id) {
  MqttPacket p;
  p.type = PacketType::kPublish;
  p.qos = qos;
  p.flags = static_cast<uint8_t>(qos << 1);
  p.has_packet_id = qos > 0;
  p.packet_id = qos > 0 ? id : 0;
  return p;
}
MqttPacket withId(PacketType t, uint16_t id) {
  MqttPacket p;
  p.type = t;
  p.has_packet_id = true;
  p.packet_id = id;
  return p;
}

TEST_F(TrackerTest, ClientPublishQos1IsTimedToTheBrokersPuback) {
  ConnHandle h = openConnected(2, "pub-1", 60);
  tracker.onClientPacket(h, kT0 + kS, publish(1, 7));
  EXPECT_EQ(tracker.inflight(Side::kClient), 1u);
  EXPECT_EQ(tracker.inflight(Side::kBroker), 0u);
  tracker.onBrokerPacket(h, kT0 + kS + 2500, withId(PacketType::kPuback, 7));
  ASSERT_EQ(sink.acks.size(), 1u);
  EXPECT_EQ(sink.acks[0].kind, AckKind::kPublishQos1);
  EXPECT_EQ(sink.acks[0].sender, Side::kClient);
  EXPECT_EQ(sink.acks[0].latency, 2500);
  EXPECT_EQ(tracker.inflight(Side::kClient), 0u);
  // A second PUBACK for the same id has nothing left to time.
  tracker.onBrokerPacket(h, kT0 + 2 * kS, withId(PacketType::kPuback, 7));
  EXPECT_EQ(sink.acks.size(), 1u);
}

TEST_F(TrackerTest, BrokerPublishQos2IsTimedToTheClientsPubrec) {
  ConnHandle h = openConnected(2, "sub-1", 60);
  tracker.onBrokerPacket(h, kT0 + kS, publish(2, 3));
  EXPECT_EQ(tracker.inflight(Side::kBroker), 1u);
  tracker.onClientPacket(h, kT0 + kS + 40'000, withId(PacketType::kPubrec, 3));
  // PUBREL / PUBCOMP finish the QoS 2 exchange but are not timed.
  tracker.onBrokerPacket(h, kT0 + kS + 41'000, withId(PacketType::kPubrel, 3));
  tracker.onClientPacket(h, kT0 + kS + 42'000, withId(PacketType::kPubcomp, 3));
  ASSERT_EQ(sink.acks.size(), 1u);
  EXPECT_EQ(sink.acks[0].kind, AckKind::kPublishQos2);
  EXPECT_EQ(sink.acks[0].sender, Side::kBroker);
  EXPECT_EQ(sink.acks[0].latency, 40'000);
  EXPECT_EQ(tracker.inflight(Side::kBroker), 0u);
}

TEST_F(TrackerTest, SubscribeIsTimedToSubackAndIsNotInFlight) {
  ConnHandle h = openConnected(2, "sub-2", 60);
  tracker.onClientPacket(h, kT0 + kS, withId(PacketType::kSubscribe, 1));
  EXPECT_EQ(tracker.inflight(Side::kClient), 0u);
  tracker.onBrokerPacket(h, kT0 + kS + 900, withId(PacketType::kSuback, 1));
  ASSERT_EQ(sink.acks.size(), 1u);
  EXPECT_EQ(sink.acks[0].kind, AckKind::kSubscribe);
  EXPECT_EQ(sink.acks[0].sender, Side::kClient);
  EXPECT_EQ(sink.acks[0].latency, 900);
}

TEST_F(TrackerTest, PacketIdSpacesArePerDirectionAndKindMustMatch) {
  ConnHandle h = openConnected(2, "both", 60);
  tracker.onClientPacket(h, kT0 + 1 * kS, publish(1, 5));
  tracker.onBrokerPacket(h, kT0 + 2 * kS, publish(1, 5));
  EXPECT_EQ(tracker.inflight(Side::kClient), 1u);
  EXPECT_EQ(tracker.inflight(Side::kBroker), 1u);
  // PUBREC does not acknowledge a QoS 1 PUBLISH; SUBACK does not either.
  tracker.onBrokerPacket(h, kT0 + 3 * kS, withId(PacketType::kPubrec, 5));
  tracker.onBrokerPacket(h, kT0 + 3 * kS, withId(PacketType::kSuback, 5));
  EXPECT_TRUE(sink.acks.empty());
  tracker.onClientPacket(h, kT0 + 4 * kS, withId(PacketType::kPuback, 5));  // acks the broker's
  tracker.onBrokerPacket(h, kT0 + 5 * kS, withId(PacketType::kPuback, 5));  // acks the client's
  ASSERT_EQ(sink.acks.size(), 2u);
  EXPECT_EQ(sink.acks[0].sender, Side::kBroker);
  EXPECT_EQ(sink.acks[0].latency, 2 * kS);
  EXPECT_EQ(sink.acks[1].sender, Side::kClient);
  EXPECT_EQ(sink.acks[1].latency, 4 * kS);
  EXPECT_EQ(tracker.inflight(Side::kClient) + tracker.inflight(Side::kBroker), 0u);
}

TEST_F(TrackerTest, RetransmissionKeepsTheFirstSendTime) {
  ConnHandle h = openConnected(2, "retry", 60);
  tracker.onClientPacket(h, kT0 + 1 * kS, publish(1, 9));
  MqttPacket dup = publish(1, 9);
  dup.flags |= 0x08;
  tracker.onClientPacket(h, kT0 + 11 * kS, dup);
  EXPECT_EQ(tracker.inflight(Side::kClient), 1u);
  tracker.onBrokerPacket(h, kT0 + 11 * kS + 500, withId(PacketType::kPuback, 9));
  ASSERT_EQ(sink.acks.size(), 1u);
  EXPECT_EQ(sink.acks[0].latency, 10 * kS + 500);
}

TEST_F(TrackerTest, QosZeroAndUnknownAcksAreIgnored) {
  ConnHandle h = openConnected(2, "q0", 60);
  tracker.onClientPacket(h, kT0 + kS, publish(0, 0));
  EXPECT_EQ(tracker.inflight(Side::kClient), 0u);
  // An ack for a request sent before the capture started.
  tracker.onBrokerPacket(h, kT0 + 2 * kS, withId(PacketType::kPuback, 42));
  tracker.onClientPacket(h, kT0 + 2 * kS, withId(PacketType::kPuback, 42));
  EXPECT_TRUE(sink.acks.empty());
  EXPECT_EQ(tracker.stats().ack_overflow, 0u);
}

TEST_F(TrackerTest, OutstandingRequestsAreCappedAndOverflowIsCounted) {
  ConnHandle h = openConnected(2, "burst", 60);
  for (uint16_t id = 1; id <= 10; ++id) tracker.onClientPacket(h, kT0 + id * 1000, publish(1, id));
  EXPECT_EQ(tracker.inflight(Side::kClient), 8u);
  EXPECT_EQ(tracker.stats().ack_overflow, 2u);
  // Ids 9 and 10 were not stored: their acks time nothing.
  tracker.onBrokerPacket(h, kT0 + kS, withId(PacketType::kPuback, 10));
  EXPECT_TRUE(sink.acks.empty());
  tracker.onBrokerPacket(h, kT0 + kS, withId(PacketType::kPuback, 1));
  ASSERT_EQ(sink.acks.size(), 1u);
  EXPECT_EQ(sink.acks[0].latency, kS - 1000);
  // The freed slot takes the next request.
  tracker.onClientPacket(h, kT0 + 2 * kS, publish(2, 11));
  EXPECT_EQ(tracker.inflight(Side::kClient), 8u);
  EXPECT_EQ(tracker.stats().ack_overflow, 2u);
  tracker.onClientPacket(h, kT0 + 2 * kS, withId(PacketType::kSubscribe, 12));
  EXPECT_EQ(tracker.stats().ack_overflow, 3u);
}

TEST_F(TrackerTest, GapsAndClosesForgetOutstandingRequests) {
  ConnHandle a = openConnected(2, "gap", 60);
  ConnHandle b = openConnected(3, "closes", 60);
  tracker.onClientPacket(a, kT0 + kS, publish(1, 1));
  tracker.onBrokerPacket(a, kT0 + kS, publish(2, 1));
  tracker.onClientPacket(b, kT0 + kS, publish(1, 1));
  tracker.onClientPacket(b, kT0 + kS, publish(2, 2));
  EXPECT_EQ(tracker.inflight(Side::kClient), 3u);
  EXPECT_EQ(tracker.inflight(Side::kBroker), 1u);
  // The ack may have been in the hole: nothing to time it against afterwards.
  tracker.onDataMissing(a);
  EXPECT_EQ(tracker.inflight(Side::kClient), 2u);
  EXPECT_EQ(tracker.inflight(Side::kBroker), 0u);
  tracker.onBrokerPacket(a, kT0 + 2 * kS, withId(PacketType::kPuback, 1));
  EXPECT_TRUE(sink.acks.empty());
  // Acks still count while the close settles; the rest go with the connection.
  tracker.onCloseStarted(b, kT0 + 2 * kS, Side::kClient, false);
  tracker.onBrokerPacket(b, kT0 + 2 * kS + 10, withId(PacketType::kPuback, 1));
  EXPECT_EQ(sink.acks.size(), 1u);
  tracker.onClosed(b, ClientTcp::kResponsive);
  EXPECT_EQ(tracker.inflight(Side::kClient), 0u);
  // A reused slot starts empty.
  ConnHandle c = openConnected(4, "fresh", 60, kT0 + 3 * kS);
  tracker.onBrokerPacket(c, kT0 + 3 * kS, withId(PacketType::kPuback, 2));
  EXPECT_EQ(sink.acks.size(), 1u);
}

TEST_F(TrackerTest, SlowAcksUpToHalfAnHourAreExactAndReorderedOnesZero) {
  ConnHandle h = openConnected(2, "slow", 0);
  tracker.onClientPacket(h, kT0 + kS, publish(1, 1));
  tracker.onBrokerPacket(h, kT0 + kS + 1800 * kS + 7, withId(PacketType::kPuback, 1));
  tracker.onClientPacket(h, kT0 + 3000 * kS, publish(2, 2));
  tracker.onBrokerPacket(h, kT0 + 3000 * kS - 5, withId(PacketType::kPubrec, 2));  // stamped before it
  ASSERT_EQ(sink.acks.size(), 2u);
  EXPECT_EQ(sink.acks[0].latency, 1800 * kS + 7);
  EXPECT_EQ(sink.acks[1].latency, 0);
}

}  // namespace
}  // namespace mqttlive
