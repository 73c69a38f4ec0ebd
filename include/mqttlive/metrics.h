// Sink: Prometheus metrics (docs/metrics.md is the contract). Events and
// observations arrive through the EventSink callbacks; everything the engine
// only counts (packets, gaps, parse errors, ...) is pulled by update(), which
// the engine thread calls periodically. The registry is scraped from the HTTP
// server's threads; prometheus-cpp metrics are safe to read concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "mqttlive/capture.h"
#include "mqttlive/config.h"
#include "mqttlive/engine.h"
#include "mqttlive/events.h"
#include "mqttlive/flap_detector.h"
#include "mqttlive/tracker.h"

namespace prometheus {
class Registry;
}

namespace mqttlive {

class Metrics : public EventSink {
 public:
  Metrics(const MetricsConfig& cfg, const std::string& version);
  ~Metrics() override;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  const std::shared_ptr<prometheus::Registry>& registry() const;

  // EventSink. Never throw; called on the engine thread.
  void onEvent(const Event& e) override;
  void onPingRtt(Micros rtt) override;
  void onEnforcementDelay(Micros delay) override;
  void onAckLatency(AckKind kind, Side sender, Micros latency) override;

  // Storm / flapping / idle-timeout gauges from the FlapDetector (engine thread).
  void updateFlap(const FlapStatus& status);

  // Estimated quantiles of one latency histogram since start (the
  // histogram_quantile() rule: linear within the bucket). name: "ping_rtt",
  // "publish_ack_qos1_client", ..._broker, "publish_ack_qos2_client",
  // ..._broker, "subscribe_ack". Engine thread.
  struct LatencyQuantiles {
    std::string name;
    uint64_t count = 0;
    double p50 = 0, p90 = 0, p99 = 0;  // seconds; 0 when count is 0
  };
  std::vector<LatencyQuantiles> latencyQuantiles() const;

  // Periodic refresh from the engine thread (every 100 ms - 1 s): gauges from
  // the engine and tracker, counters advanced to the engine's cumulative stats.
  // `capture` must be cumulative (the runner carries the totals of reopened
  // handles forward); a value that goes down is treated as a counter reset.
  // A different Engine than last time (replaced engine) restarts the engine
  // baselines, so counters never go backwards. Never throws.
  void update(const Engine& engine, const CaptureCounters& capture, Micros now);

  // The two halves of update(), public so that they can be driven without a
  // full Engine (tests, tools).
  void updateCounters(const EngineStats& engine, const TrackerStats& tracker, const CaptureCounters& capture);
  // connections{state}, uncertain_connections and the per-client series.
  // The last two need a walk over every open connection: with more than
  // kWalkEvery's worth of connections (200k; 40k with per-client series) it
  // runs only every walkSpacing() and the gauges keep their values between
  // walks. A per-client config change walks at the next call.
  void updateTracker(const SessionTracker& tracker, Micros now);
  static constexpr Micros kWalkEvery = 200'000;
  // 1 us per open connection, 5 us with per-client series: <= ~2% of the
  // engine thread (mqttlive_scrape_bench).
  static Micros walkSpacing(size_t open_connections, bool per_client);

  // Forget the last-seen engine / capture values: the next update() counts
  // from zero. For when the engine or the capture handles are replaced in a
  // way update() cannot notice.
  void resetEngineBaseline();
  void resetCaptureBaseline();

  // Creates capture_restarts_total{interface} at 0 for the configured
  // interfaces, so the series exist before the first restart.
  void setInterfaces(const std::vector<std::string>& interfaces);
  // Thread-safe.
  void addCaptureRestart(const std::string& iface);
  // Thread-safe. The timestamp only moves on success.
  void setReloadResult(bool ok, double unix_seconds);
  // Thread-safe (SIGHUP reload); takes effect at the next update().
  void setPerClient(const PerClientConfig& cfg);

  // 64-bit FNV-1a of `id`, 16 lowercase hex digits (per_client.hash_client_id).
  static std::string hashClientId(std::string_view id);
  // Per-client label value: valid UTF-8 (invalid bytes and control characters
  // other than \t and \n become U+FFFD, which would otherwise make Prometheus
  // reject the whole scrape) and at most `max_bytes` long.
  static std::string sanitizeLabelValue(std::string_view s, size_t max_bytes = 128);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The /connections document: connections in state expired or
// no_keepalive_idle, at most `max` of them, as one JSON object:
// {"now":ts,"connections":[{"client":..,"broker":..,"client_id":..|null,
//  "state":..,"keepalive":..|null,"keepalive_source":..,"silent_for":s,
//  "since":ts,"uncertain":bool},...],"truncated":bool}
// `since` is the keepalive deadline for expired connections and
// last_activity + no_keepalive_idle for idle ones (the tracker does not keep
// that threshold, so pass the configured value). With `hash_client_id`
// (metrics.per_client.hash_client_id) each client id is replaced by
// Metrics::hashClientId(), as in the per-client labels and /api/summary.
std::string formatSuspectConnections(const SessionTracker& tracker, Micros now, size_t max,
                                     Micros no_keepalive_idle = TrackerConfig{}.no_keepalive_idle,
                                     bool hash_client_id = false);

}  // namespace mqttlive
