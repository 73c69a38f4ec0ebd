#include "mqttlive/engine.h"

#include <bitset>
#include <deque>
#include <memory>

namespace mqttlive {

const char* toString(EvictReason r) {
  switch (r) {
    case EvictReason::kTableFull: return "table_full";
    case EvictReason::kTrackerFull: return "tracker_full";
    case EvictReason::kCount: break;
  }
  return "unknown";
}

namespace {
inline bool seqAfter(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) > 0; }
inline int sideIndex(Side s) { return static_cast<int>(s); }
}  // namespace

struct Flow {
  StreamReassembler reasm[2];
  MqttDecoder decoder[2];
  ConnHandle conn = kNoConn;
  uint32_t generation = 0;
  // TCP facts for client_tcp: the end of what the broker sent (data and FIN),
  // and the highest acknowledgement from the client.
  uint32_t broker_end = 0;
  uint32_t client_ack = 0;
  bool broker_sent = false;
  bool client_acked = false;
  bool fin[2] = {false, false};
  bool closing = false;
  bool in_use = false;
};

struct Engine::Impl : ReassemblySink, MqttDecoderCallbacks {
  Impl(Engine& e, const EngineConfig& c) : engine(e), cfg(c), table(1024) { applyPorts(); }

  void applyPorts() {
    ports.reset();
    for (uint16_t p : cfg.broker_ports) ports.set(p);
  }

  // --- current context for the sink callbacks (set before feeding) ---
  Flow* cur = nullptr;
  Side cur_side = Side::kClient;
  Micros cur_ts = 0;

  void onData(Micros ts, std::span<const uint8_t> bytes) override {
    cur_ts = ts;
    cur->decoder[sideIndex(cur_side)].feed(bytes, cfg.mqtt, *this);
  }
  void onGap(Micros, uint64_t bytes, GapReason reason) override {
    EngineStats& st = engine.stats_;
    ++st.gaps;
    st.gap_bytes += bytes;
    ++st.gaps_by_reason[static_cast<int>(reason)];
    cur->decoder[sideIndex(cur_side)].onGap();
    engine.tracker_.onDataMissing(cur->conn);
  }
  void onPacket(const MqttPacket& p) override {
    ++engine.stats_.mqtt_packets[sideIndex(cur_side)][static_cast<int>(p.type)];
    if (cur_side == Side::kClient) {
      if (p.type == PacketType::kConnect) cur->decoder[sideIndex(Side::kBroker)].setProtocolLevel(p.protocol_level);
      engine.tracker_.onClientPacket(cur->conn, cur_ts, p);
    } else {
      engine.tracker_.onBrokerPacket(cur->conn, cur_ts, p);
    }
  }
  void onError(ParseError e) override { ++engine.stats_.parse_errors[static_cast<int>(e)]; }

  uint32_t allocFlow() {
    uint32_t idx;
    if (!free_flows.empty()) {
      idx = free_flows.back();
      free_flows.pop_back();
    } else {
      idx = static_cast<uint32_t>(flows.size());
      flows.emplace_back();
      keys.emplace_back();
    }
    return idx;
  }

  ClientTcp clientTcp(const Flow& f, Side closed_by) const {
    if (!f.client_acked) return ClientTcp::kUnknown;
    if (closed_by == Side::kClient) return ClientTcp::kResponsive;
    if (!f.broker_sent) return ClientTcp::kUnknown;
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
    flushStreams(f, ts);
    const ConnectionInfo* info = engine.tracker_.info(f.conn);
    Side closed_by = Side::kClient;
    if (info != nullptr) {
      // The tracker recorded who closed first; recover it from the FIN/RST order we saw.
      closed_by = first_close_side[idx];
      engine.tracker_.onClosed(f.conn, clientTcp(f, closed_by));
    }
    table.erase(keys[idx], keys);
    f = Flow{};
    ++f.generation;
    free_flows.push_back(idx);
  }

  void startClose(uint32_t idx, Micros ts, Side side, bool rst) {
    Flow& f = flows[idx];
    if (f.closing) return;
    f.closing = true;
    first_close_side[idx] = side;
    engine.tracker_.onCloseStarted(f.conn, ts, side, rst);
    if (!rst) settle_queue.push_back({ts + cfg.close_settle, idx, f.generation});
  }

  void drainSettles(Micros now) {
    while (!settle_queue.empty() && settle_queue.front().at <= now) {
      Pending p = settle_queue.front();
      settle_queue.pop_front();
      if (p.flow < flows.size() && flows[p.flow].in_use && flows[p.flow].generation == p.generation &&
          flows[p.flow].closing)
        settle(p.flow, p.at);
    }
  }

  void onSegment(Micros ts, TcpSegment& seg) {
    EngineStats& st = engine.stats_;
    Side side;
    if (ports.test(seg.dst.port)) {
      side = Side::kClient;
    } else if (ports.test(seg.src.port)) {
      side = Side::kBroker;
    } else {
      ++st.not_broker_port;
      return;
    }
    FlowKey key = side == Side::kClient ? FlowKey{seg.src, seg.dst} : FlowKey{seg.dst, seg.src};
    const bool syn = seg.flags & tcpflag::kSyn;
    const bool fin = seg.flags & tcpflag::kFin;
    const bool rst = seg.flags & tcpflag::kRst;
    const bool ack = seg.flags & tcpflag::kAck;

    uint32_t idx = table.find(key, keys);
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
      ConnHandle h = engine.tracker_.open(ts, key.client, key.broker, midstream);
      if (h == kNoConn) {
        ++st.flows_evicted[static_cast<int>(EvictReason::kTrackerFull)];
        return;
      }
      idx = allocFlow();
      if (first_close_side.size() < flows.size()) first_close_side.resize(flows.size());
      keys[idx] = key;
      table.insert(key, idx, keys);
      Flow& nf = flows[idx];
      nf.in_use = true;
      nf.conn = h;
      if (midstream) {
        nf.decoder[0].startMidstream();
        nf.decoder[1].startMidstream();
      }
      ++st.tcp_flows;
    }
    Flow& f = flows[idx];
    const int si = sideIndex(side);
    const int oi = 1 - si;

    if (side == Side::kBroker) {
      uint32_t end = seg.seq + seg.payload_len + (fin ? 1 : 0) + (syn ? 1 : 0);
      if (!f.broker_sent || seqAfter(end, f.broker_end)) f.broker_end = end;
      f.broker_sent = f.broker_sent || seg.payload_len > 0 || fin;
    } else if (ack) {
      if (!f.client_acked || seqAfter(seg.ack, f.client_ack)) f.client_ack = seg.ack;
      f.client_acked = true;
    }

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

    if (rst) {
      startClose(idx, ts, side, true);
      settle(idx, ts);
      return;
    }
    if (fin) {
      f.fin[si] = true;
      startClose(idx, ts, side, false);
      if (f.fin[oi]) settle(idx, ts);
    }
  }

  Engine& engine;
  EngineConfig cfg;
  std::bitset<65536> ports;
  FlowTable table;
  std::vector<Flow> flows;
  std::vector<FlowKey> keys;
  std::vector<Side> first_close_side;
  std::vector<uint32_t> free_flows;
  struct Pending {
    Micros at;
    uint32_t flow;
    uint32_t generation;
  };
  // Settle windows are all the same length, so FIFO order is deadline order.
  std::deque<Pending> settle_queue;
};

Engine::Engine(const EngineConfig& cfg, EventSink& sink)
    : impl_(nullptr), tracker_(cfg.tracker, sink) {
  budget_.limit = cfg.total_buffer_bytes;
  impl_ = new Impl(*this, cfg);
}

Engine::~Engine() { delete impl_; }

void Engine::onFrame(Micros ts, int link_type, std::span<const uint8_t> frame) {
  ++stats_.packets;
  stats_.bytes += frame.size();
  advanceTo(ts);
  TcpSegment seg;
  DecodeStatus st = decodePacket(link_type, frame, seg);
  ++stats_.decode_status[static_cast<int>(st)];
  if (st != DecodeStatus::kOk) return;
  impl_->onSegment(ts, seg);
}

void Engine::advanceTo(Micros now) {
  tracker_.advanceTo(now);
  impl_->drainSettles(now);
}

void Engine::finish(Micros end_ts) {
  advanceTo(end_ts);
  // Closes still inside their settle window are judged with what we have.
  while (!impl_->settle_queue.empty()) impl_->drainSettles(impl_->settle_queue.back().at);
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
         impl_->keys.capacity() * sizeof(FlowKey) + budget_.used;
}

}  // namespace mqttlive
