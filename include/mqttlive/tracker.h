// Stage 6: per-connection MQTT session state and keepalive judgement on an
// injected clock. Fed decoded packets and TCP close facts by the engine; emits
// events to an EventSink. Never reads a clock: advanceTo(now) moves time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "mqttlive/events.h"
#include "mqttlive/mqtt_packet.h"
#include "mqttlive/timer_wheel.h"

namespace mqttlive {

struct TrackerConfig {
  double keepalive_factor = 1.5;      // deadline = last activity + factor * keepalive
  Micros no_keepalive_idle = 300 * kMicrosPerSecond;  // keepalive-0 idle threshold
  // Broker close counts as keepalive enforcement when the client had been
  // silent at least this fraction of its keepalive (brokers check coarsely).
  double enforcement_min_silence = 1.0;
  uint32_t max_connections = 1u << 20;
};

using ConnHandle = uint32_t;
constexpr ConnHandle kNoConn = 0xffffffffu;

struct TrackerStats {
  uint64_t opened = 0;
  uint64_t closed_by_reason[static_cast<int>(CloseReason::kCount)] = {};
  uint64_t keepalive_expired = 0;
  uint64_t takeovers = 0;
  uint64_t connect_refused = 0;
  uint64_t refused_by_code[256] = {};
  uint64_t rejected_full = 0;         // open() refused: max_connections reached
};

class SessionTracker {
 public:
  SessionTracker(const TrackerConfig& cfg, EventSink& sink);

  // A new TCP connection to a broker port. midstream = its start was not captured.
  // Returns kNoConn when at capacity (counted in stats().rejected_full).
  ConnHandle open(Micros ts, const Endpoint& client, const Endpoint& broker, bool midstream);

  void onClientPacket(ConnHandle h, Micros ts, const MqttPacket& p);
  void onBrokerPacket(ConnHandle h, Micros ts, const MqttPacket& p);
  // Bytes were missing on this connection (TCP gap, capture drop): later
  // verdicts about it are marked uncertain.
  void onDataMissing(ConnHandle h);

  // First FIN or RST of either side: the keepalive clock stops.
  void onCloseStarted(ConnHandle h, Micros ts, Side side, bool rst);
  // The close is settled (both FINs, a RST, or the settle window passed):
  // emits `closed` and frees the handle. client_tcp from the TCP layer.
  void onClosed(ConnHandle h, ClientTcp client_tcp);

  // Fire every deadline <= now (keepalive_expired, idle transitions).
  void advanceTo(Micros now);
  // End of an offline capture: one open_at_end per connection still open.
  void finish(Micros end_ts);

  // Config reload (SIGHUP): factor and thresholds apply to future deadlines.
  void reconfigure(const TrackerConfig& cfg);

  const ConnectionInfo* info(ConnHandle h) const;
  size_t openCount() const { return open_count_; }
  // Open connections by state (index = ConnState).
  const uint64_t* stateCounts() const { return state_counts_; }
  const TrackerStats& stats() const { return stats_; }
  // Calls fn(const ConnectionInfo&) for every open connection.
  template <class Fn>
  void forEachOpen(Fn&& fn) const {
    for (const auto& s : slots_)
      if (s.in_use) fn(s.info);
  }
  // Bytes of tracker state (slots, index, wheel), for the memory metric.
  size_t memoryBytes() const;

 private:
  struct Slot {
    ConnectionInfo info;
    bool in_use = false;
    // PINGREQ cadence for keepalive inference on midstream connections.
    Micros last_ping = 0;
    Micros ping_interval = 0;
    bool seen_mqtt = false;           // first MQTT packet decides "midstream"
    // Close bookkeeping between onCloseStarted and onClosed.
    bool closing = false;
    bool close_rst = false;
    Side close_side = Side::kClient;
    Micros close_ts = 0;
  };
  void setState(Slot& s, ConnState st);
  void rearm(ConnHandle h, Slot& s);
  void activity(ConnHandle h, Slot& s, Micros ts);
  void emit(EventType t, Micros ts, const ConnectionInfo& c);
  void onConnect(ConnHandle h, Slot& s, Micros ts, const MqttPacket& p);
  void onConnack(ConnHandle h, Slot& s, Micros ts, const MqttPacket& p);
  void inferFromPing(ConnHandle h, Slot& s, Micros ts);
  void firstPacket(Slot& s, Micros ts, bool is_connect);
  void unindexClientId(ConnHandle h, Slot& s);

  TrackerConfig cfg_;
  EventSink& sink_;
  std::vector<Slot> slots_;
  std::vector<ConnHandle> free_;
  TimerWheel wheel_;
  std::vector<uint32_t> due_;
  // client id -> connection currently holding it (takeover detection).
  std::unordered_map<std::string, ConnHandle> by_client_id_;
  size_t open_count_ = 0;
  uint64_t state_counts_[static_cast<int>(ConnState::kCount)] = {};
  TrackerStats stats_;
  Micros now_ = 0;
};

}  // namespace mqttlive
