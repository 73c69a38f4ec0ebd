// Bounded resources under attack, and regressions for what fuzzing found.
// Frames go straight into Engine::onFrame (PcapWriter::buildFrame), so each
// test can check the limits after every step, not just at the end.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "mqttlive/engine.h"
#include "mqttlive/mqtt_encoder.h"
#include "mqttlive/offline_runner.h"
#include "mqttlive/packet_decoder.h"
#include "mqttlive/pcap_writer.h"
#include "support/capture_run.h"
#include "support/recording_sink.h"

namespace mqttlive {
namespace {

using namespace mqttlive::testing;
constexpr Micros kS = kMicrosPerSecond;
constexpr Micros kT0 = 1'700'000'000 * kS;
constexpr uint8_t kAckPsh = tcpflag::kAck | tcpflag::kPsh;

ConnectSpec spec(const std::string& id, uint16_t keepalive) {
  ConnectSpec s;
  s.client_id = id;
  s.keepalive = keepalive;
  return s;
}

// An engine with a recording sink and helpers that build frames.
struct Rig {
  explicit Rig(const EngineConfig& cfg = EngineConfig{}) : engine(cfg, sink) {}
  void send(Micros ts, const Endpoint& src, const Endpoint& dst, uint32_t seq, uint32_t ack, uint8_t flags,
            const std::vector<uint8_t>& payload = {}) {
    engine.onFrame(ts, dlt::kEthernet, PcapWriter::buildFrame(dlt::kEthernet, src, dst, seq, ack, flags, payload));
  }
  uint64_t parseErrors(ParseError e) const { return engine.stats().parse_errors[static_cast<int>(e)]; }
  uint64_t evicted(EvictReason r) const { return engine.stats().flows_evicted[static_cast<int>(r)]; }
  uint64_t gaps(GapReason r) const { return engine.stats().gaps_by_reason[static_cast<int>(r)]; }
  uint64_t clientPackets(PacketType t) const { return engine.stats().mqtt_packets[0][static_cast<int>(t)]; }
  std::vector<std::string> events(const std::string& type) const { return eventsOf(sink.lines, type); }

  RecordingSink sink;
  Engine engine;
};

// A client connection driven frame by frame, keeping both sequence numbers.
struct Client {
  Rig& rig;
  Endpoint c, b;
  uint32_t cseq = 1000, bseq = 9000;
  void handshake(Micros ts) {
    rig.send(ts, c, b, cseq++, 0, tcpflag::kSyn);
    rig.send(ts + 10, b, c, bseq++, cseq, tcpflag::kSyn | tcpflag::kAck);
    rig.send(ts + 20, c, b, cseq, bseq, tcpflag::kAck);
  }
  void toBroker(Micros ts, const std::vector<uint8_t>& bytes) {
    rig.send(ts, c, b, cseq, bseq, kAckPsh, bytes);
    cseq += static_cast<uint32_t>(bytes.size());
  }
  void toClient(Micros ts, const std::vector<uint8_t>& bytes) {
    rig.send(ts, b, c, bseq, cseq, kAckPsh, bytes);
    bseq += static_cast<uint32_t>(bytes.size());
  }
  void connect(Micros ts, const std::string& id, uint16_t keepalive) {
    handshake(ts);
    toBroker(ts + 100, encodeConnect(spec(id, keepalive)));
    toClient(ts + 200, encodeConnack(ConnackSpec{}));
  }
};

Endpoint flooder(uint32_t i) {
  const uint8_t a[4] = {172, 16, static_cast<uint8_t>(i >> 16), static_cast<uint8_t>(i >> 8)};
  return Endpoint{IpAddr::fromV4(a), static_cast<uint16_t>(1024 + (i & 0xff) * 200 + (i >> 24))};
}

// ---- regressions found by fuzz_pipeline --------------------------------------

// A reload that shortens close_settle used to leave the settle queue out of
// deadline order; Engine::finish() then looped forever on it.
TEST(Hardening, SettleQueueStaysOrderedWhenCloseSettleShrinks) {
  EngineConfig cfg;
  cfg.close_settle = 10 * kS;
  Rig rig(cfg);
  Client a{rig, v4("10.0.0.2", 40000), v4("10.0.0.1", 1883)};
  Client b{rig, v4("10.0.0.3", 40001), v4("10.0.0.1", 1883)};
  a.connect(kT0, "a", 60);
  b.connect(kT0, "b", 60);
  rig.send(kT0 + 1 * kS, a.c, a.b, a.cseq, a.bseq, tcpflag::kFin | tcpflag::kAck);  // settles at +11 s
  cfg.close_settle = 1 * kS;
  rig.engine.reconfigure(cfg);
  rig.send(kT0 + 2 * kS, b.c, b.b, b.cseq, b.bseq, tcpflag::kFin | tcpflag::kAck);  // would settle at +3 s
  rig.engine.advanceTo(kT0 + 5 * kS);
  // b waits for a's earlier-queued deadline rather than overtaking it.
  EXPECT_EQ(rig.events("closed").size(), 0u);
  rig.engine.finish(kT0 + 5 * kS);  // returned: no endless loop
  EXPECT_EQ(rig.events("closed").size(), 2u);
  EXPECT_EQ(rig.engine.openFlows(), 0u);
}

TEST(Hardening, FinishReturnsWithUnorderedCloseTimestamps) {
  Rig rig;
  Client a{rig, v4("10.0.0.2", 40000), v4("10.0.0.1", 1883)};
  Client b{rig, v4("10.0.0.3", 40001), v4("10.0.0.1", 1883)};
  a.connect(kT0, "a", 60);
  b.connect(kT0, "b", 60);
  rig.send(kT0 + 9 * kS, a.c, a.b, a.cseq, a.bseq, tcpflag::kFin | tcpflag::kAck);
  // A caller handing the engine an earlier time (interfaces interleaving).
  rig.send(kT0 + 5 * kS, b.c, b.b, b.cseq, b.bseq, tcpflag::kFin | tcpflag::kAck);
  rig.engine.finish(kT0 + 9 * kS);
  EXPECT_EQ(rig.events("closed").size(), 2u);
}

// A flow slot's generation used to reset to 1 on every reuse, so the settle
// entry of a connection that had closed on both FINs could settle the slot's
// next-but-one occupant early, before its client answered the broker's FIN.
TEST(Hardening, StaleSettleEntryDoesNotCloseTheSlotsNextConnection) {
  Rig rig;
  const Endpoint br = v4("10.0.0.1", 1883);
  Client a{rig, v4("10.0.0.2", 40000), br};
  a.connect(kT0, "a", 60);
  rig.send(kT0 + 1 * kS, a.c, a.b, a.cseq, a.bseq, tcpflag::kRst | tcpflag::kAck);  // slot freed (gen 1)
  Client b{rig, v4("10.0.0.3", 40001), br};
  b.connect(kT0 + 2 * kS, "b", 60);  // reuses the slot
  // Client FIN (queued to settle at +5 s), broker FIN right after: settled at once.
  rig.send(kT0 + 3 * kS, b.c, b.b, b.cseq++, b.bseq, tcpflag::kFin | tcpflag::kAck);
  rig.send(kT0 + 3 * kS + 10, b.b, b.c, b.bseq++, b.cseq, tcpflag::kFin | tcpflag::kAck);
  Client c{rig, v4("10.0.0.4", 40002), br};
  c.connect(kT0 + 4 * kS, "c", 60);  // reuses the slot again
  // The broker closes c at +4.5 s; c's client answers at +6 s, inside c's own
  // settle window (+6.5 s) but after b's stale entry (+5 s).
  rig.send(kT0 + 4 * kS + 500'000, c.b, c.c, c.bseq++, c.cseq, tcpflag::kFin | tcpflag::kAck);
  rig.send(kT0 + 6 * kS, c.c, c.b, c.cseq++, c.bseq, tcpflag::kFin | tcpflag::kAck);
  rig.engine.finish(kT0 + 10 * kS);
  auto closed = rig.events("closed");
  ASSERT_EQ(closed.size(), 3u);
  EXPECT_EQ(field(closed[2], "client_id"), "\"c\"");
  EXPECT_EQ(field(closed[2], "client_tcp"), "\"responsive\"") << closed[2];
  EXPECT_EQ(rig.engine.stats().late_segments, 0u);
}

// ---- bounded resources under attack -------------------------------------------

TEST(Hardening, SynFloodIsCappedAndALegitimateConnectionIsStillJudged) {
  EngineConfig cfg;
  cfg.max_flows = 10'000;
  cfg.tracker.max_connections = 10'000;
  Rig rig(cfg);
  Client legit{rig, v4("10.0.0.2", 40000), v4("10.0.0.1", 1883)};
  legit.connect(kT0, "legit", 10);
  const Endpoint br = v4("10.0.0.1", 1883);
  constexpr uint32_t kFlood = 200'000;
  size_t max_open = 0;
  for (uint32_t i = 0; i < kFlood; ++i) {
    const Micros ts = kT0 + kS + i * 20;  // 200k SYNs over 4 s
    rig.send(ts, flooder(i), br, i * 7919u, 0, tcpflag::kSyn);
    max_open = std::max(max_open, rig.engine.openFlows());
    if (i == kFlood / 2) legit.toBroker(ts, encodePingreq());  // in the middle of the flood
  }
  EXPECT_LE(max_open, cfg.max_flows);
  EXPECT_EQ(rig.engine.openFlows(), cfg.max_flows);
  EXPECT_EQ(rig.evicted(EvictReason::kTableFull), kFlood - (cfg.max_flows - 1));
  EXPECT_EQ(rig.engine.stats().tcp_flows, cfg.max_flows);
  EXPECT_EQ(rig.clientPackets(PacketType::kPingreq), 1u);
  // The ping at +3 s moved the deadline to +3 s + 15 s.
  const Micros ping_ts = kT0 + kS + (kFlood / 2) * 20;
  rig.engine.advanceTo(ping_ts + 16 * kS);
  auto exp = rig.events("keepalive_expired");
  ASSERT_EQ(exp.size(), 1u);
  EXPECT_EQ(field(exp[0], "client_id"), "\"legit\"");
  EXPECT_EQ(rig.sink.ts[rig.sink.first(EventType::kKeepaliveExpired)], ping_ts + 15 * kS);
  // Flow table + tracker for 10k flows: a few MB, not a function of the flood.
  EXPECT_LT(rig.engine.memoryBytes(), 64u << 20);
}

TEST(Hardening, IdleFlowTimeoutFreesSlotsHeldByAFlood) {
  EngineConfig cfg;
  cfg.max_flows = 1000;
  cfg.tracker.max_connections = 1000;
  cfg.idle_flow_timeout = 30 * kS;
  Rig rig(cfg);
  Client legit{rig, v4("10.0.0.2", 40000), v4("10.0.0.1", 1883)};
  legit.connect(kT0, "legit", 0);  // keepalive 0: silent for hours, and must stay
  const Endpoint br = v4("10.0.0.1", 1883);
  for (uint32_t i = 0; i < 5000; ++i) {
    rig.send(kT0 + kS + i, flooder(i), br, i, 0, tcpflag::kSyn);
    // Data that never decodes as MQTT holds a slot just the same.
    if (i == 500) rig.send(kT0 + kS + i, flooder(999'999), br, 1, 0, kAckPsh, std::vector<uint8_t>(100, 0x00));
  }
  EXPECT_EQ(rig.engine.openFlows(), 1000u);
  EXPECT_EQ(rig.evicted(EvictReason::kTableFull), 5000u - 998u);
  rig.engine.advanceTo(kT0 + 30 * kS + 900'000);  // 29.9 s after the first of them
  EXPECT_EQ(rig.engine.openFlows(), 1000u);
  EXPECT_EQ(rig.evicted(EvictReason::kIdleTimeout), 0u);
  rig.engine.advanceTo(kT0 + 31 * kS + 10'000);  // 30 s after the last of them
  EXPECT_EQ(rig.engine.openFlows(), 1u);
  EXPECT_EQ(rig.evicted(EvictReason::kIdleTimeout), 999u);
  EXPECT_EQ(rig.engine.tracker().openCount(), 1u);
  // Room again for new connections; the quiet MQTT session is still judged.
  Client late{rig, v4("10.0.0.9", 40009), br};
  late.connect(kT0 + 40 * kS, "late", 10);
  EXPECT_EQ(rig.events("connected").size(), 2u);
  rig.engine.advanceTo(kT0 + 3600 * kS);
  EXPECT_EQ(rig.engine.openFlows(), 2u);
  EXPECT_TRUE(rig.events("closed").empty());  // evictions are silent: never MQTT
  rig.engine.finish(kT0 + 3600 * kS);
  EXPECT_EQ(rig.events("open_at_end").size(), 2u);
}

TEST(Hardening, HugeRemainingLengthIsSkippedWithoutBuffering) {
  Rig rig;
  Client evil{rig, v4("10.0.0.66", 40066), v4("10.0.0.1", 1883)};
  Client good{rig, v4("10.0.0.2", 40000), v4("10.0.0.1", 1883)};
  evil.connect(kT0, "evil", 60);
  good.connect(kT0, "good", 10);
  const size_t base = rig.engine.memoryBytes();
  // PUBLISH announcing 268,435,455 bytes (the largest encodable, 256 MB), then junk.
  std::vector<uint8_t> head = {0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x01, 't'};
  evil.toBroker(kT0 + kS, head);
  std::mt19937 rng(7);
  std::vector<uint8_t> junk(1400);
  for (int i = 0; i < 2000; ++i) {  // 2.8 MB of it
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    evil.toBroker(kT0 + kS + i * 100, junk);
    if (i % 500 == 0) good.toBroker(kT0 + kS + i * 100 + 1, encodePingreq());
  }
  EXPECT_EQ(rig.parseErrors(ParseError::kPacketTooLarge), 1u);
  EXPECT_EQ(rig.clientPackets(PacketType::kPingreq), 4u);
  EXPECT_LT(rig.engine.memoryBytes(), base + 64 * 1024) << "memory grew with the announced size";
  EXPECT_EQ(rig.engine.bufferedBytes(), 0u);
  EXPECT_TRUE(rig.events("keepalive_expired").empty());
}

TEST(Hardening, EndlessOutOfOrderSegmentsStayWithinBothBudgets) {
  EngineConfig cfg;
  cfg.flow_buffer_bytes = 64 * 1024;
  cfg.total_buffer_bytes = 160 * 1024;
  Rig rig(cfg);
  const Endpoint br = v4("10.0.0.1", 1883);
  std::vector<Client> clients;
  for (uint16_t i = 0; i < 4; ++i) {
    clients.push_back(Client{rig, v4("10.0.0.2", static_cast<uint16_t>(40000 + i)), br});
    clients.back().connect(kT0, "ooo" + std::to_string(i), 60);
  }
  std::vector<uint8_t> seg(1000, 'x');
  // Every segment lies past a fresh 500-byte hole that never fills; no ACK
  // ever covers a hole (that would give it up as not captured instead).
  std::vector<uint32_t> next(clients.size());
  for (size_t k = 0; k < clients.size(); ++k) next[k] = clients[k].cseq + 500;
  auto sendNext = [&](size_t k, Micros ts) {
    rig.send(ts, clients[k].c, clients[k].b, next[k], 0, tcpflag::kPsh, seg);
    next[k] += 1500;
  };
  // One flow alone runs into its own cap.
  for (int i = 0; i < 200; ++i) {
    sendNext(0, kT0 + kS + i);
    ASSERT_LE(rig.engine.bufferedBytes(), cfg.flow_buffer_bytes);
  }
  EXPECT_GT(rig.gaps(GapReason::kFlowBufferFull), 0u);
  EXPECT_EQ(rig.gaps(GapReason::kGlobalBufferFull), 0u);
  // All of them together run into the global budget.
  for (int round = 0; round < 400; ++round) {
    for (size_t k = 0; k < clients.size(); ++k) {
      sendNext(k, kT0 + 2 * kS + round * 1000);
      ASSERT_LE(rig.engine.bufferedBytes(), cfg.total_buffer_bytes);
    }
  }
  EXPECT_GT(rig.gaps(GapReason::kFlowBufferFull), 0u);
  EXPECT_GT(rig.gaps(GapReason::kGlobalBufferFull), 0u);
  rig.engine.finish(kT0 + 10 * kS);
  EXPECT_EQ(rig.engine.bufferedBytes(), 0u);
}

TEST(Hardening, OneFlowNeverBuffersMoreThanItsCap) {
  EngineConfig cfg;
  cfg.flow_buffer_bytes = 32 * 1024;
  Rig rig(cfg);
  Client c{rig, v4("10.0.0.2", 40000), v4("10.0.0.1", 1883)};
  c.connect(kT0, "ooo", 60);
  std::mt19937 rng(3);
  for (int i = 0; i < 5000; ++i) {
    const uint32_t off = 1 + rng() % (1u << 20);  // anywhere ahead, never at the hole
    rig.send(kT0 + kS + i, c.c, c.b, c.cseq + off, 0, tcpflag::kPsh,
             std::vector<uint8_t>(1 + rng() % 1400, 'y'));
    ASSERT_LE(rig.engine.bufferedBytes(), cfg.flow_buffer_bytes) << "after segment " << i;
  }
  EXPECT_GT(rig.gaps(GapReason::kFlowBufferFull), 0u);
}

TEST(Hardening, GarbageOnTheBrokerPortIsCountedAndHarmless) {
  Rig rig;
  const Endpoint br = v4("10.0.0.1", 1883);
  Client good{rig, v4("10.0.0.2", 40000), br};
  good.connect(kT0, "good", 5);
  Client junky{rig, v4("10.0.0.3", 40001), br};
  junky.connect(kT0, "junky", 60);
  std::mt19937 rng(11);
  for (int i = 0; i < 3000; ++i) {
    std::vector<uint8_t> junk(1 + rng() % 600);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    const Micros ts = kT0 + kS + i * 1000;
    if (i % 3 == 0) {
      junky.toBroker(ts, junk);  // on an established session
    } else {
      // Midstream "connections" from random sources, some with random flags.
      const uint8_t flags = static_cast<uint8_t>(i % 7 == 0 ? rng() : kAckPsh);
      rig.send(ts, flooder(static_cast<uint32_t>(rng())), br, static_cast<uint32_t>(rng()),
               static_cast<uint32_t>(rng()), flags, junk);
    }
    if (i % 1000 == 999) good.toBroker(ts, encodePingreq());
  }
  uint64_t errors = 0;
  for (int e = 0; e < static_cast<int>(ParseError::kCount); ++e) errors += rig.engine.stats().parse_errors[e];
  EXPECT_GT(errors, 100u);
  EXPECT_EQ(rig.events("connected").size(), 2u);
  // The good client's last ping was at +3.999 s; deadline 7.5 s later.
  rig.engine.advanceTo(kT0 + 20 * kS);
  std::vector<std::string> expired;
  for (const auto& l : rig.events("keepalive_expired"))
    if (field(l, "client_id") == "\"good\"") expired.push_back(l);
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(field(expired[0], "ts"), "1700000011.499000");
  rig.engine.finish(kT0 + 20 * kS);
  EXPECT_EQ(rig.engine.bufferedBytes(), 0u);
}

// ---- damaged capture files ----------------------------------------------------

struct OfflineOutcome {
  bool ok = false;
  OfflineResult result;
  double seconds = 0;
};

OfflineOutcome runBytes(const std::vector<uint8_t>& bytes) {
  char name[] = "/tmp/mqttlive-hardening-XXXXXX";
  int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  if (!bytes.empty()) EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  close(fd);
  OfflineOutcome o;
  std::FILE* out = std::fopen("/dev/null", "w");
  const auto t0 = std::chrono::steady_clock::now();
  o.ok = runOffline(name, EngineConfig{}, out, ~0u, o.result);
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fclose(out);
  unlink(name);
  return o;
}

std::vector<uint8_t> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Offsets where a classic (little-endian) pcap file's records start.
std::vector<size_t> recordStarts(const std::vector<uint8_t>& f) {
  std::vector<size_t> starts;
  size_t pos = 24;
  while (pos + 16 <= f.size()) {
    starts.push_back(pos);
    const uint32_t caplen = f[pos + 8] | (f[pos + 9] << 8) | (f[pos + 10] << 16) | (uint32_t{f[pos + 11]} << 24);
    pos += 16 + caplen;
  }
  starts.push_back(pos);
  return starts;
}

TEST(Hardening, TruncatedCapturesEndCleanly) {
  const auto file = readFile(std::string(MQTTLIVE_CAPTURES_DIR) + "/suricata-verify_mqtt-midstream-split.pcap");
  ASSERT_GT(file.size(), 10000u);
  ASSERT_EQ(file[0], 0xd4);  // little-endian microsecond pcap
  const auto starts = recordStarts(file);
  int cuts = 0;
  for (size_t cut = 0; cut < file.size(); cut += 97) {
    const std::vector<uint8_t> part(file.begin(), file.begin() + static_cast<long>(cut));
    const OfflineOutcome o = runBytes(part);
    ++cuts;
    EXPECT_LT(o.seconds, 5.0) << "cut at " << cut;
    if (cut < 24) {
      EXPECT_FALSE(o.ok) << "cut at " << cut;  // not even a file header
      EXPECT_FALSE(o.result.error.empty());
      continue;
    }
    ASSERT_TRUE(o.ok) << "cut at " << cut << ": " << o.result.error;
    const bool on_boundary = std::find(starts.begin(), starts.end(), cut) != starts.end();
    EXPECT_EQ(o.result.read_error, !on_boundary) << "cut at " << cut << ": " << o.result.error;
  }
  EXPECT_GT(cuts, 300);
}

TEST(Hardening, CorruptCaptureHeadersEndCleanly) {
  const std::string dir = MQTTLIVE_CAPTURES_DIR;
  std::mt19937 rng(2024);
  for (const char* name : {"suricata-verify_mqtt311-pub-qos1.pcap", "peafowl_mqtt-1.pcapng", "zeek_mqtt.pcap"}) {
    const auto file = readFile(dir + "/" + name);
    ASSERT_GT(file.size(), 100u) << name;
    for (int round = 0; round < 300; ++round) {
      auto bytes = file;
      // Flip 1-4 bytes in the file header and the first record header(s).
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) bytes[rng() % std::min<size_t>(bytes.size(), 72)] ^= static_cast<uint8_t>(1 + rng() % 255);
      const OfflineOutcome o = runBytes(bytes);
      EXPECT_LT(o.seconds, 5.0) << name << " round " << round;
      if (!o.ok) EXPECT_FALSE(o.result.error.empty()) << name << " round " << round;
    }
  }
}

}  // namespace
}  // namespace mqttlive
