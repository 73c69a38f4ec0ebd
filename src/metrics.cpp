#include "mqttlive/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "mqttlive/json_events.h"
#include "mqttlive/mqtt_packet.h"

namespace mqttlive {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

constexpr int kReasons = static_cast<int>(CloseReason::kCount);
constexpr int kStates = static_cast<int>(ConnState::kCount);
constexpr int kEventTypes = static_cast<int>(EventType::kCount);
constexpr int kDecodeStatuses = static_cast<int>(DecodeStatus::kCount);
constexpr int kGapReasons = static_cast<int>(GapReason::kCount);
constexpr int kParseErrors = static_cast<int>(ParseError::kCount);
constexpr int kEvictReasons = static_cast<int>(EvictReason::kCount);

// A counter fed from a cumulative source: remembers the last value seen and
// adds the difference, so the Prometheus counter survives source resets.
struct Cumulative {
  Counter* counter = nullptr;
  uint64_t last = 0;

  void advance(uint64_t now) {
    if (counter == nullptr) return;
    // A smaller value means the source started over (new engine, reopened
    // capture): everything it has counted since is new.
    if (now < last) last = 0;
    if (now > last) counter->Increment(static_cast<double>(now - last));
    last = now;
  }
};

double seconds(Micros us) { return microsToSeconds(us); }

Histogram::BucketBoundaries keepaliveBuckets() {
  // 0 gets its own bucket: keepalive 0 means "disabled", worth telling apart.
  return {0, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600};
}
Histogram::BucketBoundaries enforcementBuckets() {
  return {-30, -10, -5, -2, -1, 0, 1, 2, 5, 10, 30, 60, 120};
}
Histogram::BucketBoundaries rttBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
}
Histogram::BucketBoundaries durationBuckets() {
  return {1, 10, 60, 300, 900, 1800, 3600, 7200, 21600, 43200, 86400};
}

uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid (overlong,
// surrogate, beyond U+10FFFF, truncated).
size_t utf8Length(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) {
    n = 2, min = 0x80;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3, min = 0x800;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  uint32_t cp = c & (0x7f >> n);
  for (size_t k = 1; k < n; ++k) {
    auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

}  // namespace

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();

  // Event-driven.
  std::array<Counter*, kReasons> closed{};
  Counter* expirations = nullptr;
  Counter* takeovers = nullptr;
  Family<Counter>* refused_family = nullptr;
  std::array<Counter*, 256> refused{};  // created on first use: most codes never occur
  std::array<Counter*, kEventTypes> events{};
  Histogram* keepalive = nullptr;
  Histogram* enforcement = nullptr;
  Histogram* rtt = nullptr;
  Histogram* duration = nullptr;
  std::array<std::array<Histogram*, 2>, 2> publish_ack{};  // [qos - 1][sender]
  Histogram* subscribe_ack = nullptr;

  // Pushed by updateFlap().
  Gauge* storm = nullptr;
  Gauge* connect_rate = nullptr;
  Gauge* connect_baseline = nullptr;
  Gauge* flapping = nullptr;
  Gauge* fingerprint = nullptr;
  Cumulative flap_evicted;

  // Pulled by update().
  std::array<Gauge*, 2> inflight{};  // [sender]
  Cumulative ack_overflow;
  std::array<Gauge*, kStates> connections{};
  Gauge* flows = nullptr;
  Gauge* buffered = nullptr;
  Gauge* memory = nullptr;
  Gauge* uncertain = nullptr;

  const Engine* last_engine = nullptr;
  Cumulative opened;
  Cumulative packets;
  Cumulative bytes;
  std::array<Cumulative, kDecodeStatuses> decode_errors{};  // [kOk] unused
  std::array<Cumulative, kGapReasons> gaps{};
  Cumulative gap_bytes;
  std::array<std::array<Cumulative, kPacketTypeCount>, 2> mqtt_packets{};  // [side][type]
  std::array<Cumulative, kParseErrors> parse_errors{};
  std::array<Cumulative, kTransportErrorCount> transport_errors{};  // PROXY / WebSocket / TLS
  std::array<Cumulative, kEvictReasons> evicted{};
  Cumulative dropped_kernel;
  Cumulative dropped_interface;

  Family<Counter>* restarts_family = nullptr;

  Gauge* reload_ok = nullptr;
  Gauge* reload_ts = nullptr;

  // Per-client. `pending` is written by setPerClient() on any thread and
  // copied into `per_client` by the engine thread.
  std::mutex cfg_mu;
  PerClientConfig pending;
  bool pending_changed = false;
  // The walk over every open connection (uncertain gauge, per-client series)
  // costs ~15 ns per connection, ~75 ns with per-client series
  // (mqttlive_scrape_bench). Run every 200 ms at 1M connections that would
  // take 8-40% of the engine thread, so with many connections the walk is
  // spaced out in proportion to their count (Metrics::walkSpacing): it takes
  // ~2% of the engine thread and the gauges are at most a few seconds old,
  // well inside a scrape interval.
  Micros next_walk = 0;
  bool walked = false;  // the last updateTracker() walked
  PerClientConfig per_client;
  Family<Gauge>* client_family = nullptr;
  Gauge* client_dropped = nullptr;
  std::unordered_map<std::string, Gauge*> client_series;
  std::unordered_map<std::string, double> client_scratch;  // reused each update

  void resetEngine() {
    ack_overflow.last = 0;
    opened.last = packets.last = bytes.last = gap_bytes.last = 0;
    for (auto& c : decode_errors) c.last = 0;
    for (auto& c : gaps) c.last = 0;
    for (auto& side : mqtt_packets)
      for (auto& c : side) c.last = 0;
    for (auto& c : parse_errors) c.last = 0;
    for (auto& c : transport_errors) c.last = 0;
    for (auto& c : evicted) c.last = 0;
  }

  void updateClients(const SessionTracker& tracker, Micros now);
  void clearClients();
};

Metrics::Metrics(const MetricsConfig& cfg, const std::string& version) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  auto& reg = *m.registry;
  m.pending = m.per_client = cfg.per_client;

  auto& conns = prometheus::BuildGauge()
                    .Name("mqttlive_connections")
                    .Help(
                        "Open MQTT connections by liveness state; expired = past the keepalive deadline and "
                        "still open (half-open)")
                    .Register(reg);
  for (int i = 0; i < kStates; ++i)
    m.connections[i] = &conns.Add({{"state", toString(static_cast<ConnState>(i))}});

  m.opened.counter = &prometheus::BuildCounter()
                          .Name("mqttlive_connections_opened_total")
                          .Help("TCP connections to a broker port seen starting (or picked up midstream)")
                          .Register(reg)
                          .Add({});

  auto& closed = prometheus::BuildCounter()
                     .Name("mqttlive_connections_closed_total")
                     .Help("Closed MQTT connections by close reason")
                     .Register(reg);
  for (int i = 0; i < kReasons; ++i)
    m.closed[i] = &closed.Add({{"reason", toString(static_cast<CloseReason>(i))}});

  m.expirations = &prometheus::BuildCounter()
                       .Name("mqttlive_keepalive_expirations_total")
                       .Help("Keepalive deadlines that passed with the connection still open")
                       .Register(reg)
                       .Add({});
  m.takeovers = &prometheus::BuildCounter()
                     .Name("mqttlive_takeovers_total")
                     .Help("CONNECTs that reused the client id of a connection still open")
                     .Register(reg)
                     .Add({});
  m.refused_family = &prometheus::BuildCounter()
                          .Name("mqttlive_connects_refused_total")
                          .Help("Refused connects by CONNACK return/reason code")
                          .Register(reg);
  // The MQTT 3.1.1 refusal codes exist from the start so that the metric is in
  // every scrape; any other code (v5 reason codes) gets its series on first use.
  for (int code = 1; code <= 5; ++code)
    m.refused[code] = &m.refused_family->Add({{"code", std::to_string(code)}});

  auto& events = prometheus::BuildCounter()
                     .Name("mqttlive_events_total")
                     .Help("Events emitted, by event type")
                     .Register(reg);
  for (int i = 0; i < kEventTypes; ++i)
    m.events[i] = &events.Add({{"event", toString(static_cast<EventType>(i))}});

  m.keepalive = &prometheus::BuildHistogram()
                     .Name("mqttlive_keepalive_seconds")
                     .Help("Effective keepalive of each successful connect")
                     .Register(reg)
                     .Add({}, keepaliveBuckets());
  m.enforcement =
      &prometheus::BuildHistogram()
           .Name("mqttlive_keepalive_enforcement_delay_seconds")
           .Help("Broker close time minus keepalive deadline for keepalive closes (negative = early)")
           .Register(reg)
           .Add({}, enforcementBuckets());
  m.rtt = &prometheus::BuildHistogram()
               .Name("mqttlive_ping_rtt_seconds")
               .Help("PINGREQ to PINGRESP round trip as seen at the capture point")
               .Register(reg)
               .Add({}, rttBuckets());
  m.duration = &prometheus::BuildHistogram()
                    .Name("mqttlive_connection_duration_seconds")
                    .Help("Lifetime of closed connections")
                    .Register(reg)
                    .Add({}, durationBuckets());

  auto& pub_ack = prometheus::BuildHistogram()
                      .Name("mqttlive_publish_ack_seconds")
                      .Help(
                          "PUBLISH to PUBACK (qos 1) or PUBREC (qos 2) round trip at the capture point; "
                          "direction = side that sent the PUBLISH")
                      .Register(reg);
  for (int q = 0; q < 2; ++q)
    for (int side = 0; side < 2; ++side)
      m.publish_ack[q][side] =
          &pub_ack.Add({{"qos", q == 0 ? "1" : "2"}, {"direction", side == 0 ? "client" : "broker"}}, rttBuckets());
  m.subscribe_ack = &prometheus::BuildHistogram()
                         .Name("mqttlive_subscribe_ack_seconds")
                         .Help("SUBSCRIBE to SUBACK round trip at the capture point")
                         .Register(reg)
                         .Add({}, rttBuckets());
  auto& inflight = prometheus::BuildGauge()
                       .Name("mqttlive_inflight_messages")
                       .Help(
                           "QoS 1/2 PUBLISHes not yet acknowledged (PUBACK/PUBREC) on open connections; "
                           "direction = side that sent them")
                       .Register(reg);
  m.inflight[0] = &inflight.Add({{"direction", "client"}});
  m.inflight[1] = &inflight.Add({{"direction", "broker"}});
  m.ack_overflow.counter = &prometheus::BuildCounter()
                                .Name("mqttlive_ack_tracking_overflow_total")
                                .Help(
                                    "PUBLISH/SUBSCRIBE requests not timed: the connection already had 8 "
                                    "unacknowledged requests from that side")
                                .Register(reg)
                                .Add({});

  m.storm = &prometheus::BuildGauge()
                 .Name("mqttlive_reconnect_storm")
                 .Help("1 while the connect rate is far above its baseline (reconnect storm; detectors.storm)")
                 .Register(reg)
                 .Add({});
  m.connect_rate = &prometheus::BuildGauge()
                        .Name("mqttlive_connect_rate_per_second")
                        .Help("CONNACKs (accepted or refused) per second over detectors.storm.window_seconds (10 s)")
                        .Register(reg)
                        .Add({});
  m.connect_baseline = &prometheus::BuildGauge()
                            .Name("mqttlive_connect_rate_baseline_per_second")
                            .Help("Slow baseline of the connect rate (EWMA, time constant detectors.storm.baseline_seconds)")
                            .Register(reg)
                            .Add({});
  m.flapping = &prometheus::BuildGauge()
                    .Name("mqttlive_flapping_clients")
                    .Help("Client ids with at least detectors.flapping.connects (5) connects within its window (5 minutes)")
                    .Register(reg)
                    .Add({});
  m.fingerprint = &prometheus::BuildGauge()
                       .Name("mqttlive_idle_timeout_fingerprint_seconds")
                       .Help(
                           "Connection age at which many closes without DISCONNECT cluster (a load balancer "
                           "idle timeout); 0 = none")
                       .Register(reg)
                       .Add({});
  m.flap_evicted.counter = &prometheus::BuildCounter()
                                .Name("mqttlive_flap_clients_evicted_total")
                                .Help("Client ids dropped from the capped reconnect-tracking table")
                                .Register(reg)
                                .Add({});

  m.packets.counter = &prometheus::BuildCounter()
                           .Name("mqttlive_capture_packets_total")
                           .Help("Frames read from the capture")
                           .Register(reg)
                           .Add({});
  m.bytes.counter = &prometheus::BuildCounter()
                         .Name("mqttlive_capture_bytes_total")
                         .Help("Captured bytes of the frames read")
                         .Register(reg)
                         .Add({});
  auto& dropped = prometheus::BuildCounter()
                      .Name("mqttlive_capture_dropped_packets_total")
                      .Help("Packets libpcap reports lost (kernel = ps_drop, interface = ps_ifdrop)")
                      .Register(reg);
  m.dropped_kernel.counter = &dropped.Add({{"source", "kernel"}});
  m.dropped_interface.counter = &dropped.Add({{"source", "interface"}});
  auto& errors = prometheus::BuildCounter()
                     .Name("mqttlive_capture_errors_total")
                     .Help("Frames that were not usable TCP, by reason")
                     .Register(reg);
  for (int i = 1; i < kDecodeStatuses; ++i)  // 0 is kOk
    m.decode_errors[i].counter = &errors.Add({{"reason", toString(static_cast<DecodeStatus>(i))}});
  m.restarts_family = &prometheus::BuildCounter()
                           .Name("mqttlive_capture_restarts_total")
                           .Help("Capture handles reopened after an interface error")
                           .Register(reg);

  auto& gaps = prometheus::BuildCounter()
                   .Name("mqttlive_tcp_gaps_total")
                   .Help("Holes in a TCP stream (bytes never seen), by reason")
                   .Register(reg);
  for (int i = 0; i < kGapReasons; ++i)
    m.gaps[i].counter = &gaps.Add({{"reason", toString(static_cast<GapReason>(i))}});
  m.gap_bytes.counter = &prometheus::BuildCounter()
                             .Name("mqttlive_tcp_gap_bytes_total")
                             .Help("Bytes skipped in TCP stream holes")
                             .Register(reg)
                             .Add({});

  auto& mqtt = prometheus::BuildCounter()
                   .Name("mqttlive_mqtt_packets_total")
                   .Help("MQTT control packets decoded, by type and sending side")
                   .Register(reg);
  for (int side = 0; side < 2; ++side) {
    const char* direction = side == static_cast<int>(Side::kClient) ? "client" : "broker";
    // Type 0 is reserved: the decoder reports it as a parse error, never as a packet.
    for (int t = 1; t < kPacketTypeCount; ++t)
      m.mqtt_packets[side][t].counter =
          &mqtt.Add({{"type", packetTypeName(static_cast<PacketType>(t))}, {"direction", direction}});
  }
  auto& parse = prometheus::BuildCounter()
                    .Name("mqttlive_parse_errors_total")
                    .Help("Malformed MQTT, by reason")
                    .Register(reg);
  for (int i = 0; i < kParseErrors; ++i)
    m.parse_errors[i].counter = &parse.Add({{"reason", toString(static_cast<ParseError>(i))}});
  auto& transport = prometheus::BuildCounter()
                        .Name("mqttlive_transport_errors_total")
                        .Help("PROXY header, WebSocket and TLS record errors, by reason")
                        .Register(reg);
  for (int i = 0; i < kTransportErrorCount; ++i)
    m.transport_errors[i].counter = &transport.Add({{"reason", transportErrorName(i)}});

  m.flows = &prometheus::BuildGauge()
                 .Name("mqttlive_flows")
                 .Help("TCP flows in the flow table")
                 .Register(reg)
                 .Add({});
  auto& evicted = prometheus::BuildCounter()
                      .Name("mqttlive_flows_evicted_total")
                      .Help("Flows refused or dropped for capacity, by reason")
                      .Register(reg);
  for (int i = 0; i < kEvictReasons; ++i)
    m.evicted[i].counter = &evicted.Add({{"reason", toString(static_cast<EvictReason>(i))}});
  m.buffered = &prometheus::BuildGauge()
                    .Name("mqttlive_reassembly_buffered_bytes")
                    .Help("Out-of-order bytes held by TCP reassembly")
                    .Register(reg)
                    .Add({});
  m.memory = &prometheus::BuildGauge()
                  .Name("mqttlive_tracker_memory_bytes")
                  .Help("Memory held by the flow table and tracker")
                  .Register(reg)
                  .Add({});
  m.uncertain = &prometheus::BuildGauge()
                     .Name("mqttlive_uncertain_connections")
                     .Help("Open connections whose data had gaps or capture drops (verdicts uncertain)")
                     .Register(reg)
                     .Add({});

  prometheus::BuildGauge()
      .Name("mqttlive_build_info")
      .Help("Build information; always 1")
      .Register(reg)
      .Add({{"version", version}})
      .Set(1);
  // Metrics is built from a configuration that has just loaded; the runner
  // sets the timestamp via setReloadResult() at startup.
  m.reload_ok = &prometheus::BuildGauge()
                     .Name("mqttlive_config_last_reload_successful")
                     .Help("1 if the last configuration (re)load succeeded")
                     .Register(reg)
                     .Add({});
  m.reload_ok->Set(1);
  m.reload_ts = &prometheus::BuildGauge()
                     .Name("mqttlive_config_last_reload_success_timestamp_seconds")
                     .Help("Unix time of the last successful configuration (re)load")
                     .Register(reg)
                     .Add({});

  m.client_family = &prometheus::BuildGauge()
                         .Name("mqttlive_client_expired_seconds")
                         .Help(
                             "Per client (opt-in): seconds past the keepalive deadline of connections "
                             "currently expired")
                         .Register(reg);
  m.client_dropped = &prometheus::BuildGauge()
                          .Name("mqttlive_client_series_dropped")
                          .Help(
                              "Expired connections left out of mqttlive_client_expired_seconds because of "
                              "metrics.per_client.max_series")
                          .Register(reg)
                          .Add({});
}

Metrics::~Metrics() = default;

const std::shared_ptr<prometheus::Registry>& Metrics::registry() const { return impl_->registry; }

void Metrics::onEvent(const Event& e) {
  Impl& m = *impl_;
  const auto type = static_cast<int>(e.type);
  if (type >= kEventTypes) return;
  m.events[type]->Increment();
  switch (e.type) {
    case EventType::kConnected:
      if (e.conn != nullptr && e.conn->keepalive_known) m.keepalive->Observe(e.conn->keepalive);
      break;
    case EventType::kConnectRefused: {
      Counter*& c = m.refused[e.code];
      if (c == nullptr) {
        try {
          c = &m.refused_family->Add({{"code", std::to_string(e.code)}});
        } catch (...) {
          return;  // out of memory: lose one increment rather than the engine thread
        }
      }
      c->Increment();
      break;
    }
    case EventType::kKeepaliveExpired:
      m.expirations->Increment();
      break;
    case EventType::kTakeover:
      m.takeovers->Increment();
      break;
    case EventType::kClosed:
      if (static_cast<int>(e.reason) < kReasons) m.closed[static_cast<int>(e.reason)]->Increment();
      m.duration->Observe(seconds(std::max<Micros>(e.duration, 0)));
      break;
    default:
      break;
  }
}

void Metrics::onPingRtt(Micros rtt) {
  if (rtt >= 0) impl_->rtt->Observe(seconds(rtt));
}

void Metrics::onEnforcementDelay(Micros delay) { impl_->enforcement->Observe(seconds(delay)); }

void Metrics::onAckLatency(AckKind kind, Side sender, Micros latency) {
  Impl& m = *impl_;
  const int side = static_cast<int>(sender) & 1;
  const double v = seconds(std::max<Micros>(latency, 0));
  switch (kind) {
    case AckKind::kPublishQos1:
      m.publish_ack[0][side]->Observe(v);
      break;
    case AckKind::kPublishQos2:
      m.publish_ack[1][side]->Observe(v);
      break;
    case AckKind::kSubscribe:
      m.subscribe_ack->Observe(v);
      break;
    default:
      break;
  }
}

void Metrics::updateFlap(const FlapStatus& st) {
  Impl& m = *impl_;
  m.storm->Set(st.storm ? 1 : 0);
  m.connect_rate->Set(st.connect_rate);
  m.connect_baseline->Set(st.baseline_rate);
  m.flapping->Set(st.flapping_clients);
  m.fingerprint->Set(st.fingerprint_seconds);
  m.flap_evicted.advance(st.evicted_clients);
}

namespace {
// histogram_quantile(): linear interpolation inside the bucket holding the rank.
double quantile(const prometheus::ClientMetric::Histogram& h, double q) {
  if (h.sample_count == 0) return 0;
  const double rank = q * static_cast<double>(h.sample_count);
  double lower = 0;
  uint64_t below = 0;
  for (const auto& b : h.bucket) {
    if (static_cast<double>(b.cumulative_count) >= rank) {
      if (std::isinf(b.upper_bound)) return lower;  // beyond the last bound: report the bound
      const uint64_t in = b.cumulative_count - below;
      if (in == 0) return b.upper_bound;
      return lower + (b.upper_bound - lower) * (rank - static_cast<double>(below)) / static_cast<double>(in);
    }
    lower = b.upper_bound;
    below = b.cumulative_count;
  }
  return lower;
}
}  // namespace

std::vector<Metrics::LatencyQuantiles> Metrics::latencyQuantiles() const {
  const Impl& m = *impl_;
  const std::pair<const char*, Histogram*> hs[] = {
      {"ping_rtt", m.rtt},
      {"publish_ack_qos1_client", m.publish_ack[0][0]},
      {"publish_ack_qos1_broker", m.publish_ack[0][1]},
      {"publish_ack_qos2_client", m.publish_ack[1][0]},
      {"publish_ack_qos2_broker", m.publish_ack[1][1]},
      {"subscribe_ack", m.subscribe_ack},
  };
  std::vector<LatencyQuantiles> out;
  for (const auto& [name, h] : hs) {
    const auto c = h->Collect().histogram;
    LatencyQuantiles l;
    l.name = name;
    l.count = c.sample_count;
    l.p50 = quantile(c, 0.5);
    l.p90 = quantile(c, 0.9);
    l.p99 = quantile(c, 0.99);
    out.push_back(std::move(l));
  }
  return out;
}

void Metrics::update(const Engine& engine, const CaptureCounters& capture, Micros now) {
  Impl& m = *impl_;
  if (&engine != m.last_engine) {
    m.resetEngine();
    m.last_engine = &engine;
  }
  updateCounters(engine.stats(), engine.tracker().stats(), capture);
  m.flows->Set(static_cast<double>(engine.openFlows()));
  m.buffered->Set(static_cast<double>(engine.bufferedBytes()));
  updateTracker(engine.tracker(), now);
  // Adding up the memory walks the tracker's slots too: same cadence.
  if (m.walked) m.memory->Set(static_cast<double>(engine.memoryBytes()));
}

void Metrics::updateCounters(const EngineStats& s, const TrackerStats& t, const CaptureCounters& capture) {
  Impl& m = *impl_;
  m.opened.advance(t.opened);
  m.ack_overflow.advance(t.ack_overflow);
  m.packets.advance(s.packets);
  m.bytes.advance(s.bytes);
  for (int i = 1; i < kDecodeStatuses; ++i) m.decode_errors[i].advance(s.decode_status[i]);
  for (int i = 0; i < kGapReasons; ++i) m.gaps[i].advance(s.gaps_by_reason[i]);
  m.gap_bytes.advance(s.gap_bytes);
  for (int side = 0; side < 2; ++side)
    for (int ty = 1; ty < kPacketTypeCount; ++ty) m.mqtt_packets[side][ty].advance(s.mqtt_packets[side][ty]);
  for (int i = 0; i < kParseErrors; ++i) m.parse_errors[i].advance(s.parse_errors[i]);
  for (int i = 0; i < kTransportErrorCount; ++i) m.transport_errors[i].advance(transportErrorCount(s.transport, i));
  for (int i = 0; i < kEvictReasons; ++i) m.evicted[i].advance(s.flows_evicted[i]);
  m.dropped_kernel.advance(capture.dropped);
  m.dropped_interface.advance(capture.if_dropped);
}

Micros Metrics::walkSpacing(size_t open_connections, bool per_client) {
  return static_cast<Micros>(open_connections) * (per_client ? 5 : 1);
}

void Metrics::updateTracker(const SessionTracker& tracker, Micros now) {
  Impl& m = *impl_;
  const uint64_t* counts = tracker.stateCounts();
  for (int i = 0; i < kStates; ++i) m.connections[i]->Set(static_cast<double>(counts[i]));
  for (int side = 0; side < 2; ++side)
    m.inflight[side]->Set(static_cast<double>(tracker.inflight(static_cast<Side>(side))));
  {
    std::lock_guard<std::mutex> lock(m.cfg_mu);
    m.per_client = m.pending;
    if (m.pending_changed) m.next_walk = 0;
    m.pending_changed = false;
  }
  const Micros spacing = walkSpacing(tracker.openCount(), m.per_client.enabled);
  m.walked = spacing <= kWalkEvery || now >= m.next_walk;
  if (!m.walked) return;
  m.next_walk = now + spacing;
  if (m.per_client.enabled) {
    m.updateClients(tracker, now);
  } else {
    m.clearClients();
    size_t uncertain = 0;
    tracker.forEachOpen([&](const ConnectionInfo& c) { uncertain += c.uncertain ? 1 : 0; });
    m.uncertain->Set(static_cast<double>(uncertain));
  }
}

void Metrics::Impl::updateClients(const SessionTracker& tracker, Micros now) {
  size_t uncertain_count = 0;
  size_t dropped = 0;
  client_scratch.clear();
  try {
    tracker.forEachOpen([&](const ConnectionInfo& c) {
      uncertain_count += c.uncertain ? 1 : 0;
      if (c.state != ConnState::kExpired) return;
      std::string label = c.client_id_known && !c.client_id.empty() ? c.client_id : formatEndpoint(c.client);
      label = per_client.hash_client_id ? hashClientId(label) : sanitizeLabelValue(label);
      const double v = c.deadline != 0 ? seconds(std::max<Micros>(now - c.deadline, 0)) : 0.0;
      auto it = client_scratch.find(label);
      if (it != client_scratch.end()) {
        // Two expired connections under one id (shared id, truncation): report the older one.
        it->second = std::max(it->second, v);
      } else if (client_scratch.size() < per_client.max_series) {
        client_scratch.emplace(std::move(label), v);
      } else {
        ++dropped;
      }
    });
    for (auto it = client_series.begin(); it != client_series.end();) {
      if (client_scratch.count(it->first) == 0) {
        client_family->Remove(it->second);
        it = client_series.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [label, v] : client_scratch) {
      auto it = client_series.find(label);
      if (it == client_series.end())
        it = client_series.emplace(label, &client_family->Add({{"client_id", label}})).first;
      it->second->Set(v);
    }
  } catch (...) {
    // Out of memory half way: drop every per-client series rather than leave
    // some stale; the aggregate gauges below are still right.
    clearClients();
  }
  uncertain->Set(static_cast<double>(uncertain_count));
  client_dropped->Set(static_cast<double>(dropped));
}

void Metrics::Impl::clearClients() {
  for (auto& [label, g] : client_series) client_family->Remove(g);
  client_series.clear();
  client_dropped->Set(0);
}

void Metrics::resetEngineBaseline() { impl_->resetEngine(); }

void Metrics::resetCaptureBaseline() {
  impl_->dropped_kernel.last = 0;
  impl_->dropped_interface.last = 0;
}

void Metrics::setInterfaces(const std::vector<std::string>& interfaces) {
  for (const auto& iface : interfaces) impl_->restarts_family->Add({{"interface", iface}});
}

void Metrics::addCaptureRestart(const std::string& iface) {
  try {
    impl_->restarts_family->Add({{"interface", iface}}).Increment();
  } catch (...) {
  }
}

void Metrics::setReloadResult(bool ok, double unix_seconds) {
  impl_->reload_ok->Set(ok ? 1 : 0);
  if (ok) impl_->reload_ts->Set(unix_seconds);
}

void Metrics::setPerClient(const PerClientConfig& cfg) {
  std::lock_guard<std::mutex> lock(impl_->cfg_mu);
  impl_->pending = cfg;
  impl_->pending_changed = true;
}

std::string Metrics::hashClientId(std::string_view id) {
  static const char kHex[] = "0123456789abcdef";
  uint64_t h = fnv1a64(id);
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<size_t>(i)] = kHex[h & 0xf];
  return out;
}

std::string Metrics::sanitizeLabelValue(std::string_view s, size_t max_bytes) {
  static constexpr char kReplacement[] = "\xef\xbf\xbd";  // U+FFFD
  std::string out;
  out.reserve(std::min(s.size(), max_bytes));
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = utf8Length(s, i);
    const bool replace = n == 0 || (c < 0x20 && c != '\t' && c != '\n');
    const size_t add = replace ? 3 : n;
    // Cut at a character boundary so the result stays valid UTF-8.
    if (out.size() + add > max_bytes) break;
    if (replace) {
      out.append(kReplacement, 3);
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out;
}

std::string formatSuspectConnections(const SessionTracker& tracker, Micros now, size_t max,
                                     Micros no_keepalive_idle, bool hash_client_id) {
  std::string out;
  out.reserve(256);
  out += "{\"now\":";
  appendJsonTime(out, now);
  out += ",\"connections\":[";
  size_t n = 0;
  bool truncated = false;
  tracker.forEachOpen([&](const ConnectionInfo& c) {
    if (c.state != ConnState::kExpired && c.state != ConnState::kNoKeepaliveIdle) return;
    if (n == max) {
      truncated = true;
      return;
    }
    if (n++ > 0) out += ',';
    out += "{\"client\":";
    appendJsonString(out, formatEndpoint(c.client));
    out += ",\"broker\":";
    appendJsonString(out, formatEndpoint(c.broker));
    out += ",\"client_id\":";
    if (c.client_id_known)
      appendJsonString(out, hash_client_id ? Metrics::hashClientId(c.client_id) : std::string(c.client_id));
    else
      out += "null";
    out += ",\"state\":";
    appendJsonString(out, toString(c.state));
    out += ",\"keepalive\":";
    if (c.keepalive_known) {
      out += std::to_string(c.keepalive);
      out += ",\"keepalive_source\":";
      appendJsonString(out, toString(c.keepalive_source));
    } else {
      out += "null,\"keepalive_source\":null";
    }
    out += ",\"silent_for\":";
    appendJsonTime(out, std::max<Micros>(now - c.last_activity, 0));
    out += ",\"since\":";
    const Micros since =
        c.state == ConnState::kExpired && c.deadline != 0 ? c.deadline : c.last_activity + no_keepalive_idle;
    appendJsonTime(out, since);
    out += ",\"uncertain\":";
    out += c.uncertain ? "true" : "false";
    out += '}';
  });
  out += "],\"truncated\":";
  out += truncated ? "true" : "false";
  out += '}';
  return out;
}

}  // namespace mqttlive
