// The Prometheus sink against its contract (docs/metrics.md): exact sample
// lines of a real serialization, every documented name present, and the
// scrape accepted by promtool's linter.
#include "mqttlive/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "mqttlive/event_fanout.h"
#include "mqttlive/json_events.h"

namespace mqttlive {
namespace {

constexpr Micros kS = kMicrosPerSecond;
constexpr Micros kT0 = 1'700'000'000 * kS;

std::string scrape(const Metrics& m) {
  return prometheus::TextSerializer().Serialize(m.registry()->Collect());
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Asserts that `line` is one whole line of the scrape (the value included).
::testing::AssertionResult hasLine(const std::string& text, const std::string& line) {
  for (const auto& l : lines(text))
    if (l == line) return ::testing::AssertionSuccess();
  std::string near;
  const std::string name = line.substr(0, line.find_first_of("{ "));
  for (const auto& l : lines(text))
    if (l.rfind(name, 0) == 0) near += "\n  " + l;
  return ::testing::AssertionFailure()
         << "no line `" << line << "`; lines starting with " << name << ":" << near;
}

bool mentions(const std::string& text, const std::string& s) { return text.find(s) != std::string::npos; }

Endpoint ep(uint8_t last, uint16_t port) {
  uint8_t a[4] = {10, 0, 0, last};
  return Endpoint{IpAddr::fromV4(a), port};
}

MqttPacket connectPacket(std::string_view id, uint16_t keepalive) {
  MqttPacket p;
  p.type = PacketType::kConnect;
  p.protocol_level = kMqtt311;
  p.client_id = id;
  p.keepalive = keepalive;
  p.clean_start = true;
  return p;
}
MqttPacket connackPacket(uint8_t code = 0) {
  MqttPacket p;
  p.type = PacketType::kConnack;
  p.reason_code = code;
  return p;
}

MetricsConfig perClient(bool hash = false, uint32_t max_series = 100) {
  MetricsConfig c;
  c.per_client.enabled = true;
  c.per_client.hash_client_id = hash;
  c.per_client.max_series = max_series;
  return c;
}

// Metrics fed by a real SessionTracker (Metrics is its sink), so events and
// states are the tracker's own.
struct TrackerFixture {
  explicit TrackerFixture(const MetricsConfig& cfg = MetricsConfig{}) : metrics(cfg, "1.2.3") {}
  ConnHandle connect(uint8_t host, std::string_view id, uint16_t keepalive, Micros at = kT0) {
    ConnHandle h = tracker.open(at, ep(host, 40000), ep(1, 1883), false);
    tracker.onClientPacket(h, at, connectPacket(id, keepalive));
    tracker.onBrokerPacket(h, at + 1000, connackPacket());
    return h;
  }
  void close(ConnHandle h, Micros at, Side side, bool rst = false) {
    tracker.onCloseStarted(h, at, side, rst);
    tracker.onClosed(h, ClientTcp::kResponsive);
  }
  Metrics metrics;
  SessionTracker tracker{TrackerConfig{}, metrics};
};

TEST(Metrics, FixedLabelSetsExistAtZeroFromTheStart) {
  Metrics m(MetricsConfig{}, "1.2.3");
  const std::string s = scrape(m);
  for (const char* st : {"connecting", "active", "expired", "no_keepalive_idle", "closing"})
    EXPECT_TRUE(hasLine(s, std::string("mqttlive_connections{state=\"") + st + "\"} 0"));
  for (const char* r :
       {"graceful_disconnect", "client_fin_without_disconnect", "client_rst_without_disconnect",
        "broker_close_keepalive", "broker_close_takeover", "broker_close_other"})
    EXPECT_TRUE(hasLine(s, std::string("mqttlive_connections_closed_total{reason=\"") + r + "\"} 0"));
  for (const char* t : {"CONNECT", "PUBLISH", "PINGREQ", "AUTH"})
    for (const char* d : {"client", "broker"})
      EXPECT_TRUE(hasLine(
          s, std::string("mqttlive_mqtt_packets_total{direction=\"") + d + "\",type=\"" + t + "\"} 0"));
  EXPECT_FALSE(mentions(s, "type=\"RESERVED\""));
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_dropped_packets_total{source=\"kernel\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_dropped_packets_total{source=\"interface\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_errors_total{reason=\"truncated_ip\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_errors_total{reason=\"ip_fragment\"} 0"));
  EXPECT_FALSE(mentions(s, "mqttlive_capture_errors_total{reason=\"ok\"}"));
  for (const char* g : {"not_captured", "snaplen", "flow_buffer_full", "global_buffer_full"})
    EXPECT_TRUE(hasLine(s, std::string("mqttlive_tcp_gaps_total{reason=\"") + g + "\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_parse_errors_total{reason=\"bad_remaining_length\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_parse_errors_total{reason=\"packet_too_large\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_flows_evicted_total{reason=\"table_full\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_flows_evicted_total{reason=\"tracker_full\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_events_total{event=\"keepalive_expired\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_build_info{version=\"1.2.3\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_config_last_reload_successful 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_enforcement_delay_seconds_count 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_client_series_dropped 0"));
  // MQTT 3.1.1 refusal codes from the start, other codes on first use.
  for (int code = 1; code <= 5; ++code)
    EXPECT_TRUE(hasLine(s, "mqttlive_connects_refused_total{code=\"" + std::to_string(code) + "\"} 0"));
  EXPECT_FALSE(mentions(s, "mqttlive_connects_refused_total{code=\"135\"}"));
  // Nothing per-client before opt-in and an expired connection.
  EXPECT_FALSE(mentions(s, "mqttlive_client_expired_seconds{"));
}

TEST(Metrics, EventsAreCountedByReasonAndType) {
  Metrics m(MetricsConfig{}, "x");
  ConnectionInfo c;
  c.keepalive_known = true;
  c.keepalive = 60;
  Event e;
  e.conn = &c;
  e.type = EventType::kConnected;
  m.onEvent(e);
  e.type = EventType::kClosed;
  e.reason = CloseReason::kGracefulDisconnect;
  e.duration = 90 * kS;
  m.onEvent(e);
  e.reason = CloseReason::kBrokerCloseKeepalive;
  e.duration = 5000 * kS;
  m.onEvent(e);
  e.type = EventType::kKeepaliveExpired;
  m.onEvent(e);
  e.type = EventType::kTakeover;
  e.previous = &c;
  m.onEvent(e);
  m.onEvent(e);

  const std::string s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_connections_closed_total{reason=\"graceful_disconnect\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connections_closed_total{reason=\"broker_close_keepalive\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connections_closed_total{reason=\"broker_close_other\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_expirations_total 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_takeovers_total 2"));
  EXPECT_TRUE(hasLine(s, "mqttlive_events_total{event=\"connected\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_events_total{event=\"closed\"} 2"));
  EXPECT_TRUE(hasLine(s, "mqttlive_events_total{event=\"takeover\"} 2"));
  EXPECT_TRUE(hasLine(s, "mqttlive_events_total{event=\"midstream\"} 0"));
  // Histograms: cumulative buckets, sum and count.
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_seconds_bucket{le=\"30\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_seconds_bucket{le=\"60\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_seconds_bucket{le=\"+Inf\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_seconds_sum 60"));
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_seconds_count 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connection_duration_seconds_bucket{le=\"60\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connection_duration_seconds_bucket{le=\"300\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connection_duration_seconds_bucket{le=\"3600\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connection_duration_seconds_bucket{le=\"7200\"} 2"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connection_duration_seconds_sum 5090"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connection_duration_seconds_count 2"));
}

TEST(Metrics, ConnectedWithUnknownKeepaliveIsNotObserved) {
  Metrics m(MetricsConfig{}, "x");
  ConnectionInfo c;
  Event e;
  e.conn = &c;
  e.type = EventType::kConnected;
  m.onEvent(e);
  e.conn = nullptr;
  m.onEvent(e);
  const std::string s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_seconds_count 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_events_total{event=\"connected\"} 2"));
}

TEST(Metrics, KeepaliveZeroLandsInItsOwnBucket) {
  Metrics m(MetricsConfig{}, "x");
  ConnectionInfo c;
  c.keepalive_known = true;
  c.keepalive = 0;
  Event e;
  e.conn = &c;
  m.onEvent(e);
  EXPECT_TRUE(hasLine(scrape(m), "mqttlive_keepalive_seconds_bucket{le=\"0\"} 1"));
}

TEST(Metrics, RefusedCodesGetTheirSeriesOnFirstUse) {
  Metrics m(MetricsConfig{}, "x");
  ConnectionInfo c;
  Event e;
  e.conn = &c;
  e.type = EventType::kConnectRefused;
  e.code = 5;
  m.onEvent(e);
  m.onEvent(e);
  e.code = 135;
  m.onEvent(e);
  e.code = 255;
  m.onEvent(e);
  const std::string s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_connects_refused_total{code=\"5\"} 2"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connects_refused_total{code=\"135\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connects_refused_total{code=\"255\"} 1"));
  EXPECT_FALSE(mentions(s, "code=\"0\""));
  EXPECT_TRUE(hasLine(s, "mqttlive_events_total{event=\"connect_refused\"} 4"));
}

TEST(Metrics, EnforcementDelayBucketsSpanEarlyAndLate) {
  Metrics m(MetricsConfig{}, "x");
  m.onEnforcementDelay(-3 * kS);
  m.onEnforcementDelay(-40 * kS);
  m.onEnforcementDelay(4 * kS);
  m.onEnforcementDelay(500 * kS);
  const std::string s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_enforcement_delay_seconds_bucket{le=\"-30\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_enforcement_delay_seconds_bucket{le=\"-5\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_enforcement_delay_seconds_bucket{le=\"-2\"} 2"));
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_enforcement_delay_seconds_bucket{le=\"0\"} 2"));
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_enforcement_delay_seconds_bucket{le=\"5\"} 3"));
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_enforcement_delay_seconds_bucket{le=\"120\"} 3"));
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_enforcement_delay_seconds_bucket{le=\"+Inf\"} 4"));
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_enforcement_delay_seconds_sum 461"));
}

TEST(Metrics, PingRttInSeconds) {
  Metrics m(MetricsConfig{}, "x");
  m.onPingRtt(1500);  // 1.5 ms
  m.onPingRtt(-1);    // clock went backwards between captures: ignored
  m.onPingRtt(3 * kS);
  const std::string s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_ping_rtt_seconds_bucket{le=\"0.001\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_ping_rtt_seconds_bucket{le=\"0.0025\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_ping_rtt_seconds_bucket{le=\"5\"} 2"));
  EXPECT_TRUE(hasLine(s, "mqttlive_ping_rtt_seconds_count 2"));
}

TEST(Metrics, CountersFollowCumulativeStatsAcrossResets) {
  Metrics m(MetricsConfig{}, "x");
  EngineStats es;
  TrackerStats ts;
  CaptureCounters cap;
  es.packets = 10;
  es.bytes = 1000;
  es.decode_status[static_cast<int>(DecodeStatus::kIpFragment)] = 2;
  es.gaps_by_reason[static_cast<int>(GapReason::kSnaplen)] = 3;
  es.gap_bytes = 300;
  es.mqtt_packets[static_cast<int>(Side::kClient)][static_cast<int>(PacketType::kPingreq)] = 7;
  es.mqtt_packets[static_cast<int>(Side::kBroker)][static_cast<int>(PacketType::kPingresp)] = 6;
  es.parse_errors[static_cast<int>(ParseError::kPacketTooLarge)] = 1;
  es.flows_evicted[static_cast<int>(EvictReason::kTableFull)] = 4;
  ts.opened = 5;
  cap.dropped = 8;
  cap.if_dropped = 1;
  m.updateCounters(es, ts, cap);
  m.updateCounters(es, ts, cap);  // unchanged: no double counting
  std::string s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_packets_total 10"));
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_bytes_total 1000"));
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_errors_total{reason=\"ip_fragment\"} 2"));
  EXPECT_TRUE(hasLine(s, "mqttlive_tcp_gaps_total{reason=\"snaplen\"} 3"));
  EXPECT_TRUE(hasLine(s, "mqttlive_tcp_gap_bytes_total 300"));
  EXPECT_TRUE(hasLine(s, "mqttlive_mqtt_packets_total{direction=\"client\",type=\"PINGREQ\"} 7"));
  EXPECT_TRUE(hasLine(s, "mqttlive_mqtt_packets_total{direction=\"broker\",type=\"PINGRESP\"} 6"));
  EXPECT_TRUE(hasLine(s, "mqttlive_mqtt_packets_total{direction=\"broker\",type=\"PINGREQ\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_parse_errors_total{reason=\"packet_too_large\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_flows_evicted_total{reason=\"table_full\"} 4"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connections_opened_total 5"));
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_dropped_packets_total{source=\"kernel\"} 8"));
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_dropped_packets_total{source=\"interface\"} 1"));

  es.packets = 15;
  cap.dropped = 10;
  m.updateCounters(es, ts, cap);
  s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_packets_total 15"));
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_dropped_packets_total{source=\"kernel\"} 10"));

  // The source started over (e.g. a reopened capture handle): what it counts now is new.
  es.packets = 3;
  cap.dropped = 2;
  m.updateCounters(es, ts, cap);
  s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_packets_total 18"));
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_dropped_packets_total{source=\"kernel\"} 12"));

  m.resetCaptureBaseline();
  cap.dropped = 5;
  m.updateCounters(es, ts, cap);
  EXPECT_TRUE(hasLine(scrape(m), "mqttlive_capture_dropped_packets_total{source=\"kernel\"} 17"));
}

class NullSink : public EventSink {
 public:
  void onEvent(const Event&) override {}
};

TEST(Metrics, UpdateFromEngineAndEngineReplacement) {
  Metrics m(MetricsConfig{}, "x");
  NullSink sink;
  const std::vector<uint8_t> runt = {0x00, 0x01};  // shorter than an Ethernet header
  auto a = std::make_unique<Engine>(EngineConfig{}, sink);
  for (int i = 0; i < 5; ++i) a->onFrame(kT0 + i, 1, runt);
  m.update(*a, CaptureCounters{}, kT0 + kS);
  std::string s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_packets_total 5"));
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_bytes_total 10"));
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_errors_total{reason=\"truncated_link\"} 5"));
  EXPECT_TRUE(hasLine(s, "mqttlive_flows 0"));
  EXPECT_TRUE(mentions(s, "mqttlive_tracker_memory_bytes "));

  // A fresh engine that has already counted more than the old one at its
  // last update: its counts are all new, not a delta against the old engine.
  auto b = std::make_unique<Engine>(EngineConfig{}, sink);
  for (int i = 0; i < 7; ++i) b->onFrame(kT0 + i, 1, runt);
  m.update(*b, CaptureCounters{}, kT0 + 2 * kS);
  s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_packets_total 12"));
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_errors_total{reason=\"truncated_link\"} 12"));
  m.update(*b, CaptureCounters{}, kT0 + 3 * kS);
  EXPECT_TRUE(hasLine(scrape(m), "mqttlive_capture_packets_total 12"));
}

TEST(Metrics, ConnectionGaugesFromTheTracker) {
  TrackerFixture f;
  f.connect(2, "a", 10);
  f.connect(3, "b", 10);
  ConnHandle c = f.connect(4, "c", 100);
  f.tracker.onDataMissing(c);
  f.tracker.advanceTo(kT0 + 16 * kS);  // a and b past 1.5 x 10 s
  f.metrics.updateTracker(f.tracker, kT0 + 16 * kS);
  const std::string s = scrape(f.metrics);
  EXPECT_TRUE(hasLine(s, "mqttlive_connections{state=\"expired\"} 2"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connections{state=\"active\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_uncertain_connections 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_keepalive_expirations_total 2"));
  EXPECT_TRUE(hasLine(s, "mqttlive_events_total{event=\"connected\"} 3"));
  // Per-client is opt-in.
  EXPECT_FALSE(mentions(s, "mqttlive_client_expired_seconds{"));
}

TEST(Metrics, PerClientSeriesForExpiredConnectionsOnly) {
  TrackerFixture f(perClient());
  ConnHandle a = f.connect(2, "dev-a", 10);
  f.connect(3, "dev-b", 100);
  f.connect(4, "", 10);  // no client id: named by its endpoint
  f.tracker.advanceTo(kT0 + 20 * kS);
  f.metrics.updateTracker(f.tracker, kT0 + 20 * kS);
  std::string s = scrape(f.metrics);
  EXPECT_TRUE(hasLine(s, "mqttlive_client_expired_seconds{client_id=\"dev-a\"} 5"));
  EXPECT_TRUE(hasLine(s, "mqttlive_client_expired_seconds{client_id=\"10.0.0.4:40000\"} 5"));
  EXPECT_FALSE(mentions(s, "dev-b"));
  EXPECT_TRUE(hasLine(s, "mqttlive_client_series_dropped 0"));

  f.metrics.updateTracker(f.tracker, kT0 + 30 * kS);
  EXPECT_TRUE(hasLine(scrape(f.metrics), "mqttlive_client_expired_seconds{client_id=\"dev-a\"} 15"));

  // Closed: the series goes away.
  f.close(a, kT0 + 31 * kS, Side::kBroker);
  f.metrics.updateTracker(f.tracker, kT0 + 31 * kS);
  s = scrape(f.metrics);
  EXPECT_FALSE(mentions(s, "dev-a"));
  EXPECT_TRUE(mentions(s, "client_id=\"10.0.0.4:40000\""));

  // Turned off on reload: every series goes away.
  f.metrics.setPerClient(PerClientConfig{});
  f.metrics.updateTracker(f.tracker, kT0 + 32 * kS);
  EXPECT_FALSE(mentions(scrape(f.metrics), "mqttlive_client_expired_seconds{"));
}

TEST(Metrics, PerClientSeriesAreCapped) {
  TrackerFixture f(perClient(false, 2));
  for (uint8_t i = 0; i < 5; ++i) f.connect(static_cast<uint8_t>(10 + i), "dev-" + std::to_string(i), 10);
  f.tracker.advanceTo(kT0 + 20 * kS);
  f.metrics.updateTracker(f.tracker, kT0 + 20 * kS);
  const std::string s = scrape(f.metrics);
  size_t series = 0;
  for (const auto& l : lines(s)) series += l.rfind("mqttlive_client_expired_seconds{", 0) == 0;
  EXPECT_EQ(series, 2u);
  EXPECT_TRUE(hasLine(s, "mqttlive_client_series_dropped 3"));
}

// With many connections the walk behind the uncertain gauge and the
// per-client series is spaced out (Metrics::walkSpacing); the state gauges
// stay current at every update.
TEST(Metrics, WalkOverManyConnectionsIsSpacedOut) {
  TrackerFixture f(perClient(false, 10));
  constexpr uint32_t kConns = 50'000;  // spacing 5 us x 50k = 250 ms > kWalkEvery
  std::vector<ConnHandle> handles;
  for (uint32_t i = 0; i < kConns; ++i) {
    const Endpoint client = ep(static_cast<uint8_t>(2 + i / 50'000), static_cast<uint16_t>(10'000 + i % 50'000));
    ConnHandle h = f.tracker.open(kT0, client, ep(1, 1883), false);
    f.tracker.onClientPacket(h, kT0, connectPacket("dev-" + std::to_string(i), 10));
    f.tracker.onBrokerPacket(h, kT0 + 1000, connackPacket());
    handles.push_back(h);
  }
  const Micros spacing = Metrics::walkSpacing(kConns, true);
  ASSERT_GT(spacing, Metrics::kWalkEvery);
  const Micros t = kT0 + 20 * kS;
  f.tracker.advanceTo(t);
  f.metrics.updateTracker(f.tracker, t);
  EXPECT_TRUE(hasLine(scrape(f.metrics), "mqttlive_client_expired_seconds{client_id=\"dev-0\"} 5"));
  EXPECT_TRUE(hasLine(scrape(f.metrics), "mqttlive_client_series_dropped 49990"));

  // dev-0 closes: the state gauge follows at once, its series at the next walk.
  f.close(handles[0], t + 1000, Side::kBroker);
  f.metrics.updateTracker(f.tracker, t + 1000);
  std::string s = scrape(f.metrics);
  EXPECT_TRUE(hasLine(s, "mqttlive_connections{state=\"expired\"} 49999"));
  EXPECT_TRUE(mentions(s, "client_id=\"dev-0\""));
  f.metrics.updateTracker(f.tracker, t + spacing - 1);
  EXPECT_TRUE(mentions(scrape(f.metrics), "client_id=\"dev-0\""));
  f.metrics.updateTracker(f.tracker, t + spacing);
  s = scrape(f.metrics);
  EXPECT_FALSE(mentions(s, "client_id=\"dev-0\""));
  EXPECT_TRUE(hasLine(s, "mqttlive_client_series_dropped 49989"));

  // A per-client config change (SIGHUP) is applied at the next update, walk or not.
  f.metrics.setPerClient(PerClientConfig{});
  f.metrics.updateTracker(f.tracker, t + spacing + 1);
  EXPECT_FALSE(mentions(scrape(f.metrics), "mqttlive_client_expired_seconds{"));
}

TEST(Metrics, PerClientIdsCanBeHashed) {
  TrackerFixture f(perClient(true));
  f.connect(2, "secret-device", 10);
  f.tracker.advanceTo(kT0 + 16 * kS);
  f.metrics.updateTracker(f.tracker, kT0 + 16 * kS);
  const std::string s = scrape(f.metrics);
  EXPECT_FALSE(mentions(s, "secret-device"));
  const std::string h = Metrics::hashClientId("secret-device");
  EXPECT_THAT(h, ::testing::MatchesRegex("[0-9a-f]{16}"));
  EXPECT_TRUE(hasLine(s, "mqttlive_client_expired_seconds{client_id=\"" + h + "\"} 1"));
}

TEST(Metrics, Fnv1aIsTheStandardOne) {
  // Published FNV-1a 64 test vectors.
  EXPECT_EQ(Metrics::hashClientId(""), "cbf29ce484222325");
  EXPECT_EQ(Metrics::hashClientId("a"), "af63dc4c8601ec8c");
  EXPECT_EQ(Metrics::hashClientId("foobar"), "85944171f73967e8");
}

TEST(Metrics, HostileClientIdsAreEscapedAndKeptValidUtf8) {
  TrackerFixture f(perClient());
  f.connect(2, "a\"b\\c\nd", 10);
  f.connect(3, std::string_view("bad\xff\xfe-\x01-\xc3\xa9\0", 11), 10);  // trailing NUL too
  f.tracker.advanceTo(kT0 + 16 * kS);
  f.metrics.updateTracker(f.tracker, kT0 + 16 * kS);
  const std::string s = scrape(f.metrics);
  EXPECT_TRUE(hasLine(s, "mqttlive_client_expired_seconds{client_id=\"a\\\"b\\\\c\\nd\"} 1"));
  EXPECT_TRUE(hasLine(s,
                      "mqttlive_client_expired_seconds{client_id=\"bad\xef\xbf\xbd\xef\xbf\xbd-\xef\xbf\xbd-"
                      "\xc3\xa9\xef\xbf\xbd\"} 1"));
}

TEST(Metrics, SanitizeCutsAtCharacterBoundaries) {
  EXPECT_EQ(Metrics::sanitizeLabelValue("abcdef", 4), "abcd");
  EXPECT_EQ(Metrics::sanitizeLabelValue("ab\xc3\xa9", 3), "ab");  // é would not fit whole
  EXPECT_EQ(Metrics::sanitizeLabelValue("\xe2\x82", 10), "\xef\xbf\xbd\xef\xbf\xbd");  // truncated sequence
  EXPECT_EQ(Metrics::sanitizeLabelValue("\xc0\xaf", 10), "\xef\xbf\xbd\xef\xbf\xbd");  // overlong '/'
  EXPECT_EQ(Metrics::sanitizeLabelValue("tab\there", 20), "tab\there");
  EXPECT_EQ(Metrics::sanitizeLabelValue(std::string(300, 'x')).size(), 128u);
}

TEST(Metrics, ReloadResultAndCaptureRestarts) {
  Metrics m(MetricsConfig{}, "x");
  m.setInterfaces({"eth0", "eth1"});
  m.addCaptureRestart("eth1");
  m.setReloadResult(true, 1700000000.5);
  std::string s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_restarts_total{interface=\"eth0\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_capture_restarts_total{interface=\"eth1\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_config_last_reload_successful 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_config_last_reload_success_timestamp_seconds 1700000000.5"));
  m.setReloadResult(false, 1700000100);
  s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_config_last_reload_successful 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_config_last_reload_success_timestamp_seconds 1700000000.5"));
}

// name -> type from the table in docs/metrics.md.
std::map<std::string, std::string> documentedMetrics() {
  const auto path = std::filesystem::path(__FILE__).parent_path().parent_path() / "docs" / "metrics.md";
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::map<std::string, std::string> out;
  const std::regex row(R"(^\|\s*`(mqttlive_[a-z_]+)`\s*\|\s*([a-z]+)\s*\|)");
  for (std::string l; std::getline(in, l);) {
    std::smatch mt;
    if (std::regex_search(l, mt, row)) out[mt[1]] = mt[2];
  }
  return out;
}

// A scrape with every family populated, including the ones whose series only
// appear on first use (refused codes, per-client).
std::string fullScrape(TrackerFixture& f) {
  f.metrics.setInterfaces({"eth0"});
  f.metrics.setReloadResult(true, 1700000000);
  f.connect(2, "dev-\"quoted\"\nid", 10);
  ConnHandle r = f.tracker.open(kT0, ep(3, 40000), ep(1, 1883), false);
  f.tracker.onClientPacket(r, kT0, connectPacket("refused", 10));
  f.tracker.onBrokerPacket(r, kT0 + 1000, connackPacket(5));
  f.tracker.advanceTo(kT0 + 20 * kS);
  f.metrics.onPingRtt(2000);
  f.metrics.onEnforcementDelay(-2 * kS);
  f.metrics.updateTracker(f.tracker, kT0 + 20 * kS);
  return scrape(f.metrics);
}

TEST(Metrics, ExportsExactlyTheDocumentedMetrics) {
  const auto documented = documentedMetrics();
  ASSERT_GE(documented.size(), 29u);
  TrackerFixture f(perClient());
  const std::string s = fullScrape(f);
  std::map<std::string, std::string> exported;
  const std::regex type_line(R"(^# TYPE (\S+) (\S+)$)");
  for (const auto& l : lines(s)) {
    std::smatch mt;
    if (std::regex_match(l, mt, type_line)) exported[mt[1]] = mt[2];
  }
  for (const auto& [name, type] : documented) {
    auto it = exported.find(name);
    if (it == exported.end()) {
      ADD_FAILURE() << name << " is documented but not exported";
      continue;
    }
    EXPECT_EQ(it->second, type) << name;
    EXPECT_TRUE(mentions(s, "\n" + name + (type == "histogram" ? "_bucket" : "")))
        << name << " has no sample";
  }
  for (const auto& [name, type] : exported)
    EXPECT_EQ(documented.count(name), 1u) << name << " is not documented";
}

TEST(Metrics, PromtoolAcceptsTheScrape) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) GTEST_SKIP() << "promtool not installed";
  TrackerFixture f(perClient());
  const std::string s = fullScrape(f);
  char dir_template[] = "/tmp/mqttlive_metrics_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::filesystem::path dir(dir_template);
  { std::ofstream(dir / "scrape.txt") << s; }
  const std::string cmd = "promtool check metrics < '" + (dir / "scrape.txt").string() + "' > '" +
                          (dir / "out.txt").string() + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  std::ifstream out_file(dir / "out.txt");
  const std::string out((std::istreambuf_iterator<char>(out_file)), std::istreambuf_iterator<char>());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << "promtool lint problems:\n" << out;
  std::filesystem::remove_all(dir);
}

TEST(SuspectConnections, ListsExpiredAndIdleOnlyAsJson) {
  TrackerFixture f;
  f.connect(2, "dev-a", 10);
  f.connect(3, "dev-b", 100);
  f.connect(4, "quiet", 0);
  f.tracker.advanceTo(kT0 + 400 * kS);  // dev-b expires at kT0+150, quiet idles at kT0+300
  ConnHandle fresh = f.connect(5, "fresh", 10, kT0 + 399 * kS);
  (void)fresh;
  const Micros now = kT0 + 400 * kS;
  const std::string j = formatSuspectConnections(f.tracker, now, 10, 300 * kS);
  EXPECT_EQ(j.rfind("{\"now\":1700000400.000000,\"connections\":[", 0), 0u) << j;
  EXPECT_TRUE(mentions(j,
                       "{\"client\":\"10.0.0.2:40000\",\"broker\":\"10.0.0.1:1883\",\"client_id\":\"dev-a\","
                       "\"state\":\"expired\",\"keepalive\":10,\"keepalive_source\":\"connect\","
                       "\"silent_for\":400.000000,\"since\":1700000015.000000,\"uncertain\":false}"))
      << j;
  EXPECT_TRUE(mentions(j, "\"client_id\":\"dev-b\",\"state\":\"expired\",\"keepalive\":100")) << j;
  EXPECT_TRUE(mentions(j,
                       "\"client_id\":\"quiet\",\"state\":\"no_keepalive_idle\",\"keepalive\":0,"
                       "\"keepalive_source\":\"connect\",\"silent_for\":400.000000,"
                       "\"since\":1700000300.000000"))
      << j;
  EXPECT_FALSE(mentions(j, "fresh")) << j;
  EXPECT_TRUE(mentions(j, "],\"truncated\":false}")) << j;

  const std::string two = formatSuspectConnections(f.tracker, now, 2, 300 * kS);
  EXPECT_TRUE(mentions(two, "],\"truncated\":true}")) << two;
  size_t entries = 0;
  for (size_t p = two.find("\"client\":"); p != std::string::npos; p = two.find("\"client\":", p + 1))
    ++entries;
  EXPECT_EQ(entries, 2u);

  const std::string none = formatSuspectConnections(f.tracker, now, 0);
  EXPECT_TRUE(mentions(none, "\"connections\":[],\"truncated\":true}")) << none;
}

TEST(SuspectConnections, UnknownClientIdIsNull) {
  TrackerFixture f;
  f.connect(2, "", 10);                                  // empty id: the broker assigns one we may never see
  f.tracker.open(kT0, ep(3, 40000), ep(1, 1883), true);  // no MQTT seen: connecting, not suspect
  f.tracker.advanceTo(kT0 + 1000 * kS);
  const std::string j = formatSuspectConnections(f.tracker, kT0 + 1000 * kS, 10);
  EXPECT_EQ(j,
            "{\"now\":1700001000.000000,\"connections\":[{\"client\":\"10.0.0.2:40000\","
            "\"broker\":\"10.0.0.1:1883\",\"client_id\":null,\"state\":\"expired\",\"keepalive\":10,"
            "\"keepalive_source\":\"connect\",\"silent_for\":1000.000000,\"since\":1700000015.000000,"
            "\"uncertain\":false}],\"truncated\":false}");
}

TEST(EventFanout, ForwardsEverythingToEverySink) {
  struct Counting : EventSink {
    int events = 0, rtts = 0, delays = 0;
    void onEvent(const Event&) override { ++events; }
    void onPingRtt(Micros) override { ++rtts; }
    void onEnforcementDelay(Micros) override { ++delays; }
  } a, b;
  EventFanout fan{&a, &b};
  EXPECT_EQ(fan.size(), 2u);
  EXPECT_FALSE(fan.add(nullptr));
  Event e;
  fan.onEvent(e);
  fan.onEvent(e);
  fan.onPingRtt(1);
  fan.onEnforcementDelay(2);
  EXPECT_EQ(a.events, 2);
  EXPECT_EQ(b.events, 2);
  EXPECT_EQ(a.rtts + b.rtts, 2);
  EXPECT_EQ(a.delays + b.delays, 2);
  Counting c, d, extra;
  EXPECT_TRUE(fan.add(&c));
  EXPECT_TRUE(fan.add(&d));
  EXPECT_FALSE(fan.add(&extra));
}

// --- Round trips, in-flight messages, storms and flapping ---

MqttPacket idPacket(PacketType t, uint16_t id, uint8_t qos = 0) {
  MqttPacket p;
  p.type = t;
  p.qos = qos;
  p.has_packet_id = true;
  p.packet_id = id;
  return p;
}

TEST(Metrics, AckLatencySeriesExistAtZeroFromTheStart) {
  Metrics m(MetricsConfig{}, "1.2.3");
  const std::string s = scrape(m);
  for (const char* q : {"1", "2"})
    for (const char* d : {"client", "broker"})
      EXPECT_TRUE(hasLine(s, std::string("mqttlive_publish_ack_seconds_count{direction=\"") + d + "\",qos=\"" + q +
                                 "\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_subscribe_ack_seconds_count 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_inflight_messages{direction=\"client\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_inflight_messages{direction=\"broker\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_ack_tracking_overflow_total 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_reconnect_storm 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connect_rate_per_second 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_flapping_clients 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_idle_timeout_fingerprint_seconds 0"));
}

TEST(Metrics, AckLatenciesByQosAndDirectionAndInFlightGauge) {
  TrackerFixture f;
  ConnHandle h = f.connect(2, "pub", 60);
  f.tracker.onClientPacket(h, kT0 + kS, idPacket(PacketType::kPublish, 1, 1));
  f.tracker.onClientPacket(h, kT0 + kS, idPacket(PacketType::kPublish, 2, 1));
  f.tracker.onBrokerPacket(h, kT0 + kS, idPacket(PacketType::kPublish, 1, 2));
  f.tracker.onClientPacket(h, kT0 + kS, idPacket(PacketType::kSubscribe, 3));
  f.metrics.updateTracker(f.tracker, kT0 + kS);
  std::string s = scrape(f.metrics);
  EXPECT_TRUE(hasLine(s, "mqttlive_inflight_messages{direction=\"client\"} 2"));
  EXPECT_TRUE(hasLine(s, "mqttlive_inflight_messages{direction=\"broker\"} 1"));

  f.tracker.onBrokerPacket(h, kT0 + kS + 2000, idPacket(PacketType::kPuback, 1));     // 2 ms
  f.tracker.onClientPacket(h, kT0 + kS + 30'000, idPacket(PacketType::kPubrec, 1));   // 30 ms
  f.tracker.onBrokerPacket(h, kT0 + kS + 700, idPacket(PacketType::kSuback, 3));      // 0.7 ms
  f.metrics.updateTracker(f.tracker, kT0 + 2 * kS);
  s = scrape(f.metrics);
  EXPECT_TRUE(hasLine(s, "mqttlive_publish_ack_seconds_count{direction=\"client\",qos=\"1\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_publish_ack_seconds_bucket{direction=\"client\",qos=\"1\",le=\"0.001\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_publish_ack_seconds_bucket{direction=\"client\",qos=\"1\",le=\"0.0025\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_publish_ack_seconds_sum{direction=\"client\",qos=\"1\"} 0.002"));
  EXPECT_TRUE(hasLine(s, "mqttlive_publish_ack_seconds_count{direction=\"broker\",qos=\"2\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_publish_ack_seconds_sum{direction=\"broker\",qos=\"2\"} 0.03"));
  EXPECT_TRUE(hasLine(s, "mqttlive_publish_ack_seconds_count{direction=\"client\",qos=\"2\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_publish_ack_seconds_count{direction=\"broker\",qos=\"1\"} 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_subscribe_ack_seconds_count 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_subscribe_ack_seconds_bucket{le=\"0.001\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_inflight_messages{direction=\"client\"} 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_inflight_messages{direction=\"broker\"} 0"));
}

TEST(Metrics, AckOverflowFollowsTheTrackerCounter) {
  Metrics m(MetricsConfig{}, "1.2.3");
  TrackerStats t;
  t.ack_overflow = 3;
  m.updateCounters(EngineStats{}, t, CaptureCounters{});
  EXPECT_TRUE(hasLine(scrape(m), "mqttlive_ack_tracking_overflow_total 3"));
  t.ack_overflow = 5;
  m.updateCounters(EngineStats{}, t, CaptureCounters{});
  EXPECT_TRUE(hasLine(scrape(m), "mqttlive_ack_tracking_overflow_total 5"));
}

TEST(Metrics, FlapGaugesFromTheDetector) {
  Metrics m(MetricsConfig{}, "1.2.3");
  FlapStatus st;
  st.storm = true;
  st.connect_rate = 6.5;
  st.baseline_rate = 0.25;
  st.flapping_clients = 3;
  st.fingerprint_seconds = 350;
  st.evicted_clients = 7;
  m.updateFlap(st);
  std::string s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_reconnect_storm 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connect_rate_per_second 6.5"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connect_rate_baseline_per_second 0.25"));
  EXPECT_TRUE(hasLine(s, "mqttlive_flapping_clients 3"));
  EXPECT_TRUE(hasLine(s, "mqttlive_idle_timeout_fingerprint_seconds 350"));
  EXPECT_TRUE(hasLine(s, "mqttlive_flap_clients_evicted_total 7"));
  m.updateFlap(FlapStatus{});
  s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_reconnect_storm 0"));
  EXPECT_TRUE(hasLine(s, "mqttlive_idle_timeout_fingerprint_seconds 0"));
  // A detector that started over (count back to 0) does not take the counter back.
  EXPECT_TRUE(hasLine(s, "mqttlive_flap_clients_evicted_total 7"));
}

TEST(Metrics, FlapDetectorBesideTheMetricsInOneFanout) {
  Metrics m(MetricsConfig{}, "1.2.3");
  FlapDetector flap;
  EventFanout fan{&m, &flap};
  SessionTracker tracker{TrackerConfig{}, fan};
  for (int i = 0; i < 6; ++i) {
    ConnHandle h = tracker.open(kT0 + i * kS, ep(2, static_cast<uint16_t>(40000 + i)), ep(1, 1883), false);
    tracker.onClientPacket(h, kT0 + i * kS, connectPacket("flappy", 10));
    tracker.onBrokerPacket(h, kT0 + i * kS + 1000, connackPacket());
    tracker.onCloseStarted(h, kT0 + i * kS + 500'000, Side::kClient, true);
    tracker.onClosed(h, ClientTcp::kUnknown);
  }
  flap.advanceTo(kT0 + 6 * kS);
  m.updateFlap(flap.status());
  const std::string s = scrape(m);
  EXPECT_TRUE(hasLine(s, "mqttlive_flapping_clients 1"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connect_rate_per_second 0.6"));
  EXPECT_TRUE(hasLine(s, "mqttlive_connections_closed_total{reason=\"client_rst_without_disconnect\"} 6"));
}

TEST(Metrics, LatencyQuantilesInterpolateLikeHistogramQuantile) {
  Metrics m(MetricsConfig{}, "1.2.3");
  for (int i = 0; i < 10; ++i) m.onPingRtt(2000);  // all in (0.001, 0.0025]
  m.onAckLatency(AckKind::kSubscribe, Side::kClient, 60 * kS);  // beyond the last bound
  const auto q = m.latencyQuantiles();
  ASSERT_EQ(q.size(), 6u);
  EXPECT_EQ(q[0].name, "ping_rtt");
  EXPECT_EQ(q[0].count, 10u);
  EXPECT_NEAR(q[0].p50, 0.00175, 1e-12);
  EXPECT_NEAR(q[0].p90, 0.00235, 1e-12);
  EXPECT_EQ(q[1].name, "publish_ack_qos1_client");
  EXPECT_EQ(q[1].count, 0u);
  EXPECT_EQ(q[1].p99, 0.0);
  EXPECT_EQ(q[5].name, "subscribe_ack");
  EXPECT_EQ(q[5].p50, 5.0);  // the highest finite bound, as histogram_quantile() reports
}

}  // namespace
}  // namespace mqttlive
