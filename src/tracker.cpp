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
    if (b.tag == tag && slots[b.handle].client_id.view() == id) return i;
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
    if (s.in_use && !s.closing && s.state != ConnState::kExpired) rearm(h, s);
  }
}

// ---- ClientId ---------------------------------------------------------------

void SessionTracker::ClientId::release() {
  if (!onHeap()) return;
  char* p;
  std::memcpy(&p, b_, sizeof p);
  delete[] p;
  b_[15] = 0;
}

uint32_t SessionTracker::ClientId::heapLen() const {
  uint32_t n;
  std::memcpy(&n, b_ + 8, sizeof n);
  return n;
}

void SessionTracker::ClientId::assign(std::string_view v) {
  release();
  if (v.size() < 16) {
    std::memcpy(b_, v.data(), v.size());
    b_[15] = static_cast<unsigned char>(v.size());
    return;
  }
  // Client ids are at most 65535 bytes (MQTT string), so 32 bits hold the length.
  char* p = new char[v.size()];
  std::memcpy(p, v.data(), v.size());
  const auto n = static_cast<uint32_t>(v.size());
  std::memcpy(b_, &p, sizeof p);
  std::memcpy(b_ + 8, &n, sizeof n);
  b_[15] = kOnHeap;
}

std::string_view SessionTracker::ClientId::view() const {
  if (!onHeap()) return {reinterpret_cast<const char*>(b_), b_[15]};
  const char* p;
  std::memcpy(&p, b_, sizeof p);
  return {p, heapLen()};
}

// ---- Slot <-> ConnectionInfo ------------------------------------------------

void SessionTracker::fill(const Slot& s, ConnectionInfo& c) const {
  static_assert(sizeof(Slot) == 128, "Slot layout: see tracker.h");
  const std::string_view id = s.client_id.view();
  c.client_id.assign(id.data(), id.size());
  c.opened_at = s.opened_at;
  c.connected_at = s.connected_at;
  c.last_activity = s.last_activity;
  c.deadline = s.deadline;
  c.ping_sent_at = s.ping_sent_at;
  c.gaps = s.extra ? s.extra->gaps : 0;
  c.client = s.client;
  c.broker = s.broker;
  c.client_real = s.extra ? s.extra->client_real : Endpoint{};
  c.keepalive_requested = s.keepalive_requested;
  c.keepalive = s.keepalive;
  c.client_id_known = s.client_id_known;
  c.midstream = s.midstream;
  c.protocol_level = s.protocol_level;
  c.keepalive_requested_known = s.keepalive_requested_known;
  c.keepalive_known = s.keepalive_known;
  c.keepalive_source = s.keepalive_source;
  c.clean_start = s.clean_start;
  c.will = s.will;
  c.username_present = s.username_present;
  c.connected = s.connected;
  c.client_disconnect = s.client_disconnect;
  c.broker_disconnect = s.broker_disconnect;
  c.broker_disconnect_reason = s.broker_disconnect_reason;
  c.taken_over = s.taken_over;
  c.state = s.state;
  c.uncertain = s.uncertain;
  c.transport = s.transport;
  c.client_real_known = s.client_real_known;
}

SessionTracker::Extra& SessionTracker::extra(Slot& s) {
  if (!s.extra) s.extra = std::make_unique<Extra>();
  return *s.extra;
}

const ConnectionInfo* SessionTracker::info(ConnHandle h) const {
  if (h >= slots_.size() || !slots_[h].in_use) return nullptr;
  fill(slots_[h], snap_[2]);
  return &snap_[2];
}

size_t SessionTracker::memoryBytes() const {
  size_t n = slots_.capacity() * sizeof(Slot) + free_.capacity() * sizeof(ConnHandle) + wheel_.memoryBytes();
  for (const auto& s : slots_) {
    n += s.client_id.heapBytes();
    if (s.extra) n += sizeof(Extra);
  }
  n += by_client_id_.memoryBytes();
  return n;
}

void SessionTracker::setState(Slot& s, ConnState st) {
  --state_counts_[static_cast<int>(s.state)];
  s.state = st;
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
  s.client = client;
  s.broker = broker;
  s.opened_at = ts;
  s.last_activity = ts;
  s.midstream = midstream;
  ++state_counts_[static_cast<int>(ConnState::kConnecting)];
  ++open_count_;
  ++stats_.opened;
  return h;
}

void SessionTracker::emit(EventType t, Micros ts, const Slot& s) {
  fill(s, snap_[0]);
  Event e;
  e.type = t;
  e.ts = ts;
  e.conn = &snap_[0];
  sink_.onEvent(e);
}

void SessionTracker::rearm(ConnHandle h, Slot& s) {
  const Slot& c = s;
  if (!c.keepalive_known) {
    wheel_.cancel(h);
    return;
  }
  if (c.keepalive > 0) {
    // Same value as std::llround for this positive product (exact below 2^52),
    // without the libm call on every client packet.
    auto span = static_cast<Micros>(cfg_.keepalive_factor * c.keepalive * 1e6 + 0.5);
    s.deadline = c.last_activity + span;
    wheel_.arm(h, s.deadline);
  } else {
    s.deadline = 0;
    wheel_.arm(h, c.last_activity + cfg_.no_keepalive_idle);
  }
}

void SessionTracker::activity(ConnHandle h, Slot& s, Micros ts) {
  s.last_activity = ts;
  // Silence seen after a loss may be the loss; silence after fresh activity is real.
  s.uncertain = false;
  if (s.closing) return;
  if (s.state == ConnState::kExpired || s.state == ConnState::kNoKeepaliveIdle)
    setState(s, s.connected || s.midstream ? ConnState::kActive : ConnState::kConnecting);
  rearm(h, s);
}

void SessionTracker::firstPacket(Slot& s, Micros ts, bool is_connect) {
  if (s.seen_mqtt) return;
  s.seen_mqtt = true;
  s.midstream = !is_connect;
  if (s.midstream) {
    // MQTT traffic past CONNECT means the session is established, even though
    // we never saw it start.
    if (s.state == ConnState::kConnecting) setState(s, ConnState::kActive);
    emit(EventType::kMidstream, ts, s);
  }
}

void SessionTracker::unindexClientId(ConnHandle h, Slot& s) {
  if (!s.client_id_known || s.client_id.empty()) return;
  by_client_id_.erase(s.client_id.view(), h, slots_);
}

void SessionTracker::onConnect(ConnHandle h, Slot& s, Micros ts, const MqttPacket& p) {
  Slot& c = s;
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
    c.client_id.assign(p.client_id);
    c.client_id_known = true;
    const ConnHandle prev = by_client_id_.assign(c.client_id.view(), h, slots_);
    if (prev != kNoConn && prev != h) {
      Slot& old = slots_[prev];
      if (old.in_use) {
        old.taken_over = true;
        ++stats_.takeovers;
        fill(c, snap_[0]);
        fill(old, snap_[1]);
        Event e;
        e.type = EventType::kTakeover;
        e.ts = ts;
        e.conn = &snap_[0];
        e.previous = &snap_[1];
        sink_.onEvent(e);
      }
    }
  }
}

void SessionTracker::onConnack(ConnHandle h, Slot& s, Micros ts, const MqttPacket& p) {
  Slot& c = s;
  if (p.reason_code != 0) {
    ++stats_.connect_refused;
    ++stats_.refused_by_code[p.reason_code];
    fill(c, snap_[0]);
    Event e;
    e.type = EventType::kConnectRefused;
    e.ts = ts;
    e.conn = &snap_[0];
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
    c.client_id.assign(p.assigned_client_id);
    c.client_id_known = true;
    by_client_id_.assign(c.client_id.view(), h, slots_);
  }
  if (!s.closing && c.state == ConnState::kConnecting) setState(s, ConnState::kActive);
  if (!s.closing && c.state != ConnState::kExpired) rearm(h, s);
  emit(EventType::kConnected, ts, c);
}

void SessionTracker::inferFromPing(ConnHandle h, Slot& s, Micros ts) {
  Extra& x = extra(s);
  if (x.last_ping != 0) {
    Micros iv = ts - x.last_ping;
    if (x.ping_interval > 0 && std::llabs(iv - x.ping_interval) <= std::max(x.ping_interval / 10, kPingAgreeSlack)) {
      Slot& c = s;
      Micros avg = (iv + x.ping_interval) / 2;
      c.keepalive = static_cast<uint16_t>(std::clamp<Micros>((avg + kMicrosPerSecond / 2) / kMicrosPerSecond, 1, 65535));
      c.keepalive_known = true;
      c.keepalive_source = KeepaliveSource::kInferred;
      if (!s.closing) rearm(h, s);
      emit(EventType::kKeepaliveLearned, ts, c);
      return;
    }
    x.ping_interval = iv;
  }
  x.last_ping = ts;
  s.ping_cadence = true;
}

void SessionTracker::forgetPingCadence(Slot& s) {
  if (!s.ping_cadence) return;
  s.ping_cadence = false;
  s.extra->last_ping = 0, s.extra->ping_interval = 0;
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
      s.ping_sent_at = ts;
      if (!s.keepalive_known) inferFromPing(h, s, ts);
      break;
    case PacketType::kDisconnect:
      s.client_disconnect = true;
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
  if (p.type != PacketType::kPingreq) forgetPingCadence(s);
  activity(h, s, ts);
  // After DISCONNECT the client owes no keepalive: the broker will close.
  if (s.client_disconnect) wheel_.cancel(h);
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
      if (s.ping_sent_at != 0) {
        sink_.onPingRtt(ts - s.ping_sent_at);
        s.ping_sent_at = 0;
      }
      break;
    case PacketType::kDisconnect:
      s.broker_disconnect = true;
      s.broker_disconnect_reason = p.reason_code;
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
  Outstanding& o = extra(s).outstanding[static_cast<int>(sender)];
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
  if (!s.extra) return;  // nothing was ever requested on this connection
  Outstanding& o = s.extra->outstanding[static_cast<int>(sender)];
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
  if (!s.extra) return;
  for (int side = 0; side < 2; ++side) {
    Outstanding& o = s.extra->outstanding[side];
    for (int i = 0; i < Outstanding::kSlots; ++i)
      if ((o.used & (1u << i)) != 0 && o.kind[i] != AckKind::kSubscribe) --inflight_[side];
    o.used = 0;
  }
}

void SessionTracker::setTransport(ConnHandle h, Transport t, uint16_t configured_keepalive) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  Slot& s = slots_[h];
  s.transport = t;
  if (configured_keepalive > 0) {
    s.keepalive_known = true;
    s.keepalive = configured_keepalive;
    s.keepalive_source = KeepaliveSource::kConfigured;
    if (!s.closing) rearm(h, s);
  }
}

void SessionTracker::setClientReal(ConnHandle h, const Endpoint& real) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  extra(slots_[h]).client_real = real;
  slots_[h].client_real_known = true;
}

void SessionTracker::onClientActivity(ConnHandle h, Micros ts, ClientActivity a) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  Slot& s = slots_[h];
  if (a == ClientActivity::kCloseNotify) {
    // Like DISCONNECT: the client owes no keepalive any more.
    s.client_disconnect = true;
    wheel_.cancel(h);
    return;
  }
  const bool ping = a == ClientActivity::kPingLike && ts - s.last_activity >= kMinPingSilence;
  if (ping) {
    if (!s.keepalive_known) inferFromPing(h, s, ts);
  } else {
    forgetPingCadence(s);
  }
  activity(h, s, ts);
  if (s.client_disconnect) wheel_.cancel(h);
}

void SessionTracker::onTransportEstablished(ConnHandle h, Micros ts) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  Slot& s = slots_[h];
  if (s.seen_mqtt) return;
  s.seen_mqtt = true;
  Slot& c = s;
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
  ++extra(slots_[h]).gaps;
  slots_[h].uncertain = true;
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
  s.ping_sent_at = 0;
  wheel_.cancel(h);
  setState(s, ConnState::kClosing);
}

void SessionTracker::onClosed(ConnHandle h, ClientTcp client_tcp) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  Slot& s = slots_[h];
  Slot& c = s;
  if (!s.closing) return;
  fill(s, snap_[0]);
  Event e;
  e.type = EventType::kClosed;
  e.ts = s.close_ts;
  e.conn = &snap_[0];
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
  s = Slot{};
  free_.push_back(h);
  --open_count_;
}

void SessionTracker::fireDue(Micros now) {
  wheel_.advance(now, due_);
  for (uint32_t h : due_) {
    Slot& s = slots_[h];
    if (!s.in_use || s.closing) continue;
    if (s.keepalive_known && s.keepalive > 0) {
      if (s.state == ConnState::kExpired) continue;
      setState(s, ConnState::kExpired);
      ++stats_.keepalive_expired;
      emit(EventType::kKeepaliveExpired, s.deadline, s);
    } else if (s.keepalive_known && s.keepalive == 0) {
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
  --state_counts_[static_cast<int>(s.state)];
  s = Slot{};
  free_.push_back(h);
  --open_count_;
}

ConnHandle SessionTracker::restore(const ConnectionInfo& saved) {
  const ConnHandle h = open(saved.opened_at, saved.client, saved.broker, saved.midstream);
  if (h == kNoConn) return h;
  Slot& s = slots_[h];
  --state_counts_[static_cast<int>(s.state)];
  // Everything ConnectionInfo holds, as fill() reads it back.
  s.client_id.assign(saved.client_id);
  s.opened_at = saved.opened_at;
  s.connected_at = saved.connected_at;
  s.last_activity = saved.last_activity;
  s.client = saved.client;
  s.broker = saved.broker;
  if (saved.gaps != 0 || saved.client_real_known || !(saved.client_real == Endpoint{})) {
    extra(s).gaps = saved.gaps;
    s.extra->client_real = saved.client_real;
  }
  s.keepalive_requested = saved.keepalive_requested;
  s.keepalive = saved.keepalive;
  s.client_id_known = saved.client_id_known;
  s.midstream = saved.midstream;
  s.protocol_level = saved.protocol_level;
  s.keepalive_requested_known = saved.keepalive_requested_known;
  s.keepalive_known = saved.keepalive_known;
  s.keepalive_source = saved.keepalive_source;
  s.clean_start = saved.clean_start;
  s.will = saved.will;
  s.username_present = saved.username_present;
  s.connected = saved.connected;
  s.client_disconnect = saved.client_disconnect;
  s.broker_disconnect = saved.broker_disconnect;
  s.broker_disconnect_reason = saved.broker_disconnect_reason;
  s.taken_over = saved.taken_over;
  s.state = saved.state;
  s.transport = saved.transport;
  s.client_real_known = saved.client_real_known;
  // Open connections are never closing; anything else keeps its liveness state.
  if (s.state == ConnState::kClosing || s.state >= ConnState::kCount) s.state = ConnState::kActive;
  ++state_counts_[static_cast<int>(s.state)];
  s.uncertain = true;
  s.ping_sent_at = 0;
  s.deadline = 0;
  s.seen_mqtt = true;  // its first packet after the restart is not a midstream pickup
  if (s.client_id_known && !s.client_id.empty()) {
    by_client_id_.assign(s.client_id.view(), h, slots_);
  }
  if (s.state == ConnState::kExpired) {
    s.deadline = saved.deadline;  // already reported; /connections still shows it
  } else {
    rearm(h, s);
  }
  return h;
}

void SessionTracker::finish(Micros end_ts) {
  advanceTo(end_ts);
  for (auto& s : slots_)
    if (s.in_use) emit(EventType::kOpenAtEnd, end_ts, s);
}

}  // namespace mqttlive
