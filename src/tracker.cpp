#include "mqttlive/tracker.h"

#include <algorithm>
#include <cmath>

namespace mqttlive {

namespace {
constexpr uint8_t kV5KeepAliveTimeout = 0x8D;
constexpr uint8_t kV5SessionTakenOver = 0x8E;
// A client pings when it has sent nothing for its keepalive; two consecutive
// ping intervals this close to each other are taken as that keepalive.
constexpr Micros kPingAgreeSlack = kMicrosPerSecond;
// TLS: a small client record counts as a ping only after this much silence
// (a client pings when idle; handshake, CONNECT and SUBSCRIBE come in bursts).
constexpr Micros kMinPingSilence = kMicrosPerSecond;
}  // namespace

SessionTracker::SessionTracker(const TrackerConfig& cfg, EventSink& sink) : cfg_(cfg), sink_(sink) {}

// ---- ClientIdIndex ----------------------------------------------------------

namespace {
inline uint32_t clientIdTag(std::string_view id) {
  // Upper half of the 64-bit hash: the bucket index and the tag both come from it.
  return static_cast<uint32_t>(std::hash<std::string_view>{}(id) >> 32);
}
}  // namespace

// Index of id's bucket, or of the empty bucket where it would go.
size_t SessionTracker::ClientIdIndex::probe(std::string_view id, uint32_t tag,
                                            const std::vector<Slot>& slots) const {
  const size_t mask = buckets_.size() - 1;
  for (size_t i = tag & mask;; i = (i + 1) & mask) {
    const Bucket& b = buckets_[i];
    if (b.handle == kNoConn) return i;
    if (b.tag == tag && slots[b.handle].info.client_id == id) return i;
  }
}

ConnHandle SessionTracker::ClientIdIndex::find(std::string_view id, const std::vector<Slot>& slots) const {
  if (size_ == 0) return kNoConn;
  return buckets_[probe(id, clientIdTag(id), slots)].handle;
}

ConnHandle SessionTracker::ClientIdIndex::assign(std::string_view id, ConnHandle h,
                                                 const std::vector<Slot>& slots) {
  // Keep the load at or below 70% (and have a table at all).
  if ((size_ + 1) * 10 > buckets_.size() * 7) grow();
  const uint32_t tag = clientIdTag(id);
  Bucket& b = buckets_[probe(id, tag, slots)];
  const ConnHandle prev = b.handle;
  if (prev == kNoConn) ++size_;
  b.handle = h;
  b.tag = tag;
  return prev;
}

void SessionTracker::ClientIdIndex::erase(std::string_view id, ConnHandle h, const std::vector<Slot>& slots) {
  if (size_ == 0) return;
  const size_t mask = buckets_.size() - 1;
  size_t hole = probe(id, clientIdTag(id), slots);
  if (buckets_[hole].handle != h || h == kNoConn) return;
  // Backward-shift deletion (as in FlowTable): no tombstones.
  for (size_t j = (hole + 1) & mask; buckets_[j].handle != kNoConn; j = (j + 1) & mask) {
    const size_t home = buckets_[j].tag & mask;
    if (((j - home) & mask) >= ((j - hole) & mask)) {
      buckets_[hole] = buckets_[j];
      hole = j;
    }
  }
  buckets_[hole] = Bucket{};
  --size_;
}

void SessionTracker::ClientIdIndex::grow() {
  std::vector<Bucket> old;
  old.swap(buckets_);
  buckets_.assign(old.empty() ? 64 : old.size() * 2, Bucket{});
  const size_t mask = buckets_.size() - 1;
  for (const Bucket& b : old) {
    if (b.handle == kNoConn) continue;
    size_t i = b.tag & mask;
    while (buckets_[i].handle != kNoConn) i = (i + 1) & mask;
    buckets_[i] = b;
  }
}

void SessionTracker::reconfigure(const TrackerConfig& cfg) {
  cfg_ = cfg;
  // New factor applies from each connection's next activity; re-arm now so an
  // operator sees the new rule take effect without waiting for traffic.
  for (ConnHandle h = 0; h < slots_.size(); ++h) {
    Slot& s = slots_[h];
    if (s.in_use && !s.closing && s.info.state != ConnState::kExpired) rearm(h, s);
  }
}

const ConnectionInfo* SessionTracker::info(ConnHandle h) const {
  return h < slots_.size() && slots_[h].in_use ? &slots_[h].info : nullptr;
}

size_t SessionTracker::memoryBytes() const {
  size_t n = slots_.capacity() * sizeof(Slot) + free_.capacity() * sizeof(ConnHandle) + wheel_.memoryBytes();
  for (const auto& s : slots_) {
    if (s.in_use && s.info.client_id.capacity() > 15) n += s.info.client_id.capacity() + 1;
    if (s.outstanding) n += 2 * sizeof(Outstanding);
  }
  n += by_client_id_.memoryBytes();
  return n;
}

void SessionTracker::setState(Slot& s, ConnState st) {
  --state_counts_[static_cast<int>(s.info.state)];
  s.info.state = st;
  ++state_counts_[static_cast<int>(st)];
}

ConnHandle SessionTracker::open(Micros ts, const Endpoint& client, const Endpoint& broker, bool midstream) {
  if (open_count_ >= cfg_.max_connections) {
    ++stats_.rejected_full;
    return kNoConn;
  }
  ConnHandle h;
  if (!free_.empty()) {
    h = free_.back();
    free_.pop_back();
  } else {
    h = static_cast<ConnHandle>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[h];
  s = Slot{};
  s.in_use = true;
  s.info.client = client;
  s.info.broker = broker;
  s.info.opened_at = ts;
  s.info.last_activity = ts;
  s.info.midstream = midstream;
  ++state_counts_[static_cast<int>(ConnState::kConnecting)];
  ++open_count_;
  ++stats_.opened;
  return h;
}

void SessionTracker::emit(EventType t, Micros ts, const ConnectionInfo& c) {
  Event e;
  e.type = t;
  e.ts = ts;
  e.conn = &c;
  sink_.onEvent(e);
}

void SessionTracker::rearm(ConnHandle h, Slot& s) {
  const ConnectionInfo& c = s.info;
  if (!c.keepalive_known) {
    wheel_.cancel(h);
    return;
  }
  if (c.keepalive > 0) {
    // Same value as std::llround for this positive product (exact below 2^52),
    // without the libm call on every client packet.
    auto span = static_cast<Micros>(cfg_.keepalive_factor * c.keepalive * 1e6 + 0.5);
    s.info.deadline = c.last_activity + span;
    wheel_.arm(h, s.info.deadline);
  } else {
    s.info.deadline = 0;
    wheel_.arm(h, c.last_activity + cfg_.no_keepalive_idle);
  }
}

void SessionTracker::activity(ConnHandle h, Slot& s, Micros ts) {
  s.info.last_activity = ts;
  // Silence seen after a loss may be the loss; silence after fresh activity is real.
  s.info.uncertain = false;
  if (s.closing) return;
  if (s.info.state == ConnState::kExpired || s.info.state == ConnState::kNoKeepaliveIdle)
    setState(s, s.info.connected || s.info.midstream ? ConnState::kActive : ConnState::kConnecting);
  rearm(h, s);
}

void SessionTracker::firstPacket(Slot& s, Micros ts, bool is_connect) {
  if (s.seen_mqtt) return;
  s.seen_mqtt = true;
  s.info.midstream = !is_connect;
  if (s.info.midstream) {
    // MQTT traffic past CONNECT means the session is established, even though
    // we never saw it start.
    if (s.info.state == ConnState::kConnecting) setState(s, ConnState::kActive);
    emit(EventType::kMidstream, ts, s.info);
  }
}

void SessionTracker::unindexClientId(ConnHandle h, Slot& s) {
  if (!s.info.client_id_known || s.info.client_id.empty()) return;
  by_client_id_.erase(s.info.client_id, h, slots_);
}

void SessionTracker::onConnect(ConnHandle h, Slot& s, Micros ts, const MqttPacket& p) {
  ConnectionInfo& c = s.info;
  c.protocol_level = p.protocol_level;
  c.keepalive_requested_known = true;
  c.keepalive_requested = p.keepalive;
  c.keepalive_known = true;
  c.keepalive = p.keepalive;
  c.keepalive_source = KeepaliveSource::kConnect;
  c.clean_start = p.clean_start;
  c.will = p.will_flag;
  c.username_present = p.username_flag;
  if (!p.client_id.empty()) {
    unindexClientId(h, s);
    c.client_id.assign(p.client_id.data(), p.client_id.size());
    c.client_id_known = true;
    const ConnHandle prev = by_client_id_.assign(c.client_id, h, slots_);
    if (prev != kNoConn && prev != h) {
      Slot& old = slots_[prev];
      if (old.in_use) {
        old.info.taken_over = true;
        ++stats_.takeovers;
        Event e;
        e.type = EventType::kTakeover;
        e.ts = ts;
        e.conn = &c;
        e.previous = &old.info;
        sink_.onEvent(e);
      }
    }
  }
}

void SessionTracker::onConnack(ConnHandle h, Slot& s, Micros ts, const MqttPacket& p) {
  ConnectionInfo& c = s.info;
  if (p.reason_code != 0) {
    ++stats_.connect_refused;
    ++stats_.refused_by_code[p.reason_code];
    Event e;
    e.type = EventType::kConnectRefused;
    e.ts = ts;
    e.conn = &c;
    e.code = p.reason_code;
    sink_.onEvent(e);
    return;
  }
  c.connected = true;
  c.connected_at = ts;
  if (p.has_server_keepalive) {
    c.keepalive_known = true;
    c.keepalive = p.server_keepalive;
    c.keepalive_source = KeepaliveSource::kServerKeepalive;
  }
  if (!p.assigned_client_id.empty()) {
    unindexClientId(h, s);
    c.client_id.assign(p.assigned_client_id.data(), p.assigned_client_id.size());
    c.client_id_known = true;
    by_client_id_.assign(c.client_id, h, slots_);
  }
  if (!s.closing && c.state == ConnState::kConnecting) setState(s, ConnState::kActive);
  if (!s.closing && c.state != ConnState::kExpired) rearm(h, s);
  emit(EventType::kConnected, ts, c);
}

void SessionTracker::inferFromPing(ConnHandle h, Slot& s, Micros ts) {
  if (s.last_ping != 0) {
    Micros iv = ts - s.last_ping;
    if (s.ping_interval > 0 && std::llabs(iv - s.ping_interval) <= std::max(s.ping_interval / 10, kPingAgreeSlack)) {
      ConnectionInfo& c = s.info;
      Micros avg = (iv + s.ping_interval) / 2;
      c.keepalive = static_cast<uint16_t>(std::clamp<Micros>((avg + kMicrosPerSecond / 2) / kMicrosPerSecond, 1, 65535));
      c.keepalive_known = true;
      c.keepalive_source = KeepaliveSource::kInferred;
      if (!s.closing) rearm(h, s);
      emit(EventType::kKeepaliveLearned, ts, c);
      return;
    }
    s.ping_interval = iv;
  }
  s.last_ping = ts;
}

void SessionTracker::onClientPacket(ConnHandle h, Micros ts, const MqttPacket& p) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  Slot& s = slots_[h];
  firstPacket(s, ts, p.type == PacketType::kConnect);
  switch (p.type) {
    case PacketType::kConnect:
      onConnect(h, s, ts, p);
      break;
    case PacketType::kPingreq:
      s.info.ping_sent_at = ts;
      if (!s.info.keepalive_known) inferFromPing(h, s, ts);
      break;
    case PacketType::kDisconnect:
      s.info.client_disconnect = true;
      break;
    case PacketType::kPublish:
      if (p.has_packet_id && (p.qos == 1 || p.qos == 2))
        request(s, Side::kClient, p.qos == 1 ? AckKind::kPublishQos1 : AckKind::kPublishQos2, p.packet_id, ts);
      break;
    case PacketType::kSubscribe:
      if (p.has_packet_id) request(s, Side::kClient, AckKind::kSubscribe, p.packet_id, ts);
      break;
    case PacketType::kPuback:
    case PacketType::kPubrec:
      if (p.has_packet_id)
        acknowledge(s, Side::kBroker,
                    p.type == PacketType::kPuback ? AckKind::kPublishQos1 : AckKind::kPublishQos2, p.packet_id,
                    ts);
      break;
    default:
      break;
  }
  if (p.type != PacketType::kPingreq) s.last_ping = 0, s.ping_interval = 0;
  activity(h, s, ts);
  // After DISCONNECT the client owes no keepalive: the broker will close.
  if (s.info.client_disconnect) wheel_.cancel(h);
}

void SessionTracker::onBrokerPacket(ConnHandle h, Micros ts, const MqttPacket& p) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  Slot& s = slots_[h];
  firstPacket(s, ts, false);
  switch (p.type) {
    case PacketType::kConnack:
      onConnack(h, s, ts, p);
      break;
    case PacketType::kPingresp:
      if (s.info.ping_sent_at != 0) {
        sink_.onPingRtt(ts - s.info.ping_sent_at);
        s.info.ping_sent_at = 0;
      }
      break;
    case PacketType::kDisconnect:
      s.info.broker_disconnect = true;
      s.info.broker_disconnect_reason = p.reason_code;
      break;
    case PacketType::kPublish:
      if (p.has_packet_id && (p.qos == 1 || p.qos == 2))
        request(s, Side::kBroker, p.qos == 1 ? AckKind::kPublishQos1 : AckKind::kPublishQos2, p.packet_id, ts);
      break;
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kSuback:
      if (p.has_packet_id)
        acknowledge(s, Side::kClient,
                    p.type == PacketType::kPuback   ? AckKind::kPublishQos1
                    : p.type == PacketType::kPubrec ? AckKind::kPublishQos2
                                                    : AckKind::kSubscribe,
                    p.packet_id, ts);
      break;
    default:
      break;
  }
}

void SessionTracker::request(Slot& s, Side sender, AckKind kind, uint16_t id, Micros ts) {
  if (!s.outstanding) s.outstanding = std::make_unique<Outstanding[]>(2);
  Outstanding& o = s.outstanding[static_cast<int>(sender)];
  int free_slot = -1;
  for (int i = 0; i < Outstanding::kSlots; ++i) {
    if ((o.used & (1u << i)) == 0) {
      if (free_slot < 0) free_slot = i;
    } else if (o.id[i] == id) {
      // A retransmission (DUP) keeps the first send time: the round trip
      // includes the retry. An id reused for another request type replaces it.
      if (o.kind[i] != kind) {
        if (o.kind[i] != AckKind::kSubscribe) --inflight_[static_cast<int>(sender)];
        if (kind != AckKind::kSubscribe) ++inflight_[static_cast<int>(sender)];
        o.kind[i] = kind;
        o.sent[i] = static_cast<uint32_t>(ts);
      }
      return;
    }
  }
  if (free_slot < 0) {
    ++stats_.ack_overflow;
    return;
  }
  o.used = static_cast<uint8_t>(o.used | (1u << free_slot));
  o.id[free_slot] = id;
  o.kind[free_slot] = kind;
  o.sent[free_slot] = static_cast<uint32_t>(ts);
  if (kind != AckKind::kSubscribe) ++inflight_[static_cast<int>(sender)];
}

void SessionTracker::acknowledge(Slot& s, Side sender, AckKind kind, uint16_t id, Micros ts) {
  if (!s.outstanding) return;  // nothing was ever requested on this connection
  Outstanding& o = s.outstanding[static_cast<int>(sender)];
  for (int i = 0; i < Outstanding::kSlots; ++i) {
    if ((o.used & (1u << i)) == 0 || o.id[i] != id || o.kind[i] != kind) continue;
    o.used = static_cast<uint8_t>(o.used & ~(1u << i));
    if (kind != AckKind::kSubscribe) --inflight_[static_cast<int>(sender)];
    // Modulo 2^32 us; a reordered (earlier) ack comes out negative: 0.
    const auto rtt = static_cast<int32_t>(static_cast<uint32_t>(ts) - o.sent[i]);
    sink_.onAckLatency(kind, sender, std::max<Micros>(rtt, 0));
    return;
  }
  // Not found: a request sent before the capture started, or one not stored.
}

void SessionTracker::clearOutstanding(Slot& s) {
  if (!s.outstanding) return;
  for (int side = 0; side < 2; ++side) {
    Outstanding& o = s.outstanding[side];
    for (int i = 0; i < Outstanding::kSlots; ++i)
      if ((o.used & (1u << i)) != 0 && o.kind[i] != AckKind::kSubscribe) --inflight_[side];
    o.used = 0;
  }
}

void SessionTracker::setTransport(ConnHandle h, Transport t, uint16_t configured_keepalive) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  Slot& s = slots_[h];
  s.info.transport = t;
  if (configured_keepalive > 0) {
    s.info.keepalive_known = true;
    s.info.keepalive = configured_keepalive;
    s.info.keepalive_source = KeepaliveSource::kConfigured;
    if (!s.closing) rearm(h, s);
  }
}

void SessionTracker::setClientReal(ConnHandle h, const Endpoint& real) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  slots_[h].info.client_real = real;
  slots_[h].info.client_real_known = true;
}

void SessionTracker::onClientActivity(ConnHandle h, Micros ts, ClientActivity a) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  Slot& s = slots_[h];
  if (a == ClientActivity::kCloseNotify) {
    // Like DISCONNECT: the client owes no keepalive any more.
    s.info.client_disconnect = true;
    wheel_.cancel(h);
    return;
  }
  const bool ping = a == ClientActivity::kPingLike && ts - s.info.last_activity >= kMinPingSilence;
  if (ping) {
    if (!s.info.keepalive_known) inferFromPing(h, s, ts);
  } else {
    s.last_ping = 0, s.ping_interval = 0;
  }
  activity(h, s, ts);
  if (s.info.client_disconnect) wheel_.cancel(h);
}

void SessionTracker::onTransportEstablished(ConnHandle h, Micros ts) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  Slot& s = slots_[h];
  if (s.seen_mqtt) return;
  s.seen_mqtt = true;
  ConnectionInfo& c = s.info;
  if (c.midstream) {
    if (c.state == ConnState::kConnecting) setState(s, ConnState::kActive);
    emit(EventType::kMidstream, ts, c);
    return;
  }
  c.connected = true;
  c.connected_at = ts;
  if (!s.closing && c.state == ConnState::kConnecting) setState(s, ConnState::kActive);
  if (!s.closing && c.state != ConnState::kExpired) rearm(h, s);
  emit(EventType::kConnected, ts, c);
}

void SessionTracker::onDataMissing(ConnHandle h) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  ++slots_[h].info.gaps;
  slots_[h].info.uncertain = true;
  // The acknowledgements may have been in the hole: forget what was waiting
  // rather than time it against a later ack or count it in flight forever.
  clearOutstanding(slots_[h]);
}

void SessionTracker::onCloseStarted(ConnHandle h, Micros ts, Side side, bool rst) {
  if (h >= slots_.size() || !slots_[h].in_use || slots_[h].closing) return;
  Slot& s = slots_[h];
  // Deadlines due before the close still fire first, with their exact time.
  advanceTo(ts);
  s.closing = true;
  s.close_ts = ts;
  s.close_side = side;
  s.close_rst = rst;
  s.info.ping_sent_at = 0;
  wheel_.cancel(h);
  setState(s, ConnState::kClosing);
}

void SessionTracker::onClosed(ConnHandle h, ClientTcp client_tcp) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  Slot& s = slots_[h];
  ConnectionInfo& c = s.info;
  if (!s.closing) return;
  Event e;
  e.type = EventType::kClosed;
  e.ts = s.close_ts;
  e.conn = &c;
  e.client_tcp = client_tcp;
  e.closed_by = s.close_side;
  e.rst = s.close_rst;
  e.duration = s.close_ts - c.opened_at;
  e.expired = c.deadline != 0 && c.deadline <= s.close_ts;
  if (c.client_disconnect) {
    e.reason = CloseReason::kGracefulDisconnect;
  } else if (s.close_side == Side::kClient) {
    e.reason = s.close_rst ? CloseReason::kClientRstWithoutDisconnect : CloseReason::kClientFinWithoutDisconnect;
  } else if (c.broker_disconnect && c.broker_disconnect_reason == kV5SessionTakenOver) {
    e.reason = CloseReason::kBrokerCloseTakeover;
  } else if (c.broker_disconnect && c.broker_disconnect_reason == kV5KeepAliveTimeout) {
    e.reason = CloseReason::kBrokerCloseKeepalive;
  } else if (c.taken_over) {
    e.reason = CloseReason::kBrokerCloseTakeover;
  } else if (c.keepalive_known && c.keepalive > 0 &&
             s.close_ts - c.last_activity >=
                 static_cast<Micros>(std::llround(cfg_.enforcement_min_silence * c.keepalive * 1e6))) {
    e.reason = CloseReason::kBrokerCloseKeepalive;
  } else {
    e.reason = CloseReason::kBrokerCloseOther;
  }
  ++stats_.closed_by_reason[static_cast<int>(e.reason)];
  if (e.reason == CloseReason::kBrokerCloseKeepalive && c.deadline != 0)
    sink_.onEnforcementDelay(s.close_ts - c.deadline);
  sink_.onEvent(e);

  unindexClientId(h, s);
  clearOutstanding(s);
  wheel_.cancel(h);
  --state_counts_[static_cast<int>(c.state)];
  s.in_use = false;
  s.info = ConnectionInfo{};
  free_.push_back(h);
  --open_count_;
}

void SessionTracker::advanceTo(Micros now) {
  if (now < now_) return;  // time never runs backwards (reordered capture)
  now_ = now;
  wheel_.advance(now, due_);
  for (uint32_t h : due_) {
    Slot& s = slots_[h];
    if (!s.in_use || s.closing) continue;
    ConnectionInfo& c = s.info;
    if (c.keepalive_known && c.keepalive > 0) {
      if (c.state == ConnState::kExpired) continue;
      setState(s, ConnState::kExpired);
      ++stats_.keepalive_expired;
      emit(EventType::kKeepaliveExpired, c.deadline, c);
    } else if (c.keepalive_known && c.keepalive == 0) {
      setState(s, ConnState::kNoKeepaliveIdle);
    }
  }
}

void SessionTracker::discard(ConnHandle h) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  Slot& s = slots_[h];
  unindexClientId(h, s);
  clearOutstanding(s);
  wheel_.cancel(h);
  --state_counts_[static_cast<int>(s.info.state)];
  s.in_use = false;
  s.info = ConnectionInfo{};
  free_.push_back(h);
  --open_count_;
}

ConnHandle SessionTracker::restore(const ConnectionInfo& saved) {
  const ConnHandle h = open(saved.opened_at, saved.client, saved.broker, saved.midstream);
  if (h == kNoConn) return h;
  Slot& s = slots_[h];
  --state_counts_[static_cast<int>(s.info.state)];
  s.info = saved;
  // Open connections are never closing; anything else keeps its liveness state.
  if (s.info.state == ConnState::kClosing || s.info.state >= ConnState::kCount) s.info.state = ConnState::kActive;
  ++state_counts_[static_cast<int>(s.info.state)];
  s.info.uncertain = true;
  s.info.ping_sent_at = 0;
  s.info.deadline = 0;
  s.seen_mqtt = true;  // its first packet after the restart is not a midstream pickup
  if (s.info.client_id_known && !s.info.client_id.empty()) {
    by_client_id_.assign(s.info.client_id, h, slots_);
  }
  if (s.info.state == ConnState::kExpired) {
    s.info.deadline = saved.deadline;  // already reported; /connections still shows it
  } else {
    rearm(h, s);
  }
  return h;
}

void SessionTracker::finish(Micros end_ts) {
  advanceTo(end_ts);
  for (auto& s : slots_)
    if (s.in_use) emit(EventType::kOpenAtEnd, end_ts, s.info);
}

}  // namespace mqttlive
