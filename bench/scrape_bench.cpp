// mqttlive_scrape_bench [N=1000000] [MAX_SERIES=100]: what one /metrics scrape
// costs with N tracked connections, all of them expired (the worst case for
// the per-client series), with per-client series off and then opted in.
//
// A scrape is two parts: Metrics::update() on the engine thread (walks every
// connection for the state and uncertain gauges and, opted in, the per-client
// series) and the text exposition the HTTP thread renders from the registry
// (the same prometheus::TextSerializer call as the /metrics handler). The
// live runner also rebuilds the /connections and /api/summary documents every
// 500 ms; their cost is printed too. The body does not grow with N; the walk
// grows linearly and is spaced out (Metrics::walkSpacing) to stay ~2% of the
// engine thread.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "connections.h"
#include "mqttlive/engine.h"
#include "mqttlive/flap_detector.h"
#include "mqttlive/metrics.h"
#include "mqttlive/status_page.h"

using namespace mqttlive;

namespace {

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

size_t countSeries(const std::string& body) {
  size_t n = 0, pos = 0;
  while (pos < body.size()) {
    const size_t end = std::min(body.find('\n', pos), body.size());
    if (end > pos && body[pos] != '#') ++n;
    pos = end + 1;
  }
  return n;
}

struct Scrape {
  double walk_ms = 0, between_ms = 0, render_ms = 0;
  size_t bytes = 0, series = 0, client_series = 0;
};

// Best of `runs` (the machine is shared and noisy). setPerClient() makes the
// next update walk every connection; the update right after it is one of the
// cheap ones in between walks.
Scrape measure(Metrics& metrics, const Engine& engine, const PerClientConfig& pc, Micros now, int runs) {
  Scrape best;
  best.walk_ms = best.between_ms = best.render_ms = 1e18;
  for (int r = 0; r < runs; ++r) {
    metrics.setPerClient(pc);
    auto t = std::chrono::steady_clock::now();
    metrics.update(engine, CaptureCounters{}, now);
    best.walk_ms = std::min(best.walk_ms, msSince(t));
    t = std::chrono::steady_clock::now();
    metrics.update(engine, CaptureCounters{}, now + 1);
    best.between_ms = std::min(best.between_ms, msSince(t));
    t = std::chrono::steady_clock::now();
    const std::string body = prometheus::TextSerializer().Serialize(metrics.registry()->Collect());
    best.render_ms = std::min(best.render_ms, msSince(t));
    best.bytes = body.size();
    best.series = countSeries(body);
    best.client_series = 0;
    for (size_t p = body.find("\nmqttlive_client_expired_seconds{"); p != std::string::npos;
         p = body.find("\nmqttlive_client_expired_seconds{", p + 1))
      ++best.client_series;
  }
  return best;
}

void print(const char* what, const Scrape& s, size_t open, bool per_client) {
  const Micros spacing = std::max(Metrics::walkSpacing(open, per_client), Metrics::kWalkEvery);
  std::printf(
      "%-30s walk %6.1f ms every %5.2f s (%4.1f%% of the engine thread), update between walks %.3f ms; "
      "render %.2f ms, body %zu bytes, %zu series (%zu per client)\n",
      what, s.walk_ms, static_cast<double>(spacing) / 1e6, 100.0 * s.walk_ms * 1e3 / static_cast<double>(spacing),
      s.between_ms, s.render_ms, s.bytes, s.series, s.client_series);
}

}  // namespace

int main(int argc, char** argv) {
  const uint32_t n = argc > 1 ? static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10)) : 1'000'000;
  const uint32_t max_series = argc > 2 ? static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10)) : 100;
  if (n == 0 || n > (1u << 23) || max_series == 0) {
    std::fprintf(stderr, "usage: mqttlive_scrape_bench [N=1000000] [MAX_SERIES=100]\n");
    return 2;
  }
  MetricsConfig mcfg;
  Metrics metrics(mcfg, "bench");
  EngineConfig cfg;
  cfg.broker_ports = {1883};
  cfg.max_flows = std::max<uint32_t>(cfg.max_flows, n);
  cfg.tracker.max_connections = std::max<uint32_t>(cfg.tracker.max_connections, n);
  auto engine = std::make_unique<Engine>(cfg, metrics);
  const Micros t0 = 1'700'000'000LL * kMicrosPerSecond;
  bench::openConnections(*engine, n, t0);
  // Keepalive 60 s: every deadline (1.5 x 60 s) has passed 10 s later.
  const Micros now = t0 + 100 * kMicrosPerSecond;
  engine->advanceTo(now);
  const uint64_t expired = engine->tracker().stateCounts()[static_cast<int>(ConnState::kExpired)];
  std::printf("connections: %u, expired: %llu\n", n, static_cast<unsigned long long>(expired));

  const size_t open = engine->tracker().openCount();
  PerClientConfig pc;
  const Scrape off = measure(metrics, *engine, pc, now, 5);
  print("per_client off", off, open, false);
  pc.enabled = true;
  pc.max_series = max_series;
  const Scrape on = measure(metrics, *engine, pc, now, 5);
  char label[64];
  std::snprintf(label, sizeof(label), "per_client on, max_series %u", max_series);
  print(label, on, open, true);
  pc.hash_client_id = true;
  const Scrape hashed = measure(metrics, *engine, pc, now, 5);
  print("per_client on, hashed ids", hashed, open, true);

  // The two JSON documents the live runner publishes every 500 ms.
  FlapDetector flap;
  double conn_ms = 1e18, sum_ms = 1e18;
  size_t conn_bytes = 0, sum_bytes = 0;
  for (int r = 0; r < 5; ++r) {
    auto t = std::chrono::steady_clock::now();
    conn_bytes = formatSuspectConnections(engine->tracker(), now, 1000).size();
    conn_ms = std::min(conn_ms, msSince(t));
    t = std::chrono::steady_clock::now();
    sum_bytes = formatSummary(engine->tracker(), flap, &metrics, now).size();
    sum_ms = std::min(sum_ms, msSince(t));
  }
  std::printf("/connections document (max 1000)   %8.1f ms  body %7zu bytes\n", conn_ms, conn_bytes);
  std::printf("/api/summary document              %8.1f ms  body %7zu bytes\n", sum_ms, sum_bytes);

  const bool ok = expired == n && off.client_series == 0 && on.client_series == std::min<uint64_t>(n, max_series) &&
                  hashed.client_series == on.client_series;
  std::printf("check all expired, per-client series capped at max_series: %s\n", ok ? "ok" : "FAIL");
  return ok ? 0 : 1;
}
