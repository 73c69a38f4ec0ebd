// The stages between TCP reassembly and the MQTT decoder for listeners that
// are not plain MQTT over TCP: a PROXY protocol header at the start of the
// client's stream, WebSocket framing, or TLS record tracking. One per flow,
// allocated only for such listeners (plain MQTT flows have none).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <variant>

#include "mqttlive/events.h"
#include "mqttlive/proxy_protocol.h"
#include "mqttlive/tls_tracker.h"
#include "mqttlive/websocket_decoder.h"

namespace mqttlive {

// Options of one watched broker port (EngineConfig::port_options, filled from
// the listeners by applyListeners). A watched port without an entry is plain
// MQTT over TCP without a PROXY header.
struct PortOptions {
  uint16_t port = 0;
  Transport transport = Transport::kTcp;
  bool proxy_protocol = false;     // client streams start with a PROXY v1/v2 header
  uint16_t keepalive_seconds = 0;  // TLS: keepalive to assume; 0 = infer from the record cadence
  friend bool operator==(const PortOptions&, const PortOptions&) = default;
};

// Counters of the transport stages (EngineStats::transport).
struct TransportStats {
  uint64_t ws_errors[static_cast<int>(WsError::kCount)] = {};
  uint64_t tls_errors[static_cast<int>(TlsError::kCount)] = {};
  uint64_t proxy_errors[static_cast<int>(ProxyError::kCount)] = {};
  uint64_t proxy_headers = 0;     // PROXY headers read (v1 or v2), usable or not
  uint64_t proxy_local = 0;       // of them v2 LOCAL / v1 UNKNOWN: the proxy's own (health checks)
  uint64_t ws_upgrades = 0;       // WebSocket upgrades completed (client request + 101)
  uint64_t ws_close_frames = 0;   // WebSocket Close frames (either side)
  uint64_t tls_established = 0;   // TLS connections that reached application data both ways
};

// The three stages' errors as one list (summary "transport_errors", metric
// mqttlive_transport_errors_total{reason}): PROXY, then WebSocket, then TLS.
constexpr int kTransportErrorCount =
    static_cast<int>(ProxyError::kCount) + static_cast<int>(WsError::kCount) + static_cast<int>(TlsError::kCount);
const char* transportErrorName(int i);  // "proxy_bad_header", "ws_bad_upgrade", ..., "tls_resync"
uint64_t transportErrorCount(const TransportStats& s, int i);

// What the transport stages hand back to the engine, in stream order.
class TransportSink {
 public:
  virtual ~TransportSink() = default;
  virtual void onMqttBytes(Side side, std::span<const uint8_t> bytes) = 0;
  // MQTT bytes of this direction were lost inside the transport (skipped frame).
  virtual void onMqttLost(Side side) = 0;
  // WebSocket Close frame: the WebSocket-level equivalent of a FIN from `side`.
  virtual void onCloseIntent(Side side) = 0;
  virtual void onClientReal(const Endpoint& real) = 0;
  // TLS: a client record (activity); ping_like = small application data.
  virtual void onTlsClientRecord(bool ping_like) = 0;
  virtual void onTlsEstablished() = 0;
};

class FlowTransport {
 public:
  // midstream: the start of the connection was not captured (no PROXY header
  // to expect, no upgrade, record/frame framing has to be searched for).
  FlowTransport(const PortOptions& options, bool midstream);

  void feed(Side side, Micros ts, std::span<const uint8_t> bytes, const WebSocketLimits& ws_limits,
            TransportStats& stats, TransportSink& sink);
  // Bytes of this direction were lost (TCP gap).
  void onGap(Side side);
  // TLS only: at the first FIN/RST at `ts`, was the client's TLS close right before it?
  bool tlsCloseIntent(Micros ts) const;
  Transport transport() const { return transport_; }
  // The stream began with a PROXY v2 LOCAL or v1 UNKNOWN header: the proxy
  // opened the connection itself, e.g. a health check.
  bool proxyLocal() const { return proxy_local_; }

 private:
  void feedStage(Side side, Micros ts, std::span<const uint8_t> bytes, const WebSocketLimits& ws_limits,
                 TransportStats& stats, TransportSink& sink);

  struct WsPair {
    WebSocketDecoder dir[2]{WebSocketDecoder(true), WebSocketDecoder(false)};
  };
  Transport transport_;
  // Only until the PROXY header is read: then released.
  std::unique_ptr<ProxyHeaderParser> proxy_;
  bool proxy_local_ = false;
  std::variant<std::monostate, WsPair, TlsTracker> stage_;
};

}  // namespace mqttlive
