// mqttlive_memory_bench [N=1000000]: holds N concurrent tracked connections in
// one Engine and reports what they cost.
//
// The connections come from bench::openConnections (connections.h). Prints
// VmRSS before and after, bytes per connection by RSS and by the engine's own accounting, and checks
// that the tracker holds exactly N open connections, all active.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "connections.h"
#include "mqttlive/engine.h"
#include "mqttlive/flow_table.h"
#include "mqttlive/mqtt_decoder.h"
#include "mqttlive/tcp_reassembly.h"
#include "synth.h"

using namespace mqttlive;

namespace {

class NullSink : public EventSink {
 public:
  void onEvent(const Event&) override { ++events; }
  uint64_t events = 0;
};

double mb(uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }

}  // namespace

int main(int argc, char** argv) {
  const uint32_t n = argc > 1 ? static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10)) : 1'000'000;
  if (n == 0 || n > (1u << 23)) {
    std::fprintf(stderr, "usage: mqttlive_memory_bench [N=1000000] (1..8388608)\n");
    return 2;
  }
  std::printf("sizeof: ConnectionInfo %zu, Endpoint %zu, FlowKey %zu, MqttDecoder %zu, StreamReassembler %zu\n",
              sizeof(ConnectionInfo), sizeof(Endpoint), sizeof(FlowKey), sizeof(MqttDecoder),
              sizeof(StreamReassembler));

  NullSink sink;
  EngineConfig cfg;
  cfg.broker_ports = {1883};
  cfg.max_flows = std::max<uint32_t>(cfg.max_flows, n);
  cfg.tracker.max_connections = std::max<uint32_t>(cfg.tracker.max_connections, n);
  const uint64_t rss_before = bench::rssBytes();
  auto engine = std::make_unique<Engine>(cfg, sink);
  const uint64_t rss_empty = bench::rssBytes();

  const Micros t0 = 1'700'000'000LL * kMicrosPerSecond;
  const auto wall0 = std::chrono::steady_clock::now();
  // 1 us apart: 1M connections open within one second.
  const uint64_t frames = bench::openConnections(*engine, n, t0);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  const uint64_t rss_after = bench::rssBytes();

  const SessionTracker& tr = engine->tracker();
  const size_t open = tr.openCount();
  const uint64_t active = tr.stateCounts()[static_cast<int>(ConnState::kActive)];
  const size_t mem = engine->memoryBytes();
  const size_t tracker_mem = tr.memoryBytes();
  const uint64_t delta = rss_after - rss_empty;

  std::printf("connections: %u (tracker open %zu, active %llu, flows %zu, events %llu)\n", n, open,
              static_cast<unsigned long long>(active), engine->openFlows(),
              static_cast<unsigned long long>(sink.events));
  std::printf("setup: %llu frames in %.2f s (%.0f frames/s, %.0f connections/s)\n",
              static_cast<unsigned long long>(frames), secs, static_cast<double>(frames) / secs,
              static_cast<double>(n) / secs);
  std::printf("VmRSS: before %.1f MB, empty engine %.1f MB, with %u connections %.1f MB\n", mb(rss_before),
              mb(rss_empty), n, mb(rss_after));
  std::printf("RSS per connection:            %.1f bytes\n", static_cast<double>(delta) / n);
  std::printf("engine.memoryBytes():          %.1f MB (%.1f bytes/connection)\n", mb(mem),
              static_cast<double>(mem) / n);
  std::printf("  tracker.memoryBytes():       %.1f MB (%.1f bytes/connection)\n", mb(tracker_mem),
              static_cast<double>(tracker_mem) / n);
  std::printf("  flows (table, keys, flows):  %.1f MB (%.1f bytes/connection)\n", mb(mem - tracker_mem),
              static_cast<double>(mem - tracker_mem) / n);

  // What a metrics update or /connections pays to walk every connection
  // (the tracker hands out ConnectionInfo snapshots built from its slots).
  const auto walk0 = std::chrono::steady_clock::now();
  size_t walked = 0, uncertain = 0;
  tr.forEachOpen([&](const ConnectionInfo& c) {
    ++walked;
    uncertain += c.uncertain ? 1 : 0;
  });
  std::printf("forEachOpen over %zu connections: %.1f ms (%zu uncertain)\n", walked,
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - walk0).count(), uncertain);

  bool ok = open == n && active == n;
  const bool rss_ok = n < 1'000'000 || rss_after <= 400ull * 1024 * 1024;
  const bool tracker_ok = static_cast<double>(tracker_mem) / n <= 200.0;
  std::printf("check openCount()==N and all active: %s\n", ok ? "ok" : "FAIL");
  std::printf("target tracker state <= ~200 bytes/connection: %s\n", tracker_ok ? "ok" : "MISSED");
  if (n >= 1'000'000) std::printf("target RSS < 400 MB at 1M connections: %s\n", rss_ok ? "ok" : "MISSED");

  // Tear down too, so a leak or a slow destructor shows up here.
  const auto wall1 = std::chrono::steady_clock::now();
  engine->finish(t0 + n + kMicrosPerSecond);
  engine.reset();
  std::printf("finish + teardown: %.2f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - wall1).count());
  return ok ? 0 : 1;
}
