#include "mqttlive/flow_transport.h"

namespace mqttlive {

namespace {

struct WsAdapter : WebSocketCallbacks {
  Side side;
  TransportStats& stats;
  TransportSink& sink;
  WsAdapter(Side s, TransportStats& st, TransportSink& k) : side(s), stats(st), sink(k) {}
  void onWsPayload(std::span<const uint8_t> bytes) override { sink.onMqttBytes(side, bytes); }
  void onWsPayloadLost() override { sink.onMqttLost(side); }
  void onWsUpgraded() override {
    // Counted once per connection: on the broker's 101.
    if (side == Side::kBroker) ++stats.ws_upgrades;
  }
  void onWsControl(WsOpcode op) override {
    // Pings and pongs are not MQTT activity (the keepalive rule counts MQTT
    // control packets only); a Close is the WebSocket-level close intent.
    if (op != WsOpcode::kClose) return;
    ++stats.ws_close_frames;
    sink.onCloseIntent(side);
  }
  void onWsError(WsError e) override { ++stats.ws_errors[static_cast<int>(e)]; }
};

struct TlsAdapter : TlsTracker::Callbacks {
  TransportStats& stats;
  TransportSink& sink;
  TlsAdapter(TransportStats& st, TransportSink& k) : stats(st), sink(k) {}
  void onTlsClientRecord(bool ping_like) override { sink.onTlsClientRecord(ping_like); }
  void onTlsEstablished() override {
    ++stats.tls_established;
    sink.onTlsEstablished();
  }
  void onTlsError(TlsError e) override { ++stats.tls_errors[static_cast<int>(e)]; }
};

}  // namespace

namespace {
constexpr int kProxyErrors = static_cast<int>(ProxyError::kCount);
constexpr int kWsErrors = static_cast<int>(WsError::kCount);
}  // namespace

const char* transportErrorName(int i) {
  if (i < kProxyErrors) return toString(static_cast<ProxyError>(i));
  i -= kProxyErrors;
  if (i < kWsErrors) return toString(static_cast<WsError>(i));
  return toString(static_cast<TlsError>(i - kWsErrors));
}

uint64_t transportErrorCount(const TransportStats& s, int i) {
  if (i < kProxyErrors) return s.proxy_errors[i];
  i -= kProxyErrors;
  if (i < kWsErrors) return s.ws_errors[i];
  return s.tls_errors[i - kWsErrors];
}

FlowTransport::FlowTransport(const PortOptions& options, bool midstream) : transport_(options.transport) {
  if (options.proxy_protocol && !midstream) proxy_ = std::make_unique<ProxyHeaderParser>();
  if (transport_ == Transport::kWebsocket) {
    auto& ws = stage_.emplace<WsPair>();
    if (midstream)
      for (auto& d : ws.dir) d.startMidstream();
  } else if (transport_ == Transport::kTls) {
    auto& tls = stage_.emplace<TlsTracker>();
    if (midstream) tls.startMidstream();
  }
}

void FlowTransport::feed(Side side, Micros ts, std::span<const uint8_t> bytes, const WebSocketLimits& ws_limits,
                         TransportStats& stats, TransportSink& sink) {
  if (side == Side::kClient && proxy_) {
    size_t used = 0;
    const auto r = proxy_->feed(bytes, used);
    if (r == ProxyHeaderParser::Result::kNeedMore) return;
    if (r == ProxyHeaderParser::Result::kDone) {
      ++stats.proxy_headers;
      if (proxy_->malformed()) ++stats.proxy_errors[static_cast<int>(ProxyError::kBadHeader)];
      if (proxy_->hasSource()) {
        sink.onClientReal(proxy_->source());
      } else if (proxy_->local()) {
        proxy_local_ = true;
        ++stats.proxy_local;
      }
    } else {
      // No header after all (a client that reached the broker directly): what
      // was held back is the stream itself.
      ++stats.proxy_errors[static_cast<int>(ProxyError::kBadHeader)];
      if (!proxy_->kept().empty()) feedStage(side, ts, proxy_->kept(), ws_limits, stats, sink);
    }
    proxy_.reset();
    bytes = bytes.subspan(used);
    if (bytes.empty()) return;
  }
  feedStage(side, ts, bytes, ws_limits, stats, sink);
}

void FlowTransport::feedStage(Side side, Micros ts, std::span<const uint8_t> bytes,
                              const WebSocketLimits& ws_limits, TransportStats& stats, TransportSink& sink) {
  if (auto* ws = std::get_if<WsPair>(&stage_)) {
    WsAdapter a(side, stats, sink);
    ws->dir[static_cast<int>(side)].feed(bytes, ws_limits, a);
  } else if (auto* tls = std::get_if<TlsTracker>(&stage_)) {
    TlsAdapter a(stats, sink);
    tls->feed(side, ts, bytes, a);
  } else {
    sink.onMqttBytes(side, bytes);
  }
}

void FlowTransport::onGap(Side side) {
  // A gap inside the PROXY header: it is lost, and so is the real address.
  if (side == Side::kClient) proxy_.reset();
  if (auto* ws = std::get_if<WsPair>(&stage_)) ws->dir[static_cast<int>(side)].onGap();
  if (auto* tls = std::get_if<TlsTracker>(&stage_)) tls->onGap(side);
}

bool FlowTransport::tlsCloseIntent(Micros ts) const {
  const auto* tls = std::get_if<TlsTracker>(&stage_);
  return tls != nullptr && tls->closeIntentBefore(ts);
}

}  // namespace mqttlive
