// Engine::onFrames (batched frames with a look-ahead) must give exactly what
// onFrame gives frame by frame: same events in the same order, same
// observations, same statistics. The look-ahead reads flow and tracker state
// of frames not yet processed, so the scenarios interleave many connections
// that open, take over, reorder, reset and close inside one batch.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "mqttlive/capture.h"
#include "mqttlive/engine.h"
#include "mqttlive/mqtt_encoder.h"
#include "mqttlive/packet_decoder.h"
#include "mqttlive/pcap_writer.h"
#include "support/capture_run.h"
#include "support/recording_sink.h"

namespace mqttlive {
namespace {

using testing::RecordingSink;
constexpr Micros kS = kMicrosPerSecond;
constexpr Micros kT0 = 1'700'000'000 * kS;

struct Frame {
  Micros ts;
  std::vector<uint8_t> bytes;
};

struct Result {
  RecordingSink sink;
  EngineStats stats;
};

// chunk 0: onFrame for each frame; otherwise onFrames in chunks of that size.
void run(int link, const std::vector<Frame>& frames, size_t chunk, Result& r) {
  EngineConfig cfg;
  Engine engine(cfg, r.sink);
  if (chunk == 0) {
    for (const Frame& f : frames) engine.onFrame(f.ts, link, f.bytes);
  } else {
    std::vector<Engine::Frame> batch;
    for (size_t i = 0; i < frames.size(); i += chunk) {
      batch.clear();
      for (size_t j = i; j < std::min(frames.size(), i + chunk); ++j)
        batch.push_back({frames[j].ts, frames[j].bytes});
      engine.onFrames(link, batch);
    }
  }
  engine.finish(frames.empty() ? kT0 : frames.back().ts + 1);
  r.stats = engine.stats();
}

// Through FrameBatcher, as the capture loops feed the engine: frames copied
// (libpcap's) or left in place (the savefile reader's; here the vector holds them).
void runBatcher(int link, const std::vector<Frame>& frames, bool in_place, Result& r) {
  EngineConfig cfg;
  Engine engine(cfg, r.sink);
  FrameBatcher batch(engine, link);
  for (const Frame& f : frames) {
    if (in_place) {
      batch.addInPlace(f.ts, f.bytes);
    } else {
      batch.add(f.ts, f.bytes);
    }
  }
  batch.flush();
  engine.finish(frames.empty() ? kT0 : frames.back().ts + 1);
  r.stats = engine.stats();
}

void expectSameResult(const Result& b, const Result& one) {
  EXPECT_EQ(b.sink.lines, one.sink.lines);
  EXPECT_EQ(b.sink.rtts, one.sink.rtts);
  EXPECT_EQ(b.sink.delays, one.sink.delays);
  ASSERT_EQ(b.sink.acks.size(), one.sink.acks.size());
  for (size_t i = 0; i < one.sink.acks.size(); ++i)
    EXPECT_EQ(b.sink.acks[i].latency, one.sink.acks[i].latency);
  EXPECT_EQ(b.stats.packets, one.stats.packets);
  EXPECT_EQ(b.stats.bytes, one.stats.bytes);
  EXPECT_EQ(b.stats.not_broker_port, one.stats.not_broker_port);
  EXPECT_EQ(b.stats.tcp_flows, one.stats.tcp_flows);
  EXPECT_EQ(b.stats.gaps, one.stats.gaps);
  EXPECT_EQ(b.stats.late_segments, one.stats.late_segments);
  for (int i = 0; i < static_cast<int>(DecodeStatus::kCount); ++i)
    EXPECT_EQ(b.stats.decode_status[i], one.stats.decode_status[i]);
  for (int s = 0; s < 2; ++s)
    for (int t = 0; t < kPacketTypeCount; ++t)
      EXPECT_EQ(b.stats.mqtt_packets[s][t], one.stats.mqtt_packets[s][t]);
}

void expectSame(int link, const std::vector<Frame>& frames, const std::string& what) {
  Result one;
  run(link, frames, 0, one);
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{64}, size_t{100000}}) {
    Result b;
    run(link, frames, chunk, b);
    SCOPED_TRACE(what + ", chunks of " + std::to_string(chunk));
    expectSameResult(b, one);
  }
}

// `kClients` (300) clients in round-robin: handshake, CONNECT, CONNACK, pings, QoS 1
// publishes, reordered segments, takeovers (every 7th reuses an earlier id),
// resets, FINs, silent ones that expire, and traffic of another port.
std::vector<Frame> interleaved(int kClients = 300) {
  const Endpoint broker = testing::v4("10.9.0.1", 1883);
  struct C {
    Endpoint ep;
    uint32_t cseq, bseq;
  };
  std::vector<C> cs;
  for (int i = 0; i < kClients; ++i) {
    const std::string ip = "10.9." + std::to_string(1 + i / 200) + "." + std::to_string(2 + i % 200);
    cs.push_back({testing::v4(ip.c_str(), static_cast<uint16_t>(40000 + i)), 1000u + 77u * i, 9000u + 31u * i});
  }
  std::vector<Frame> out;
  Micros ts = kT0;
  auto add = [&](const Endpoint& src, const Endpoint& dst, uint32_t seq, uint32_t ack, uint8_t flags,
                 const std::vector<uint8_t>& payload) {
    ts += 3;
    out.push_back({ts, PcapWriter::buildFrame(dlt::kEthernet, src, dst, seq, ack, flags, payload)});
  };
  auto client = [&](C& c, const std::vector<uint8_t>& p, uint8_t extra = 0) {
    add(c.ep, broker, c.cseq, c.bseq, tcpflag::kAck | tcpflag::kPsh | extra, p);
    c.cseq += static_cast<uint32_t>(p.size());
  };
  auto brokerSays = [&](C& c, const std::vector<uint8_t>& p, uint8_t extra = 0) {
    add(broker, c.ep, c.bseq, c.cseq, tcpflag::kAck | tcpflag::kPsh | extra, p);
    c.bseq += static_cast<uint32_t>(p.size());
  };
  for (auto& c : cs) add(c.ep, broker, c.cseq++, 0, tcpflag::kSyn, {});
  for (auto& c : cs) add(broker, c.ep, c.bseq++, c.cseq, tcpflag::kSyn | tcpflag::kAck, {});
  for (int i = 0; i < kClients; ++i) {
    ConnectSpec s;
    s.client_id = "dev-" + std::to_string(i % 7 == 6 ? i - 3 : i);
    s.keepalive = static_cast<uint16_t>(i % 5 == 0 ? 2 : 30);
    s.protocol_level = i % 3 == 0 ? kMqtt5 : kMqtt311;
    client(cs[i], encodeConnect(s));
  }
  for (int i = 0; i < kClients; ++i) {
    ConnackSpec a;
    a.protocol_level = i % 3 == 0 ? kMqtt5 : kMqtt311;
    brokerSays(cs[i], encodeConnack(a));
  }
  for (int round = 0; round < 4; ++round) {
    ts += kS;
    for (int i = 0; i < kClients; ++i) {
      C& c = cs[i];
      if (i % 5 == 0) continue;  // silent: keepalive 2 s expires
      if ((i + round) % 4 == 0) {
        const uint8_t level = i % 3 == 0 ? kMqtt5 : kMqtt311;
        const auto id = static_cast<uint16_t>(round + 1);
        const std::vector<uint8_t> pub =
            encodePublish(level, "t/" + std::to_string(i), 1, id, std::vector<uint8_t>(40, 0x5a));
        if (i % 11 == 3) {  // two halves, second first
          const std::vector<uint8_t> a(pub.begin(), pub.begin() + 10), b(pub.begin() + 10, pub.end());
          add(c.ep, broker, c.cseq + 10, c.bseq, tcpflag::kAck | tcpflag::kPsh, b);
          add(c.ep, broker, c.cseq, c.bseq, tcpflag::kAck | tcpflag::kPsh, a);
          c.cseq += static_cast<uint32_t>(pub.size());
        } else {
          client(c, pub);
        }
        brokerSays(c, encodeAck(PacketType::kPuback, level, id));
      } else {
        client(c, encodePingreq());
        brokerSays(c, encodePingresp());
      }
    }
    // Traffic of a port that is not watched.
    add(testing::v4("10.9.9.9", 5555), testing::v4("10.9.9.8", 80), 1, 1, tcpflag::kAck, {1, 2, 3});
  }
  for (int i = 0; i < kClients; i += 3) {
    C& c = cs[i];
    if (i % 2 == 0) {
      client(c, encodeDisconnect(kMqtt311));
      add(c.ep, broker, c.cseq, c.bseq, tcpflag::kFin | tcpflag::kAck, {});
      add(broker, c.ep, c.bseq, c.cseq + 1, tcpflag::kFin | tcpflag::kAck, {});
    } else {
      add(c.ep, broker, c.cseq, c.bseq, tcpflag::kRst, {});
    }
  }
  ts += 10 * kS;  // past the settle window of the FINs
  return out;
}

TEST(EngineBatch, InterleavedConnectionsSameAsFrameByFrame) {
  const std::vector<Frame> frames = interleaved();
  ASSERT_GT(frames.size(), 2000u);
  // The scenario exercises what it claims to.
  Result one;
  run(dlt::kEthernet, frames, 0, one);
  EXPECT_EQ(one.sink.count(EventType::kConnected), 300u);
  EXPECT_GT(one.sink.count(EventType::kTakeover), 30u);
  EXPECT_GT(one.sink.count(EventType::kKeepaliveExpired), 30u);
  EXPECT_GT(one.sink.count(EventType::kClosed), 60u);
  EXPECT_GT(one.sink.acks.size(), 100u);
  EXPECT_GT(one.sink.rtts.size(), 500u);
  EXPECT_GT(one.stats.reassembly.out_of_order_segments, 10u);
  expectSame(dlt::kEthernet, frames, "interleaved");
}

// Enough connections for FrameBatcher to batch (beyond its 2,048-flow
// threshold), then with copies and in place.
TEST(EngineBatch, FrameBatcherCopiedOrInPlaceSameAsFrameByFrame) {
  const std::vector<Frame> frames = interleaved(3000);
  Result one;
  run(dlt::kEthernet, frames, 0, one);
  EXPECT_EQ(one.sink.count(EventType::kConnected), 3000u);
  EXPECT_GT(one.stats.tcp_flows, 2048u);
  for (bool in_place : {false, true}) {
    SCOPED_TRACE(in_place ? "in place" : "copied");
    Result b;
    runBatcher(dlt::kEthernet, frames, in_place, b);
    expectSameResult(b, one);
  }
}

TEST(EngineBatch, SharedCapturesSameAsFrameByFrame) {
  namespace fs = std::filesystem;
  int files = 0;
  for (const auto& entry : fs::directory_iterator(MQTTLIVE_CAPTURES_DIR)) {
    const std::string ext = entry.path().extension().string();
    if (ext != ".pcap" && ext != ".pcapng") continue;
    std::string err;
    auto cap = PcapCapture::openOffline(entry.path().string(), err);
    ASSERT_TRUE(cap) << err;
    std::vector<Frame> frames;
    Micros last = 0;
    while (cap->dispatch(4096, [&](Micros ts, std::span<const uint8_t> f) {
      // As the offline runner does: packet time never runs backwards.
      last = std::max(last, ts);
      frames.push_back({last, std::vector<uint8_t>(f.begin(), f.end())});
    }) >= 0) {
    }
    expectSame(cap->linkType(), frames, entry.path().filename().string());
    ++files;
  }
  EXPECT_GT(files, 10);
}

}  // namespace
}  // namespace mqttlive
