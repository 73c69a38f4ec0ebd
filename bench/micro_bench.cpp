// mqttlive_micro_bench: one stage at a time (Google Benchmark).
//
//   mqttlive_micro_bench [--benchmark_filter=REGEX] [--benchmark_min_time=0.5]
//
// Stages: packet decode, flow table lookup, TCP reassembly (in order, out of
// order), MQTT decoder (whole buffers and 1-byte chunks), session tracker
// (PINGREQ with deadline re-arm, advanceTo over many timers) and the whole
// engine per frame on steady-state ping traffic.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "mqttlive/engine.h"
#include "mqttlive/flow_table.h"
#include "mqttlive/mqtt_decoder.h"
#include "mqttlive/mqtt_encoder.h"
#include "mqttlive/packet_decoder.h"
#include "mqttlive/pcap_writer.h"
#include "mqttlive/tcp_reassembly.h"
#include "mqttlive/tracker.h"
#include "synth.h"

using namespace mqttlive;

namespace {

constexpr Micros kT0 = 1'700'000'000LL * kMicrosPerSecond;

class NullEvents : public EventSink {
 public:
  void onEvent(const Event&) override { ++n; }
  uint64_t n = 0;
};

class CountingCallbacks : public MqttDecoderCallbacks {
 public:
  void onPacket(const MqttPacket& p) override {
    ++packets;
    benchmark::DoNotOptimize(p.type);
  }
  void onError(ParseError) override { ++errors; }
  uint64_t packets = 0, errors = 0;
};

class NullReassemblySink : public ReassemblySink {
 public:
  void onData(Micros, std::span<const uint8_t> b) override { bytes += b.size(); }
  void onGap(Micros, uint64_t, GapReason) override { ++gaps; }
  uint64_t bytes = 0, gaps = 0;
};

// ---- packet decode --------------------------------------------------------

void BM_PacketDecodeV4(benchmark::State& state) {
  bench::FrameBuilder fb;
  std::vector<uint8_t> frame(2048);
  std::vector<uint8_t> payload(static_cast<size_t>(state.range(0)), 0x30);
  const size_t n = fb.build(frame.data(), bench::clientEndpoint(1), bench::v4Endpoint(127, 0, 0, 1, 1883), 1, 1,
                            tcpflag::kAck | tcpflag::kPsh, payload.data(), payload.size(), 1);
  const std::span<const uint8_t> f(frame.data(), n);
  TcpSegment seg;
  for (auto _ : state) {
    benchmark::DoNotOptimize(decodePacket(dlt::kEthernet, f, seg));
    benchmark::DoNotOptimize(seg);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PacketDecodeV4)->Arg(0)->Arg(100);

void BM_PacketDecodeV6(benchmark::State& state) {
  Endpoint c, b;
  uint8_t a6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  c.ip = IpAddr::fromV6(a6);
  c.port = 40000;
  a6[15] = 1;
  b.ip = IpAddr::fromV6(a6);
  b.port = 1883;
  const auto frame = PcapWriter::buildFrame(dlt::kEthernet, c, b, 1, 1, tcpflag::kAck | tcpflag::kPsh,
                                            std::vector<uint8_t>(100, 0x30));
  TcpSegment seg;
  for (auto _ : state) {
    benchmark::DoNotOptimize(decodePacket(dlt::kEthernet, frame, seg));
    benchmark::DoNotOptimize(seg);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PacketDecodeV6);

// ---- flow table -----------------------------------------------------------

void BM_FlowTableFind(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  const Endpoint broker = bench::v4Endpoint(127, 0, 0, 1, 1883);
  std::vector<FlowKey> keys(n);
  FlowTable table;
  for (uint32_t i = 0; i < n; ++i) {
    keys[i] = FlowKey{bench::clientEndpoint(i), broker};
    table.insert(keys[i], i, keys);
  }
  // Random order: the lookups of a busy broker do not follow insertion order.
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  bench::Rng rng(7);
  for (uint32_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
  std::vector<FlowKey> probes(n);
  for (uint32_t i = 0; i < n; ++i) probes[i] = keys[order[i]];
  uint32_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(table.find(probes[i], keys));
    if (++i == n) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FlowTableFind)->Arg(1000)->Arg(100000)->Arg(1000000);

void BM_FlowKeyHash(benchmark::State& state) {
  FlowKey k{bench::clientEndpoint(12345), bench::v4Endpoint(127, 0, 0, 1, 1883)};
  for (auto _ : state) {
    benchmark::DoNotOptimize(hashFlowKey(k));
    k.client.port++;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FlowKeyHash);

// ---- TCP reassembly -------------------------------------------------------

constexpr uint32_t kSegBytes = 100;

void BM_ReassemblyInOrder(benchmark::State& state) {
  std::vector<uint8_t> data(kSegBytes, 0x42);
  NullReassemblySink sink;
  ReassemblyBudget budget;
  ReassemblyStats stats;
  StreamReassembler r;
  uint32_t seq = 1000;
  r.onSegment(kT0, seq - 1, true, false, {}, 0, sink, budget, 256 << 10, stats);
  Micros ts = kT0;
  for (auto _ : state) {
    r.onSegment(++ts, seq, false, false, data, kSegBytes, sink, budget, 256 << 10, stats);
    seq += kSegBytes;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kSegBytes);
}
BENCHMARK(BM_ReassemblyInOrder);

// Each pair of segments arrives swapped: the later one is buffered (copied),
// then the earlier one fills the hole and both are delivered.
void BM_ReassemblyOutOfOrder(benchmark::State& state) {
  std::vector<uint8_t> data(kSegBytes, 0x42);
  NullReassemblySink sink;
  ReassemblyBudget budget;
  ReassemblyStats stats;
  StreamReassembler r;
  uint32_t seq = 1000;
  r.onSegment(kT0, seq - 1, true, false, {}, 0, sink, budget, 256 << 10, stats);
  Micros ts = kT0;
  for (auto _ : state) {
    r.onSegment(++ts, seq + kSegBytes, false, false, data, kSegBytes, sink, budget, 256 << 10, stats);
    r.onSegment(++ts, seq, false, false, data, kSegBytes, sink, budget, 256 << 10, stats);
    seq += 2 * kSegBytes;
  }
  state.SetItemsProcessed(state.iterations() * 2);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * 2 * kSegBytes);
}
BENCHMARK(BM_ReassemblyOutOfOrder);

// ---- MQTT decoder ---------------------------------------------------------

struct MixedBuffer {
  std::vector<uint8_t> bytes;
  uint64_t packets = 0;
};

// What a broker's client-side decoder sees: mostly PUBLISH (QoS 0/1, small
// and a few large payloads), PUBACKs, PINGREQs, an occasional SUBSCRIBE.
MixedBuffer mixedClientTraffic(uint8_t level) {
  MixedBuffer m;
  bench::Rng rng(42);
  auto add = [&](const std::vector<uint8_t>& p) {
    m.bytes.insert(m.bytes.end(), p.begin(), p.end());
    ++m.packets;
  };
  ConnectSpec cs;
  cs.protocol_level = level;
  cs.client_id = "sensor-000123";
  add(encodeConnect(cs));
  uint16_t pid = 1;
  for (int i = 0; i < 2000; ++i) {
    const uint64_t k = rng.below(100);
    if (k < 55) {
      const size_t n = rng.chance(0.03) ? static_cast<size_t>(rng.range(1000, 4000))
                                        : static_cast<size_t>(rng.range(20, 200));
      const uint8_t qos = rng.chance(0.4) ? 1 : 0;
      add(encodePublish(level, "site/42/sensor-000123/telemetry", qos, qos ? pid++ : 0,
                        std::vector<uint8_t>(n, 0x61)));
    } else if (k < 80) {
      add(encodeAck(PacketType::kPuback, level, pid++));
    } else if (k < 98) {
      add(encodePingreq());
    } else {
      add(encodeSubscribe(level, pid++, {"cmd/sensor-000123/#"}, 1));
    }
  }
  return m;
}

void BM_DecoderWhole(benchmark::State& state) {
  const auto level = static_cast<uint8_t>(state.range(0));
  const MixedBuffer m = mixedClientTraffic(level);
  MqttDecoderLimits limits;
  CountingCallbacks cb;
  for (auto _ : state) {
    MqttDecoder d;
    d.feed(m.bytes, limits, cb);
  }
  if (cb.errors) state.SkipWithError("decoder reported errors");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * m.bytes.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * m.packets));
  state.counters["packets/s"] = benchmark::Counter(static_cast<double>(state.iterations() * m.packets),
                                                   benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecoderWhole)->Arg(kMqtt311)->Arg(kMqtt5);

// One packet per segment: the common case on the wire (each feed() is a
// complete packet, as TCP usually delivers small MQTT packets).
void BM_DecoderPerPacket(benchmark::State& state) {
  const MixedBuffer m = mixedClientTraffic(kMqtt311);
  // Re-split the buffer at packet boundaries.
  std::vector<std::span<const uint8_t>> pkts;
  {
    MqttDecoderLimits limits;
    size_t pos = 0;
    while (pos < m.bytes.size()) {
      size_t i = pos + 1;
      uint32_t rem = 0;
      int shift = 0;
      while (true) {
        const uint8_t b = m.bytes[i++];
        rem |= uint32_t{static_cast<uint8_t>(b & 0x7f)} << shift;
        shift += 7;
        if ((b & 0x80) == 0) break;
      }
      const size_t end = i + rem;
      pkts.emplace_back(m.bytes.data() + pos, end - pos);
      pos = end;
    }
    (void)limits;
  }
  MqttDecoderLimits limits;
  CountingCallbacks cb;
  for (auto _ : state) {
    MqttDecoder d;
    for (const auto& p : pkts) d.feed(p, limits, cb);
  }
  if (cb.errors) state.SkipWithError("decoder reported errors");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * m.bytes.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * m.packets));
  state.counters["packets/s"] = benchmark::Counter(static_cast<double>(state.iterations() * m.packets),
                                                   benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecoderPerPacket);

// Worst case for the head buffer: every byte its own chunk.
void BM_DecoderOneByteChunks(benchmark::State& state) {
  const MixedBuffer m = mixedClientTraffic(static_cast<uint8_t>(state.range(0)));
  MqttDecoderLimits limits;
  CountingCallbacks cb;
  for (auto _ : state) {
    MqttDecoder d;
    const uint8_t* p = m.bytes.data();
    for (size_t i = 0; i < m.bytes.size(); ++i) d.feed(std::span<const uint8_t>(p + i, 1), limits, cb);
  }
  if (cb.errors) state.SkipWithError("decoder reported errors");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * m.bytes.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * m.packets));
  state.counters["packets/s"] = benchmark::Counter(static_cast<double>(state.iterations() * m.packets),
                                                   benchmark::Counter::kIsRate);
}
BENCHMARK(BM_DecoderOneByteChunks)->Arg(kMqtt311)->Arg(kMqtt5);

// ---- session tracker ------------------------------------------------------

MqttPacket connectPacket(uint16_t keepalive, const std::string& id) {
  MqttPacket p;
  p.type = PacketType::kConnect;
  p.protocol_level = kMqtt311;
  p.keepalive = keepalive;
  p.client_id = id;
  return p;
}

// n connections with the given keepalive, CONNECTed and CONNACKed, their last
// activity spread evenly over `spread` before `now`.
void fillTracker(SessionTracker& t, uint32_t n, uint16_t keepalive, Micros spread, Micros now) {
  MqttPacket connack;
  connack.type = PacketType::kConnack;
  const Endpoint broker = bench::v4Endpoint(127, 0, 0, 1, 1883);
  char id[32];
  for (uint32_t i = 0; i < n; ++i) {
    const Micros ts = now - spread + spread * i / n;
    const ConnHandle h = t.open(ts, bench::clientEndpoint(i), broker, false);
    std::snprintf(id, sizeof(id), "sensor-%06u", i);
    t.onClientPacket(h, ts, connectPacket(keepalive, id));
    t.onBrokerPacket(h, ts, connack);
  }
}

// PINGREQ on connection after connection (round robin): the deadline moves to
// a new wheel bucket each time.
void BM_TrackerPingreq(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  NullEvents sink;
  TrackerConfig cfg;
  cfg.max_connections = std::max(cfg.max_connections, n);
  SessionTracker t(cfg, sink);
  Micros now = kT0;
  fillTracker(t, n, 60, 60 * kMicrosPerSecond, now);
  MqttPacket ping;
  ping.type = PacketType::kPingreq;
  uint32_t h = 0;
  for (auto _ : state) {
    t.onClientPacket(h, ++now, ping);
    if (++h == n) h = 0;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TrackerPingreq)->Arg(1000)->Arg(100000)->Arg(1000000);

// Steady state of n connections with keepalive K (seconds): each iteration is
// 1 ms of traffic, i.e. n/(K*1000) PINGREQs plus advanceTo(now). A healthy
// population: nothing expires, the wheel only moves.
void BM_TrackerAdvanceSteady(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  const auto ka = static_cast<uint16_t>(state.range(1));
  NullEvents sink;
  TrackerConfig cfg;
  cfg.max_connections = std::max(cfg.max_connections, n);
  SessionTracker t(cfg, sink);
  Micros now = kT0;
  fillTracker(t, n, ka, ka * kMicrosPerSecond, now);
  MqttPacket ping;
  ping.type = PacketType::kPingreq;
  // Walk the connections in order of their last activity: each is pinged one
  // keepalive after the previous ping, as real clients do.
  const double per_ms = static_cast<double>(n) / (ka * 1000.0);
  double owed = 0;
  uint32_t h = 0;
  for (auto _ : state) {
    now += 1000;
    owed += per_ms;
    while (owed >= 1) {
      t.onClientPacket(h, now, ping);
      if (++h == n) h = 0;
      owed -= 1;
    }
    t.advanceTo(now);
  }
  if (sink.n > n) state.SkipWithError("connections expired in the steady state");
  state.SetItemsProcessed(state.iterations());
  state.SetLabel("items = 1 ms of traffic");
}
BENCHMARK(BM_TrackerAdvanceSteady)->Args({100000, 60})->Args({1000000, 60})->Args({1000000, 600});

// Many timers, none of them due: advanceTo every 20 us (a packet at 50k pps).
// With keepalive 600 the 900 s deadlines are past the wheel's 268 s horizon,
// so every bucket holds timers from later laps.
void BM_TrackerAdvanceIdle(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  const auto ka = static_cast<uint16_t>(state.range(1));
  NullEvents sink;
  TrackerConfig cfg;
  cfg.max_connections = std::max(cfg.max_connections, n);
  SessionTracker t(cfg, sink);
  Micros now = kT0;
  // Activity spread over a minute, so deadlines are a minute wide too.
  fillTracker(t, n, ka, 60 * kMicrosPerSecond, now);
  // Earliest deadline: 1.5 x keepalive after the oldest activity (60 s ago).
  const Micros stop = now + static_cast<Micros>(ka) * 3 * kMicrosPerSecond / 2 - 62 * kMicrosPerSecond;
  for (auto _ : state) {
    now += 20;
    if (now >= stop) now = stop;  // never reach a deadline
    t.advanceTo(now);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TrackerAdvanceIdle)->Args({100000, 60})->Args({1000000, 60})->Args({1000000, 600});

// Deadlines firing: n connections all silent, time moves 1 ms per call and
// connections expire as their deadlines pass (keepalive_expired events).
void BM_TrackerAdvanceExpiring(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  NullEvents sink;
  TrackerConfig cfg;
  cfg.max_connections = std::max(cfg.max_connections, n);
  Micros now = kT0;
  uint64_t expired = 0;
  auto t = std::make_unique<SessionTracker>(cfg, sink);
  // 60 s keepalive, activity over 60 s: deadlines from 30 s to 90 s from now.
  fillTracker(*t, n, 60, 60 * kMicrosPerSecond, now);
  Micros end = now + 90 * kMicrosPerSecond;
  for (auto _ : state) {
    now += 1000;
    if (now > end) {
      state.PauseTiming();
      expired += t->stats().keepalive_expired;
      t = std::make_unique<SessionTracker>(cfg, sink);
      now = kT0;
      fillTracker(*t, n, 60, 60 * kMicrosPerSecond, now);
      state.ResumeTiming();
    }
    t->advanceTo(now);
  }
  expired += t->stats().keepalive_expired;
  state.SetItemsProcessed(state.iterations());
  state.counters["expired/s"] = benchmark::Counter(static_cast<double>(expired), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_TrackerAdvanceExpiring)->Arg(100000);

// ---- whole engine per frame ---------------------------------------------

// n established connections; frames cycle PINGREQ, PINGRESP, ACK through
// them. Sequence numbers are patched in place so every segment is new data.
void BM_EnginePingTraffic(benchmark::State& state) {
  const auto n = static_cast<uint32_t>(state.range(0));
  NullEvents sink;
  EngineConfig cfg;
  cfg.max_flows = std::max(cfg.max_flows, n);
  cfg.tracker.max_connections = std::max(cfg.tracker.max_connections, n);
  Engine engine(cfg, sink);
  const Endpoint broker = bench::v4Endpoint(127, 0, 0, 1, 1883);
  bench::FrameBuilder fb;
  struct Conn {
    uint32_t cseq, bseq;
    std::vector<uint8_t> req, resp, ack;
  };
  std::vector<Conn> conns(n);
  std::vector<uint8_t> buf(256);
  Micros now = kT0;
  const auto pingreq = encodePingreq();
  const auto pingresp = encodePingresp();
  for (uint32_t i = 0; i < n; ++i) {
    const Endpoint c = bench::clientEndpoint(i);
    Conn& k = conns[i];
    k.cseq = 1000 + i;
    k.bseq = 9000 + i;
    auto emit = [&](const Endpoint& s, const Endpoint& d, uint32_t seq, uint32_t ack, uint8_t fl,
                    const std::vector<uint8_t>& pl) {
      const size_t len = fb.build(buf.data(), s, d, seq, ack, fl, pl.data(), pl.size(), 1);
      engine.onFrame(now, dlt::kEthernet, std::span<const uint8_t>(buf.data(), len));
    };
    ConnectSpec cs;
    cs.client_id = "sensor-" + std::to_string(i);
    const auto connect = encodeConnect(cs);
    emit(c, broker, k.cseq++, 0, tcpflag::kSyn, {});
    emit(broker, c, k.bseq++, k.cseq, tcpflag::kSyn | tcpflag::kAck, {});
    emit(c, broker, k.cseq, k.bseq, tcpflag::kAck | tcpflag::kPsh, connect);
    k.cseq += static_cast<uint32_t>(connect.size());
    const auto connack = encodeConnack(ConnackSpec{});
    emit(broker, c, k.bseq, k.cseq, tcpflag::kAck | tcpflag::kPsh, connack);
    k.bseq += static_cast<uint32_t>(connack.size());
    auto make = [&](const Endpoint& s, const Endpoint& d, uint8_t fl, const std::vector<uint8_t>& pl) {
      const size_t len = fb.build(buf.data(), s, d, 0, 0, fl, pl.data(), pl.size(), 1);
      return std::vector<uint8_t>(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(len));
    };
    k.req = make(c, broker, tcpflag::kAck | tcpflag::kPsh, pingreq);
    k.resp = make(broker, c, tcpflag::kAck | tcpflag::kPsh, pingresp);
    k.ack = make(c, broker, tcpflag::kAck, {});
    now += 1;
  }
  auto patch = [](std::vector<uint8_t>& f, uint32_t seq, uint32_t ack) {
    uint8_t* t = f.data() + 14 + 20;
    t[4] = static_cast<uint8_t>(seq >> 24), t[5] = static_cast<uint8_t>(seq >> 16);
    t[6] = static_cast<uint8_t>(seq >> 8), t[7] = static_cast<uint8_t>(seq);
    t[8] = static_cast<uint8_t>(ack >> 24), t[9] = static_cast<uint8_t>(ack >> 16);
    t[10] = static_cast<uint8_t>(ack >> 8), t[11] = static_cast<uint8_t>(ack);
  };
  uint32_t i = 0;
  for (auto _ : state) {
    Conn& k = conns[i];
    patch(k.req, k.cseq, k.bseq);
    engine.onFrame(++now, dlt::kEthernet, k.req);
    k.cseq += 2;
    patch(k.resp, k.bseq, k.cseq);
    engine.onFrame(++now, dlt::kEthernet, k.resp);
    k.bseq += 2;
    patch(k.ack, k.cseq, k.bseq);
    engine.onFrame(++now, dlt::kEthernet, k.ack);
    if (++i == n) i = 0;
  }
  if (engine.tracker().openCount() != n) state.SkipWithError("connections lost");
  state.SetItemsProcessed(state.iterations() * 3);
  state.SetLabel("items = frames");
}
BENCHMARK(BM_EnginePingTraffic)->Arg(1000)->Arg(100000);

}  // namespace

BENCHMARK_MAIN();
