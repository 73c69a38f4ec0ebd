// The data path after capture: decode -> flow table -> reassembly -> MQTT
// decoder -> session tracker. One Engine per capture thread. Packet time (or
// the system clock in live mode) comes in as an argument; the engine never
// reads a clock and never throws.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

#include "mqttlive/events.h"
#include "mqttlive/flow_table.h"
#include "mqttlive/flow_transport.h"
#include "mqttlive/mqtt_decoder.h"
#include "mqttlive/packet_decoder.h"
#include "mqttlive/tcp_reassembly.h"
#include "mqttlive/tracker.h"

namespace mqttlive {

struct EngineConfig {
  // Every watched broker port (all listener kinds).
  std::vector<uint16_t> broker_ports{1883};
  // Per-port transport (tls, websocket), PROXY header and TLS keepalive, for
  // ports in broker_ports. A port without an entry is plain MQTT over TCP.
  std::vector<PortOptions> port_options;
  WebSocketLimits websocket;
  TrackerConfig tracker;
  MqttDecoderLimits mqtt;
  uint32_t max_flows = 1u << 20;
  uint32_t flow_buffer_bytes = 256u << 10;     // out-of-order bytes per direction
  uint64_t total_buffer_bytes = 256ull << 20;  // out-of-order bytes across all flows
  // After the first FIN, how long to wait for the other side's FIN/ACK before
  // the close is judged (client_tcp needs to see whether the client ACKs).
  Micros close_settle = 2 * kMicrosPerSecond;
  // A flow with no packet for this long and no MQTT session is dropped.
  Micros idle_flow_timeout = 0;  // 0 = never (connections are long-lived)
};

enum class EvictReason : uint8_t {
  kTableFull = 0,   // max_flows reached: new flow refused
  kTrackerFull,     // tracker at max_connections
  kIdleTimeout,     // no packet for idle_flow_timeout and no MQTT session: dropped
  kCount
};
const char* toString(EvictReason r);  // "table_full", "tracker_full", "idle_timeout"

struct EngineStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t decode_status[static_cast<int>(DecodeStatus::kCount)] = {};
  uint64_t not_broker_port = 0;        // TCP, but neither port is a listener
  uint64_t tcp_flows = 0;              // flows ever created
  uint64_t gaps = 0;
  uint64_t gap_bytes = 0;
  uint64_t gaps_by_reason[static_cast<int>(GapReason::kCount)] = {};
  uint64_t parse_errors[static_cast<int>(ParseError::kCount)] = {};
  // [side][type]: MQTT control packets decoded
  uint64_t mqtt_packets[2][kPacketTypeCount] = {};
  uint64_t flows_evicted[static_cast<int>(EvictReason::kCount)] = {};
  uint64_t late_segments = 0;          // segment of a flow already closed (ignored)
  uint64_t restored = 0;               // connections re-created from a state file (restore())
  TransportStats transport;            // PROXY, WebSocket and TLS stages
  ReassemblyStats reassembly;
};

class Engine {
 public:
  Engine(const EngineConfig& cfg, EventSink& sink);
  ~Engine();

  // One captured frame. `ts` in packet (offline) or system (live) time.
  void onFrame(Micros ts, int link_type, std::span<const uint8_t> frame);
  // Several frames: the same as onFrame() for each, in order, with the same
  // results, but faster with many connections (it decodes a few frames ahead
  // and prefetches their state; see engine.cpp). The bytes must stay valid
  // during the call. FrameBatcher feeds it from a capture loop.
  struct Frame {
    Micros ts = 0;
    std::span<const uint8_t> bytes;
  };
  void onFrames(int link_type, std::span<const Frame> frames);
  // Move time forward without a packet (live idle broker, end of capture).
  void advanceTo(Micros now);
  // End of input: settle pending closes, emit open_at_end for the rest.
  void finish(Micros end_ts);
  // Capture drops were reported: verdicts on every open connection become uncertain.
  void onCaptureDrops(uint64_t dropped);
  void reconfigure(const EngineConfig& cfg);
  // Restart without amnesia (state_file.h): re-creates a connection saved
  // before a restart. Its flow waits in midstream mode for the connection's
  // next packet, which is then judged against the restored keepalive instead
  // of starting blind. Until an MQTT packet arrives it counts as idle for
  // idle_flow_timeout (a connection that ended while we were down). False when
  // the broker port is not watched, the flow exists, or a limit is reached.
  bool restore(const ConnectionInfo& saved, Micros now);

  const EngineStats& stats() const { return stats_; }
  const SessionTracker& tracker() const { return tracker_; }
  size_t openFlows() const;
  uint64_t bufferedBytes() const { return budget_.used; }
  size_t memoryBytes() const;

 private:
  struct Impl;
  Impl* impl_;
  EngineStats stats_;
  ReassemblyBudget budget_;
  SessionTracker tracker_;
};

// Collects frames from a capture loop and hands them to Engine::onFrames in
// batches. libpcap reuses its buffer for the next frame, so its frames are
// copied (into a fixed buffer: nothing is allocated per frame); frames read in
// place (addInPlace) are not. Frames reach the
// engine late: call flush() before using the engine otherwise (advanceTo,
// finish, stats, ...).
class FrameBatcher {
 public:
  FrameBatcher(Engine& engine, int link_type)
      : engine_(engine), link_type_(link_type), bytes_(new uint8_t[kBytes]) {}
  void add(Micros ts, std::span<const uint8_t> frame) {
    // Inline for the usual frame: a batch is open and has room for it.
    if (count_ != 0 && count_ != kFrames && used_ + frame.size() <= kBytes) {
      copy(ts, frame);
      return;
    }
    addSlow(ts, frame);
  }
  // A frame that stays valid until flush() (read in place): not copied.
  void addInPlace(Micros ts, std::span<const uint8_t> frame) {
    if (count_ != 0 && count_ != kFrames) {
      frames_[count_++] = Engine::Frame{ts, frame};
      return;
    }
    addInPlaceSlow(ts, frame);
  }
  void flush();

 private:
  // A batch is long compared with the look-ahead (a few frames) and small
  // enough for the copies to stay in the L2 cache until processed.
  static constexpr size_t kFrames = 256;
  static constexpr size_t kBytes = 128 << 10;
  // Below this many open flows frames go straight to Engine::onFrame (about
  // 1 MiB of per-flow state: it stays in the L2 cache).
  static constexpr size_t kMinFlows = 2048;
  void addSlow(Micros ts, std::span<const uint8_t> frame);
  void addInPlaceSlow(Micros ts, std::span<const uint8_t> frame);
  bool direct() const { return count_ == 0 && engine_.openFlows() < kMinFlows; }
  void copy(Micros ts, std::span<const uint8_t> frame) {
    std::memcpy(bytes_.get() + used_, frame.data(), frame.size());
    frames_[count_++] = Engine::Frame{ts, {bytes_.get() + used_, frame.size()}};
    used_ += frame.size();
  }
  Engine& engine_;
  int link_type_;
  std::unique_ptr<uint8_t[]> bytes_;
  Engine::Frame frames_[kFrames];
  size_t count_ = 0;
  size_t used_ = 0;
};

}  // namespace mqttlive
