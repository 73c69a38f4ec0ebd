// Stage 6: per-connection MQTT session state and keepalive judgement on an
// injected clock. Fed decoded packets and TCP close facts by the engine; emits
// events to an EventSink. Never reads a clock: advanceTo(now) moves time.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
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
  // PUBLISH QoS 1/2 or SUBSCRIBE not timed: the connection already had
  // Outstanding::kSlots requests of that side awaiting their acknowledgement.
  uint64_t ack_overflow = 0;
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

  // --- transports other than plain MQTT over TCP (see flow_transport.h) ---
  // Right after open(): what carries MQTT, and for TLS listeners with a
  // configured keepalive (0 = none) the keepalive to judge by ("configured").
  void setTransport(ConnHandle h, Transport t, uint16_t configured_keepalive = 0);
  // The real client address from a PROXY protocol header.
  void setClientReal(ConnHandle h, const Endpoint& real);
  // What the engine sees on TLS instead of MQTT packets: any client record is
  // activity; a ping-like one (small, after >= 1 s of silence) feeds keepalive
  // inference like a PINGREQ; a close-notify is the TLS equivalent of DISCONNECT.
  enum class ClientActivity : uint8_t { kRecord, kPingLike, kCloseNotify };
  void onClientActivity(ConnHandle h, Micros ts, ClientActivity a);
  // TLS handshake over (application data both ways): emits `connected`
  // (client_id null), or `midstream` for a connection picked up midstream.
  void onTransportEstablished(ConnHandle h, Micros ts);

  // First FIN or RST of either side: the keepalive clock stops.
  void onCloseStarted(ConnHandle h, Micros ts, Side side, bool rst);
  // The close is settled (both FINs, a RST, or the settle window passed):
  // emits `closed` and frees the handle. client_tcp from the TCP layer.
  void onClosed(ConnHandle h, ClientTcp client_tcp);

  // Fire every deadline <= now (keepalive_expired, idle transitions).
  void advanceTo(Micros now) {
    if (now < now_) return;  // time never runs backwards (reordered capture)
    now_ = now;
    if (!wheel_.quiet(now)) fireDue(now);
  }
  // End of an offline capture: one open_at_end per connection still open.
  void finish(Micros end_ts);

  // --- hardening: idle-flow eviction and restart without amnesia ---
  // Forgets a connection without any event (the engine evicts a flow that
  // never carried MQTT, or a restored one that never showed up again).
  void discard(ConnHandle h);
  // Re-creates a connection saved before a restart (state_file.h) as it was:
  // client id (indexed for takeovers), keepalive and its source, last activity,
  // state. Packets went unwatched meanwhile, so it is marked uncertain until
  // fresh activity. An expired connection stays expired (no second
  // keepalive_expired); otherwise the deadline is re-armed from last_activity
  // and fires with its exact time even when that lies before `now`.
  // kNoConn when at capacity (counted in stats().rejected_full).
  ConnHandle restore(const ConnectionInfo& saved);

  // Config reload (SIGHUP): factor and thresholds apply to future deadlines.
  void reconfigure(const TrackerConfig& cfg);

  // A snapshot of connection h (nullptr when h is not open). Connections are
  // stored compactly, not as ConnectionInfo: the snapshot lives in the tracker
  // and stays valid until the next info() call or tracker call.
  const ConnectionInfo* info(ConnHandle h) const;
  bool isOpen(ConnHandle h) const { return h < slots_.size() && slots_[h].in_use; }
  size_t openCount() const { return open_count_; }
  // Open connections by state (index = ConnState).
  const uint64_t* stateCounts() const { return state_counts_; }
  const TrackerStats& stats() const { return stats_; }
  // QoS 1/2 PUBLISHes sent by `sender` and not yet acknowledged (PUBACK /
  // PUBREC), over all open connections. Only tracked ones (see ack_overflow).
  uint64_t inflight(Side sender) const { return inflight_[static_cast<int>(sender)]; }
  // Calls fn(const ConnectionInfo&) for every open connection (a snapshot,
  // valid during the call).
  template <class Fn>
  void forEachOpen(Fn&& fn) const {
    ConnectionInfo c;
    for (const auto& s : slots_) {
      if (!s.in_use) continue;
      fill(s, c);
      fn(static_cast<const ConnectionInfo&>(c));
    }
  }
  // Start loading what a packet of connection h reads (the slot's first
  // half and its timer); the look-ahead of batched frames (Engine::onFrames).
  // (Always inlined: GCC deems an out-of-line function that only prefetches
  // free of effects and drops calls to it.)
  [[gnu::always_inline]] void prefetch(ConnHandle h) const {
    if (h >= slots_.size()) return;
    __builtin_prefetch(&slots_[h]);
    wheel_.prefetch(h);
  }
  // The next link: connection h's side record, if it has one (slot loaded):
  // the line of the requests `sender` sent, awaiting acknowledgement.
  [[gnu::always_inline]] void prefetchExtra(ConnHandle h, Side sender) const {
    if (h < slots_.size() && slots_[h].extra)
      __builtin_prefetch(&slots_[h].extra->outstanding[static_cast<int>(sender)]);
  }
  // Bytes of tracker state (slots, index, wheel), for the memory metric.
  size_t memoryBytes() const;

 private:
  // Up to kSlots requests (PUBLISH QoS 1/2, SUBSCRIBE) of one side awaiting
  // their acknowledgement, keyed by packet id (one id space per sending side).
  // A cache line each: a packet that requests or acknowledges reads one.
  struct alignas(64) Outstanding {
    static constexpr int kSlots = 8;
    // Low 32 bits of the send time: round trips up to 35 minutes come out
    // exact, and a slot costs 7 bytes instead of 11.
    uint32_t sent[kSlots] = {};
    uint16_t id[kSlots] = {};
    AckKind kind[kSlots] = {};
    uint8_t used = 0;  // bit i: slot i holds a request
  };
  // A client id in 16 bytes instead of a 32-byte std::string: up to 15 bytes
  // inline (typical ids), longer ones in a heap block of their exact size.
  class ClientId {
   public:
    ClientId() { b_[15] = 0; }
    ClientId(ClientId&& o) noexcept { std::memcpy(b_, o.b_, sizeof b_), o.b_[15] = 0; }
    ClientId& operator=(ClientId&& o) noexcept {
      if (this != &o) {
        release();
        std::memcpy(b_, o.b_, sizeof b_);
        o.b_[15] = 0;
      }
      return *this;
    }
    ~ClientId() { release(); }
    void assign(std::string_view v);
    std::string_view view() const;
    bool empty() const { return b_[15] == 0; }
    size_t heapBytes() const { return onHeap() ? heapLen() : 0; }

   private:
    // b_[15]: length when inline (0..15), kOnHeap when b_[0..7] holds the
    // pointer and b_[8..11] the length.
    static constexpr unsigned char kOnHeap = 0xff;
    bool onHeap() const { return b_[15] == kOnHeap; }
    uint32_t heapLen() const;
    void release();
    unsigned char b_[16];
  };
  // What few connections need: allocated on first use and kept for the
  // connection's life, so an idle connection pays one pointer.
  struct Extra {
    // Requests awaiting their acknowledgement, [sending side].
    Outstanding outstanding[2];
    // PINGREQ cadence for keepalive inference on midstream connections.
    Micros last_ping = 0;
    Micros ping_interval = 0;
    Endpoint client_real;             // ConnectionInfo::client_real
    uint32_t gaps = 0;                // ConnectionInfo::gaps
  };
  // One connection: the fields of ConnectionInfo (same names; fill() makes
  // one), laid out for memory: 128 bytes, and what every packet reads is in
  // the first 64, which alignment keeps in one cache line (the look-ahead
  // requests that line only). The flags are one-bit fields; no code takes
  // their address.
  struct alignas(64) Slot {
    Micros last_activity = 0;
    Micros deadline = 0;
    Micros ping_sent_at = 0;
    std::unique_ptr<Extra> extra;
    uint16_t keepalive = 0;
    uint16_t keepalive_requested = 0;
    ConnState state = ConnState::kConnecting;
    KeepaliveSource keepalive_source = KeepaliveSource::kUnknown;
    uint8_t protocol_level = 0;
    Transport transport = Transport::kTcp;
    bool in_use : 1 = false;
    bool seen_mqtt : 1 = false;       // first MQTT packet decides "midstream"
    bool closing : 1 = false;         // between onCloseStarted and onClosed
    bool close_rst : 1 = false;
    bool keepalive_known : 1 = false;
    bool keepalive_requested_known : 1 = false;
    bool client_disconnect : 1 = false;
    bool connected : 1 = false;
    bool uncertain : 1 = false;
    bool midstream : 1 = false;
    bool client_id_known : 1 = false;
    bool clean_start : 1 = false;
    bool will : 1 = false;
    bool username_present : 1 = false;
    bool broker_disconnect : 1 = false;
    bool taken_over : 1 = false;
    bool client_real_known : 1 = false;
    // extra->last_ping / ping_interval may be non-zero: the resets on
    // other packets need not touch the side record (a cache miss) otherwise.
    bool ping_cadence : 1 = false;
    Side close_side = Side::kClient;
    uint8_t broker_disconnect_reason = 0;
    ClientId client_id;
    Micros opened_at = 0;
    Micros connected_at = 0;
    Micros close_ts = 0;
    Endpoint client;
    Endpoint broker;
  };
  void fill(const Slot& s, ConnectionInfo& c) const;
  Extra& extra(Slot& s);
  void fireDue(Micros now);
  void setState(Slot& s, ConnState st);
  void rearm(ConnHandle h, Slot& s);
  void activity(ConnHandle h, Slot& s, Micros ts);
  void emit(EventType t, Micros ts, const Slot& s);
  void onConnect(ConnHandle h, Slot& s, Micros ts, const MqttPacket& p);
  void onConnack(ConnHandle h, Slot& s, Micros ts, const MqttPacket& p);
  void inferFromPing(ConnHandle h, Slot& s, Micros ts);
  void forgetPingCadence(Slot& s);
  void firstPacket(Slot& s, Micros ts, bool is_connect);
  void unindexClientId(ConnHandle h, Slot& s);
  void request(Slot& s, Side sender, AckKind kind, uint16_t id, Micros ts);
  void acknowledge(Slot& s, Side sender, AckKind kind, uint16_t id, Micros ts);
  void clearOutstanding(Slot& s);

  TrackerConfig cfg_;
  EventSink& sink_;
  std::vector<Slot> slots_;
  std::vector<ConnHandle> free_;
  TimerWheel wheel_;
  std::vector<uint32_t> due_;
  // client id -> connection currently holding it (takeover detection). Open
  // addressing over handles: the ids themselves are the slots' client_id, so
  // an entry costs 8 bytes instead of a hash node with a second copy of the id.
  class ClientIdIndex {
   public:
    ConnHandle find(std::string_view id, const std::vector<Slot>& slots) const;
    // id -> h; returns the connection that held id before (kNoConn if none).
    ConnHandle assign(std::string_view id, ConnHandle h, const std::vector<Slot>& slots);
    // Removes id only while h holds it.
    void erase(std::string_view id, ConnHandle h, const std::vector<Slot>& slots);
    size_t size() const { return size_; }
    size_t memoryBytes() const { return buckets_.capacity() * sizeof(Bucket); }

   private:
    struct Bucket {
      ConnHandle handle = kNoConn;
      uint32_t tag = 0;  // upper hash bits; the home bucket is tag & mask
    };
    size_t probe(std::string_view id, uint32_t tag, const std::vector<Slot>& slots) const;
    void grow();
    std::vector<Bucket> buckets_;
    size_t size_ = 0;
  };
  ClientIdIndex by_client_id_;
  size_t open_count_ = 0;
  uint64_t state_counts_[static_cast<int>(ConnState::kCount)] = {};
  TrackerStats stats_;
  uint64_t inflight_[2] = {};  // [sending side]: outstanding QoS 1/2 PUBLISHes
  Micros now_ = 0;
  // Snapshots handed to sinks and info() callers: [0] the connection, [1] the
  // previous holder of a taken-over client id, [2] info().
  mutable ConnectionInfo snap_[3];
};

}  // namespace mqttlive
