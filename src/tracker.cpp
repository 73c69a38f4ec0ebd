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
}  // namespace

SessionTracker::SessionTracker(const TrackerConfig& cfg, EventSink& sink) : cfg_(cfg), sink_(sink) {}

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
  for (const auto& s : slots_)
    if (s.in_use && s.info.client_id.capacity() > 15) n += s.info.client_id.capacity() + 1;
  // unordered_map: one node (key, value, next pointer, cached hash) per element plus the bucket array.
  n += by_client_id_.size() * (sizeof(std::string) + sizeof(ConnHandle) + 2 * sizeof(void*));
  n += by_client_id_.bucket_count() * sizeof(void*);
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
    auto span = static_cast<Micros>(std::llround(cfg_.keepalive_factor * c.keepalive * 1e6));
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
  auto it = by_client_id_.find(s.info.client_id);
  if (it != by_client_id_.end() && it->second == h) by_client_id_.erase(it);
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
    auto [it, inserted] = by_client_id_.try_emplace(c.client_id, h);
    if (!inserted && it->second != h) {
      Slot& old = slots_[it->second];
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
      it->second = h;
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
    by_client_id_[c.client_id] = h;
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
    default:
      break;
  }
}

void SessionTracker::onDataMissing(ConnHandle h) {
  if (h >= slots_.size() || !slots_[h].in_use) return;
  ++slots_[h].info.gaps;
  slots_[h].info.uncertain = true;
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

void SessionTracker::finish(Micros end_ts) {
  advanceTo(end_ts);
  for (auto& s : slots_)
    if (s.in_use) emit(EventType::kOpenAtEnd, end_ts, s.info);
}

}  // namespace mqttlive
