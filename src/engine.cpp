#include "mqttlive/engine.h"

#include <bitset>
#include <cstring>
#include <deque>
#include <memory>

namespace mqttlive {

const char* toString(EvictReason r) {
  switch (r) {
    case EvictReason::kTableFull: return "table_full";
    case EvictReason::kTrackerFull: return "tracker_full";
    case EvictReason::kIdleTimeout: return "idle_timeout";
    case EvictReason::kCount: break;
  }
  return "unknown";
}

namespace {
inline bool seqAfter(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }

// Does a payload starting with this MQTT first byte read the connection's
// QoS record (SessionTracker request/acknowledge), and whose requests? A
// PUBLISH QoS 1/2 or SUBSCRIBE its sender's, a PUBACK, PUBREC or SUBACK the
// other side's. A guess for the look-ahead: a wrong answer costs a prefetch.
enum class QosRead : uint8_t { kNone, kSender, kPeer };
inline QosRead readsQosRecord(uint8_t first) {
  switch (first >> 4) {
    case 3:
      return (first & 0x06) == 0x02 || (first & 0x06) == 0x04 ? QosRead::kSender : QosRead::kNone;
    case 8:
      return QosRead::kSender;
    case 4:
    case 5:
    case 9:
      return QosRead::kPeer;
    default:
      return QosRead::kNone;
  }
}
inline int sideIndex(Side s) { return static_cast<int>(s); }
inline Side otherSide(Side s) { return s == Side::kClient ? Side::kBroker : Side::kClient; }
constexpr uint32_t kNil = 0xffffffffu;
}  // namespace

// What a segment of a flow reads: two cache lines (the look-ahead requests
// both). What only opening and closing read is in FlowCold, beside it.
struct alignas(64) Flow {
  StreamReassembler reasm[2];
  MqttDecoder decoder[2];
  ConnHandle conn = kNoConn;
  // TCP facts for client_tcp: the end of what the broker sent (data and FIN),
  // and the highest acknowledgement from the client.
  uint32_t broker_end = 0;
  uint32_t client_ack = 0;
  // The first FIN/RST: who sent it and whether it was a RST.
  Side close_side = Side::kClient;
  // One-bit flags last. No code takes the address of a flag.
  bool broker_sent : 1 = false;
  bool client_acked : 1 = false;
  bool closing : 1 = false;
  bool in_use : 1 = false;
  bool mqtt : 1 = false;  // carried MQTT: off the idle list for good
  bool close_rst : 1 = false;
  bool has_xport : 1 = false;  // FlowCold::xport is set
  bool fin_client : 1 = false;
  bool fin_broker : 1 = false;

  // The FIN flags by side (bit-fields: neither an array nor a reference).
  void setFin(Side s) {
    if (s == Side::kClient) {
      fin_client = true;
    } else {
      fin_broker = true;
    }
  }
  bool fin(Side s) const { return s == Side::kClient ? fin_client : fin_broker; }
};

static_assert(sizeof(Flow) == 128, "Flow layout: two cache lines, see its comments");

struct FlowCold {
  // Until the flow carries MQTT: its record for idle-flow eviction
  // (Engine::Impl::IdleRec), kNil after.
  uint32_t idle = kNil;
  uint32_t generation = 0;
  // When the first FIN/RST was seen (data flushed later is not newer than this).
  Micros close_ts = 0;
  // PROXY header / WebSocket / TLS stages: only for listeners that need them.
  std::unique_ptr<FlowTransport> xport;
};

struct Engine::Impl : ReassemblySink, MqttDecoderCallbacks, TransportSink {
  Impl(Engine& e, const EngineConfig& c) : engine(e), cfg(c), table(1024) { applyPorts(); }

  void applyPorts() {
    ports.reset();
    for (uint16_t p : cfg.broker_ports) ports.set(p);
    few_ports = 0;
    if (ports.count() <= kFewPorts)
      for (size_t p = 0; p < ports.size(); ++p)
        if (ports.test(p)) few_port[few_ports++] = static_cast<uint16_t>(p);
  }

  // Is `port` a broker port? Asked twice for most packets. A few ports (the
  // usual case) are compared directly: the 8 KiB bitset, indexed by random
  // client ports, costs a cache miss now and then.
  bool watched(uint16_t port) const {
    if (few_ports == 0) return ports.test(port);
    for (uint32_t i = 0; i < few_ports; ++i)
      if (few_port[i] == port) return true;
    return false;
  }

  // --- current context for the sink callbacks (set before feeding) ---
  Flow* cur = nullptr;
  Side cur_side = Side::kClient;
  Micros cur_ts = 0;
  FlowCold& coldOf(const Flow& f) { return cold[static_cast<size_t>(&f - flows.data())]; }

  void onData(Micros ts, std::span<const uint8_t> bytes) override {
    cur_ts = ts;
    if (cur->has_xport) {
      coldOf(*cur).xport->feed(cur_side, ts, bytes, cfg.websocket, engine.stats_.transport, *this);
      return;
    }
    cur->decoder[sideIndex(cur_side)].feed(bytes, cfg.mqtt, *this);
  }
  void onGap(Micros, uint64_t bytes, GapReason reason) override {
    EngineStats& st = engine.stats_;
    ++st.gaps;
    st.gap_bytes += bytes;
    ++st.gaps_by_reason[static_cast<int>(reason)];
    cur->decoder[sideIndex(cur_side)].onGap();
    if (cur->has_xport) coldOf(*cur).xport->onGap(cur_side);
    engine.tracker_.onDataMissing(cur->conn);
  }
  void onPacket(const MqttPacket& p) override {
    ++engine.stats_.mqtt_packets[sideIndex(cur_side)][static_cast<int>(p.type)];
    if (!cur->mqtt) sessionStarted();
    if (cur_side == Side::kClient) {
      if (p.type == PacketType::kConnect) cur->decoder[sideIndex(Side::kBroker)].setProtocolLevel(p.protocol_level);
      engine.tracker_.onClientPacket(cur->conn, cur_ts, p);
    } else {
      engine.tracker_.onBrokerPacket(cur->conn, cur_ts, p);
    }
  }
  void onError(ParseError e) override { ++engine.stats_.parse_errors[static_cast<int>(e)]; }

  // --- TransportSink: the PROXY / WebSocket / TLS stages of `cur` ---
  void onMqttBytes(Side side, std::span<const uint8_t> bytes) override {
    cur->decoder[sideIndex(side)].feed(bytes, cfg.mqtt, *this);
  }
  void onMqttLost(Side side) override { cur->decoder[sideIndex(side)].onGap(); }
  void onCloseIntent(Side side) override {
    // A WebSocket Close frame: judged like that side's FIN.
    startClose(static_cast<uint32_t>(cur - flows.data()), cur_ts, side, false);
  }
  void onClientReal(const Endpoint& real) override { engine.tracker_.setClientReal(cur->conn, real); }
  void onTlsClientRecord(bool ping_like) override {
    engine.tracker_.onClientActivity(
        cur->conn, cur_ts,
        ping_like ? SessionTracker::ClientActivity::kPingLike : SessionTracker::ClientActivity::kRecord);
  }
  void onTlsEstablished() override {
    if (!cur->mqtt) sessionStarted();
    engine.tracker_.onTransportEstablished(cur->conn, cur_ts);
  }

  // --- idle flows: a list of the flows without an MQTT session yet, oldest
  // last packet first, so eviction looks at the head only (O(1) per flow).
  // Most flows carry MQTT from their second or third packet on, so what the
  // list needs lives in records of its own (reused; they grow only with the
  // most flows ever waiting at once), not in every Flow (-20 bytes each). ---
  struct IdleRec {
    uint32_t flow = kNil;
    uint32_t prev = kNil;  // records
    uint32_t next = kNil;
    Micros last_seen = 0;
    Micros first_seen = 0;  // the tracker's opened_at when the connection opens later
  };
  std::vector<IdleRec> idle_recs;
  std::vector<uint32_t> idle_free;
  uint32_t idle_head = kNil;  // records
  uint32_t idle_tail = kNil;

  void listPush(uint32_t r) {
    IdleRec& x = idle_recs[r];
    x.prev = idle_tail;
    x.next = kNil;
    if (idle_tail != kNil) idle_recs[idle_tail].next = r; else idle_head = r;
    idle_tail = r;
  }
  void listRemove(uint32_t r) {
    IdleRec& x = idle_recs[r];
    if (x.prev != kNil) idle_recs[x.prev].next = x.next; else idle_head = x.next;
    if (x.next != kNil) idle_recs[x.next].prev = x.prev; else idle_tail = x.prev;
    x.prev = x.next = kNil;
  }
  // A new flow goes on the list.
  void idleLink(uint32_t idx, Micros ts) {
    uint32_t r;
    if (!idle_free.empty()) {
      r = idle_free.back();
      idle_free.pop_back();
    } else {
      r = static_cast<uint32_t>(idle_recs.size());
      idle_recs.emplace_back();
    }
    idle_recs[r] = IdleRec{idx, kNil, kNil, ts, ts};
    listPush(r);
    cold[idx].idle = r;
  }
  // Off the list for good.
  void idleUnlink(uint32_t idx) {
    FlowCold& c = cold[idx];
    if (c.idle == kNil) return;
    listRemove(c.idle);
    idle_free.push_back(c.idle);
    c.idle = kNil;
  }
  void idleTouch(uint32_t idx, Micros ts) {
    const uint32_t r = cold[idx].idle;
    if (r == kNil) return;
    IdleRec& x = idle_recs[r];
    if (ts > x.last_seen) x.last_seen = ts;
    if (idle_tail != r) {
      listRemove(r);
      listPush(r);
    }
  }
  // The first MQTT packet (or TLS session) of `cur`: no longer evictable as idle.
  void sessionStarted() {
    cur->mqtt = true;
    idleUnlink(static_cast<uint32_t>(cur - flows.data()));
  }
  // Checked for every packet, inline; the drains themselves stay out of line.
  bool idleDue(Micros now) const {
    return cfg.idle_flow_timeout > 0 && idle_head != kNil &&
           now - idle_recs[idle_head].last_seen >= cfg.idle_flow_timeout;
  }
  bool settleDue(Micros now) const { return !settle_queue.empty() && settle_queue.front().at <= now; }
  // Engine::advanceTo(), here so that the per-frame call in onFrames() is
  // inlined (usually nothing is due: a few compares).
  void advanceTo(Micros now) {
    engine.tracker_.advanceTo(now);
    if (settleDue(now)) drainSettles(now);
    if (idleDue(now)) drainIdle(now);
  }

  [[gnu::noinline]] void drainIdle(Micros now) {
    if (cfg.idle_flow_timeout <= 0) return;
    while (idle_head != kNil && now - idle_recs[idle_head].last_seen >= cfg.idle_flow_timeout) {
      const uint32_t idx = idle_recs[idle_head].flow;
      Flow& f = flows[idx];
      idleUnlink(idx);
      // A closing flow is judged by its settle window (at most close_settle away).
      if (f.closing) continue;
      flushStreams(f, now);  // returns its buffered bytes to the budget
      if (f.mqtt) continue;  // the flushed bytes held MQTT after all: a session now
      ++engine.stats_.flows_evicted[static_cast<int>(EvictReason::kIdleTimeout)];
      engine.tracker_.discard(f.conn);
      forget(idx);
    }
  }
  const PortOptions* portOptions(uint16_t port) const {
    for (const auto& o : cfg.port_options)
      if (o.port == port) return &o;
    return nullptr;
  }

  uint32_t allocFlow() {
    uint32_t idx;
    if (!free_flows.empty()) {
      idx = free_flows.back();
      free_flows.pop_back();
    } else {
      idx = static_cast<uint32_t>(flows.size());
      flows.emplace_back();
      cold.emplace_back();
      keys.emplace_back();
    }
    return idx;
  }

  ClientTcp clientTcp(const Flow& f, Side closed_by, bool rst) const {
    if (!f.client_acked) return ClientTcp::kUnknown;
    if (closed_by == Side::kClient) return ClientTcp::kResponsive;
    // A broker RST asks for no acknowledgement, so ACKs from before it prove
    // nothing about the client now.
    if (rst || !f.broker_sent) return ClientTcp::kUnknown;
    return seqAfter(f.broker_end, f.client_ack) ? ClientTcp::kUnresponsive : ClientTcp::kResponsive;
  }

  void flushStreams(Flow& f, Micros ts) {
    cur = &f;
    for (Side s : {Side::kClient, Side::kBroker}) {
      cur_side = s;
      f.reasm[sideIndex(s)].flush(ts, *this, engine.budget_);
    }
  }

  // Judge the close and forget the flow.
  void settle(uint32_t idx, Micros ts) {
    Flow& f = flows[idx];
    const FlowCold& c = cold[idx];
    // Bytes still buffered were sent before the close began: stamp them no later.
    flushStreams(f, f.closing ? std::min(ts, c.close_ts) : ts);
    if (c.xport && c.xport->proxyLocal() && !f.mqtt) {
      // A PROXY header naming no client, then no MQTT: the proxy's own health
      // check, not a client that vanished. It leaves no event.
      engine.tracker_.discard(f.conn);
    } else if (engine.tracker_.isOpen(f.conn)) {
      engine.tracker_.onClosed(f.conn, clientTcp(f, f.close_side, f.close_rst));
    }
    forget(idx);
  }

  // Releases the flow slot. The generation survives the reset: settle-queue
  // entries of an earlier occupant must not match the next one.
  void forget(uint32_t idx) {
    idleUnlink(idx);
    table.erase(keys[idx], keys);
    FlowCold& c = cold[idx];
    if (c.xport) --xports;
    const uint32_t generation = c.generation + 1;
    flows[idx] = Flow{};
    c = FlowCold{};
    c.generation = generation;
    free_flows.push_back(idx);
  }

  // A new flow entry for `key` with tracker connection `h`.
  uint32_t createFlow(const FlowKey& key, ConnHandle h, bool midstream, Micros ts) {
    const uint32_t idx = allocFlow();
    keys[idx] = key;
    table.insert(key, idx, keys);
    Flow& nf = flows[idx];
    nf.in_use = true;
    nf.conn = h;
    idleLink(idx, ts);
    if (midstream) {
      nf.decoder[0].startMidstream();
      nf.decoder[1].startMidstream();
    }
    if (const PortOptions* po = portOptions(key.broker.port);
        po != nullptr && (po->transport != Transport::kTcp || po->proxy_protocol)) {
      cold[idx].xport = std::make_unique<FlowTransport>(*po, midstream);
      nf.has_xport = true;
      ++xports;
      if (h != kNoConn) applyTransport(nf);
    }
    return idx;
  }

  void applyTransport(const Flow& f) {
    const PortOptions* po = portOptions(keys[static_cast<size_t>(&f - flows.data())].broker.port);
    if (po == nullptr) return;
    engine.tracker_.setTransport(f.conn, po->transport,
                                 po->transport == Transport::kTls ? po->keepalive_seconds : 0);
  }

  void startClose(uint32_t idx, Micros ts, Side side, bool rst) {
    Flow& f = flows[idx];
    if (f.closing) return;
    f.closing = true;
    cold[idx].close_ts = ts;
    f.close_side = side;
    f.close_rst = rst;
    engine.tracker_.onCloseStarted(f.conn, ts, side, rst);
    if (!rst) {
      // The queue must stay in deadline order for drainSettles(): after a
      // reload shortened close_settle (or with a timestamp that went
      // backwards), a new deadline waits for the one queued before it.
      Micros at = ts + cfg.close_settle;
      if (!settle_queue.empty() && at < settle_queue.back().at) at = settle_queue.back().at;
      settle_queue.push_back({at, idx, cold[idx].generation});
    }
  }

  [[gnu::noinline]] void drainSettles(Micros now) {
    while (!settle_queue.empty() && settle_queue.front().at <= now) {
      Pending p = settle_queue.front();
      settle_queue.pop_front();
      if (p.flow < flows.size() && flows[p.flow].in_use && cold[p.flow].generation == p.generation &&
          flows[p.flow].closing)
        settle(p.flow, p.at);
    }
  }

  // Which side sent a segment of a watched connection, and its flow key;
  // false when neither port is a broker port.
  bool flowKey(const TcpSegment& seg, Side& side, FlowKey& key) const {
    if (watched(seg.dst.port)) {
      side = Side::kClient;
      key = FlowKey{seg.src, seg.dst};
    } else if (watched(seg.src.port)) {
      side = Side::kBroker;
      key = FlowKey{seg.dst, seg.src};
    } else {
      return false;
    }
    return true;
  }

  // What clientTcp() judges a close on: the end of what the broker sent (data
  // and FIN) and the client's highest acknowledgement.
  [[gnu::always_inline]] static void recordTcpFacts(Flow& f, const TcpSegment& seg, Side side, bool syn,
                                                    bool fin, bool ack) {
    if (side == Side::kBroker) {
      const uint32_t end = seg.seq + seg.payload_len + (fin ? 1 : 0) + (syn ? 1 : 0);
      if (!f.broker_sent || seqAfter(end, f.broker_end)) f.broker_end = end;
      f.broker_sent = f.broker_sent || seg.payload_len > 0 || fin;
    } else if (ack) {
      if (!f.client_acked || seqAfter(seg.ack, f.client_ack)) f.client_ack = seg.ack;
      f.client_acked = true;
    }
  }

  // One decoded segment; hash = hashFlowKey(key). `hint`: a slot that may
  // hold the flow (the look-ahead's candidate), or FlowTable::kNone.
  void segment(Micros ts, TcpSegment& seg, Side side, const FlowKey& key, uint64_t hash, uint32_t hint) {
    // Every flow in use is in the table under its key, and a key is there
    // once: a slot in use with this key is what find() would return.
    const uint32_t idx = hint != FlowTable::kNone && flows[hint].in_use && keys[hint] == key
                             ? hint
                             : table.find(key, hash, keys);
    if (idx != FlowTable::kNone && established(ts, seg, side, flows[idx])) return;
    onSegment(ts, seg, side, key, idx);
  }

  // The usual segment, in a few compares: an ACK without SYN, FIN or RST on
  // a plain MQTT flow whose session is under way, next in order on both
  // sides, its MQTT packets whole. It does exactly what onSegment() does for
  // such a segment (inline reassembly paths, idleTouch() a no-op: a flow
  // that carried MQTT is off the idle list) minus the virtual sink calls;
  // false, having changed nothing, for anything else.
  bool established(Micros ts, const TcpSegment& seg, Side side, Flow& f) {
    if ((seg.flags & (tcpflag::kSyn | tcpflag::kFin | tcpflag::kRst | tcpflag::kAck)) != tcpflag::kAck ||
        f.conn == kNoConn || !f.mqtt || f.closing || f.has_xport)
      return false;
    const int si = sideIndex(side);
    const uint32_t len = seg.payload_len;
    StreamReassembler& in = f.reasm[si];
    MqttDecoder& dec = f.decoder[si];
    if (!in.nextInOrder(seg.seq, seg.payload.size(), len) || !f.reasm[1 - si].ackIdle() ||
        (len > 0 && !dec.atBoundary()))
      return false;
    recordTcpFacts(f, seg, side, /*syn=*/false, /*fin=*/false, /*ack=*/true);
    if (len == 0) return true;
    in.consumed(seg.seq, len);
    cur = &f;
    cur_side = side;
    cur_ts = ts;
    // Impl::onPacket named directly: no virtual call per packet.
    const size_t used =
        dec.feedWhole(seg.payload.data(), len, cfg.mqtt, [this](const MqttPacket& p) { Impl::onPacket(p); });
    if (used < len) dec.feed(seg.payload.subspan(used), cfg.mqtt, *this);
    return true;
  }

  // The general path; idx = the flow of key, or FlowTable::kNone.
  void onSegment(Micros ts, TcpSegment& seg, Side side, const FlowKey& key, uint32_t idx) {
    EngineStats& st = engine.stats_;
    const bool syn = seg.flags & tcpflag::kSyn;
    const bool fin = seg.flags & tcpflag::kFin;
    const bool rst = seg.flags & tcpflag::kRst;
    const bool ack = seg.flags & tcpflag::kAck;

    // A fresh SYN from the client on a flow we still hold: the old connection
    // ended without us seeing it settle; judge it now and start over.
    if (idx != FlowTable::kNone && syn && !ack && side == Side::kClient && flows[idx].reasm[0].started() &&
        seg.seq + 1 != flows[idx].reasm[0].nextSeq()) {
      startClose(idx, ts, Side::kClient, false);
      settle(idx, ts);
      idx = FlowTable::kNone;
    }
    if (idx == FlowTable::kNone) {
      // Only a client SYN or data opens a flow: a stray SYN/ACK, FIN, RST or
      // pure ACK of a connection already forgotten has nothing to follow.
      if (!(syn && !ack && side == Side::kClient) && seg.payload_len == 0) {
        ++st.late_segments;
        return;
      }
      if (table.size() >= cfg.max_flows) {
        ++st.flows_evicted[static_cast<int>(EvictReason::kTableFull)];
        return;
      }
      const bool midstream = !(syn && !ack);
      // A bare SYN is only an attempt: the connection is tracked once the
      // broker accepts it (SYN/ACK) or data flows, so refused attempts and SYN
      // floods never become "connections".
      ConnHandle h = kNoConn;
      if (midstream) {
        h = engine.tracker_.open(ts, key.client, key.broker, true);
        if (h == kNoConn) {
          ++st.flows_evicted[static_cast<int>(EvictReason::kTrackerFull)];
          return;
        }
      }
      idx = createFlow(key, h, midstream, ts);
      ++st.tcp_flows;
    }
    idleTouch(idx, ts);
    Flow& f = flows[idx];
    if (f.conn == kNoConn) {
      if (rst || fin) {  // refused or abandoned before it was established
        flushStreams(f, ts);
        forget(idx);
        return;
      }
      if (seg.payload_len > 0 || (side == Side::kBroker && syn && ack)) {
        // A flow without a connection has not carried MQTT: its record is there.
        f.conn = engine.tracker_.open(idle_recs[cold[idx].idle].first_seen, key.client, key.broker, false);
        if (f.conn == kNoConn) {
          ++st.flows_evicted[static_cast<int>(EvictReason::kTrackerFull)];
          flushStreams(f, ts);
          forget(idx);
          return;
        }
        if (f.has_xport) applyTransport(f);
      }
    }
    const int si = sideIndex(side);
    const int oi = 1 - si;

    recordTcpFacts(f, seg, side, syn, fin, ack);

    cur = &f;
    if (ack && f.reasm[oi].started()) {
      cur_side = static_cast<Side>(oi);
      f.reasm[oi].onPeerAck(ts, seg.ack, *this, engine.budget_);
    }
    cur_side = side;
    cur_ts = ts;
    f.reasm[si].onSegment(ts, seg.seq, syn, fin, seg.payload, seg.payload_len, *this, engine.budget_,
                          cfg.flow_buffer_bytes, st.reassembly);
    if (!f.in_use) return;

    // TLS: the client's close_notify (or a record its size) right before the first FIN/RST,
    // whichever side sends it (a broker may close first on the client's DISCONNECT).
    if ((rst || fin) && !f.closing && f.has_xport && cold[idx].xport->tlsCloseIntent(ts))
      engine.tracker_.onClientActivity(f.conn, ts, SessionTracker::ClientActivity::kCloseNotify);
    if (rst) {
      startClose(idx, ts, side, true);
      settle(idx, ts);
      return;
    }
    if (fin) {
      f.setFin(side);
      startClose(idx, ts, side, false);
      if (f.fin(otherSide(side))) settle(idx, ts);
    }
  }

  Engine& engine;
  EngineConfig cfg;
  std::bitset<65536> ports;
  static constexpr uint32_t kFewPorts = 4;
  uint16_t few_port[kFewPorts] = {};
  uint32_t few_ports = 0;  // 0: more than kFewPorts, use `ports`
  FlowTable table;
  // Only ever grow (freed slots are reused): a slot the table holds, even one
  // the look-ahead read before a flow was forgotten, is a valid index.
  std::vector<Flow> flows;
  std::vector<FlowCold> cold;  // beside flows, same index
  std::vector<FlowKey> keys;
  std::vector<uint32_t> free_flows;
  size_t xports = 0;  // flows with a FlowTransport
  struct Pending {
    Micros at;
    uint32_t flow;
    uint32_t generation;
  };
  // Kept in deadline order (startClose clamps), so FIFO order is deadline order.
  std::deque<Pending> settle_queue;
};

Engine::Engine(const EngineConfig& cfg, EventSink& sink)
    : impl_(nullptr), tracker_(cfg.tracker, sink) {
  budget_.limit = cfg.total_buffer_bytes;
  impl_ = new Impl(*this, cfg);
}

Engine::~Engine() { delete impl_; }

void Engine::advanceTo(Micros now) { impl_->advanceTo(now); }

void Engine::onFrame(Micros ts, int link_type, std::span<const uint8_t> frame) {
  ++stats_.packets;
  stats_.bytes += frame.size();
  advanceTo(ts);
  TcpSegment seg;
  DecodeStatus st = decodePacket(link_type, frame, seg);
  ++stats_.decode_status[static_cast<int>(st)];
  if (st != DecodeStatus::kOk) return;
  Side side;
  FlowKey key;
  if (!impl_->flowKey(seg, side, key)) {
    ++stats_.not_broker_port;
    return;
  }
  impl_->segment(ts, seg, side, key, hashFlowKey(key), FlowTable::kNone);
}

// Each frame is processed exactly as onFrame() does it, in order; only the
// loads are started early. With many connections the state of a packet (flow
// table bucket, flow key, flow, tracker slot, timer) is rarely still in the
// cache, and one packet after another each waits for those misses in turn.
// Decoding and hashing a few frames ahead (both pure functions of the frame)
// and walking the same chain with prefetches -- bucket, then flow, then
// connection, each a few frames after the previous link was requested --
// overlaps the misses of consecutive frames. The look-ahead only reads state,
// and what it reads may be stale by the time the frame is processed (a flow
// created or closed in between): then a prefetch was wasted, nothing else.
void Engine::onFrames(int link_type, std::span<const Frame> frames) {
  // Distance, in frames, between the stages of the look-ahead: enough work
  // between two links of the chain to cover a miss to memory.
  constexpr size_t kStep = 3;
  // decode -> bucket -> flow -> connection -> QoS record -> process.
  constexpr size_t kStages = 4;
  constexpr size_t kRing = 16;  // a power of two >= kStages * kStep + 1
  struct Ahead {
    TcpSegment seg;
    uint64_t hash = 0;
    DecodeStatus status = DecodeStatus::kOk;
    Side side = Side::kClient;
    bool watched = false;          // a segment of a broker port: key and hash valid
    QosRead qos = QosRead::kNone;  // its first MQTT packet reads the QoS record
    uint32_t slot = FlowTable::kNone;
    FlowKey key;
  };
  Ahead ring[kRing];
  Impl& im = *impl_;
  const size_t n = frames.size();
  for (size_t i = 0; i < n + kStages * kStep; ++i) {
    if (i < n) {  // decode, hash, request the bucket
      Ahead& a = ring[i % kRing];
      a.status = decodePacket(link_type, frames[i].bytes, a.seg);
      a.watched = a.status == DecodeStatus::kOk && im.flowKey(a.seg, a.side, a.key);
      if (a.watched) {
        a.hash = hashFlowKey(a.key);
        im.table.prefetch(a.hash);
        a.qos = a.seg.payload.empty() ? QosRead::kNone : readsQosRecord(a.seg.payload[0]);
      }
    }
    if (i >= kStep && i - kStep < n) {  // bucket -> request the flow and its key
      Ahead& a = ring[(i - kStep) % kRing];
      a.slot = a.watched ? im.table.candidate(a.hash) : FlowTable::kNone;
      if (a.slot != FlowTable::kNone) {
        const char* f = reinterpret_cast<const char*>(&im.flows[a.slot]);
        for (size_t off = 0; off < sizeof(Flow); off += 64) __builtin_prefetch(f + off);
        // Keys are 40 bytes: every other one spans two lines.
        const char* k = reinterpret_cast<const char*>(&im.keys[a.slot]);
        __builtin_prefetch(k);
        __builtin_prefetch(k + sizeof(FlowKey) - 1);
      }
    }
    if (i >= 2 * kStep && i - 2 * kStep < n) {  // flow -> request its connection
      const Ahead& a = ring[(i - 2 * kStep) % kRing];
      if (a.slot != FlowTable::kNone) tracker_.prefetch(im.flows[a.slot].conn);
    }
    // connection -> its QoS record. Only for the packets that read it (a
    // tenth or so): requested for every packet it cost more than it saved.
    if (i >= 3 * kStep && i - 3 * kStep < n) {
      const Ahead& a = ring[(i - 3 * kStep) % kRing];
      if (a.qos != QosRead::kNone && a.slot != FlowTable::kNone)
        tracker_.prefetchExtra(im.flows[a.slot].conn, a.qos == QosRead::kSender ? a.side : otherSide(a.side));
    }
    if (i >= kStages * kStep) {  // process, exactly as onFrame()
      const size_t j = i - kStages * kStep;
      Ahead& a = ring[j % kRing];
      const Micros ts = frames[j].ts;
      ++stats_.packets;
      stats_.bytes += frames[j].bytes.size();
      im.advanceTo(ts);
      ++stats_.decode_status[static_cast<int>(a.status)];
      if (a.status != DecodeStatus::kOk) continue;
      if (!a.watched) {
        ++stats_.not_broker_port;
        continue;
      }
      im.segment(ts, a.seg, a.side, a.key, a.hash, a.slot);
    }
  }
}

void FrameBatcher::addSlow(Micros ts, std::span<const uint8_t> frame) {
  // With few flows their state stays in the cache and the look-ahead has
  // nothing to hide: the copy would be pure overhead.
  if (direct()) {
    engine_.onFrame(ts, link_type_, frame);
    return;
  }
  if (count_ == kFrames || used_ + frame.size() > kBytes) flush();
  if (frame.size() > kBytes) {  // too big to copy: on its own, in order
    engine_.onFrame(ts, link_type_, frame);
    return;
  }
  copy(ts, frame);
}

void FrameBatcher::addInPlaceSlow(Micros ts, std::span<const uint8_t> frame) {
  if (direct()) {
    engine_.onFrame(ts, link_type_, frame);
    return;
  }
  if (count_ == kFrames) flush();
  frames_[count_++] = Engine::Frame{ts, frame};
}

void FrameBatcher::flush() {
  if (count_ == 0) return;
  engine_.onFrames(link_type_, {frames_, count_});
  count_ = 0;
  used_ = 0;
}

bool Engine::restore(const ConnectionInfo& saved, Micros now) {
  const FlowKey key{saved.client, saved.broker};
  if (!impl_->ports.test(saved.broker.port) || impl_->table.find(key, impl_->keys) != FlowTable::kNone) return false;
  if (impl_->table.size() >= impl_->cfg.max_flows) {
    ++stats_.flows_evicted[static_cast<int>(EvictReason::kTableFull)];
    return false;
  }
  const ConnHandle h = tracker_.restore(saved);
  if (h == kNoConn) {
    ++stats_.flows_evicted[static_cast<int>(EvictReason::kTrackerFull)];
    return false;
  }
  // Its TCP stream resumes somewhere in the middle; the decoders know the level.
  const uint32_t idx = impl_->createFlow(key, h, /*midstream=*/true, now);
  for (MqttDecoder& d : impl_->flows[idx].decoder) d.setProtocolLevel(saved.protocol_level);
  ++stats_.restored;
  return true;
}

void Engine::finish(Micros end_ts) {
  advanceTo(end_ts);
  // Closes still inside their settle window are judged with what we have.
  if (!impl_->settle_queue.empty()) impl_->drainSettles(impl_->settle_queue.back().at);
  for (uint32_t i = 0; i < impl_->flows.size(); ++i)
    if (impl_->flows[i].in_use) impl_->flushStreams(impl_->flows[i], end_ts);
  tracker_.finish(end_ts);
}

void Engine::onCaptureDrops(uint64_t dropped) {
  if (dropped == 0) return;
  for (auto& f : impl_->flows)
    if (f.in_use) tracker_.onDataMissing(f.conn);
}

void Engine::reconfigure(const EngineConfig& cfg) {
  impl_->cfg = cfg;
  impl_->applyPorts();
  budget_.limit = cfg.total_buffer_bytes;
  tracker_.reconfigure(cfg.tracker);
}

size_t Engine::openFlows() const { return impl_->table.size(); }

size_t Engine::memoryBytes() const {
  return tracker_.memoryBytes() + impl_->table.memoryBytes() + impl_->flows.capacity() * sizeof(Flow) +
         impl_->cold.capacity() * sizeof(FlowCold) + impl_->keys.capacity() * sizeof(FlowKey) +
         impl_->xports * sizeof(FlowTransport) + budget_.used +
         impl_->idle_recs.capacity() * sizeof(Impl::IdleRec) + impl_->idle_free.capacity() * sizeof(uint32_t);
}

}  // namespace mqttlive
