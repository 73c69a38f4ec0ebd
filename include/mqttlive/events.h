// The event contract between the session tracker and the sinks (JSON lines,
// Prometheus, HTTP). Names returned by the toString functions are part of the
// public contract: they appear verbatim in the JSON events and metric labels.
#pragma once

#include <cstdint>
#include <string>

#include "mqttlive/types.h"

namespace mqttlive {

enum class EventType : uint8_t {
  kConnected = 0,      // successful CONNACK
  kConnectRefused,     // CONNACK with a failure code
  kKeepaliveExpired,   // deadline passed, connection still open (ts = exact deadline)
  kTakeover,           // CONNECT reused the client id of a connection still open
  kClosed,             // connection ended (reason taxonomy below)
  kOpenAtEnd,          // offline: still open when the capture ended
  kMidstream,          // connection picked up without its CONNECT
  kKeepaliveLearned,   // keepalive learned after the fact (e.g. inferred from PINGREQ cadence)
  kCount
};
const char* toString(EventType t);  // "connected", "connect_refused", ...

enum class CloseReason : uint8_t {
  kGracefulDisconnect = 0,
  kClientFinWithoutDisconnect,
  kClientRstWithoutDisconnect,
  kBrokerCloseKeepalive,
  kBrokerCloseTakeover,
  kBrokerCloseOther,
  kCount
};
const char* toString(CloseReason r);  // "graceful_disconnect", ...

// Did the client's TCP stack acknowledge what the broker sent last? Tells a
// vanished host (nothing acknowledged) from a hung application (kernel ACKs).
enum class ClientTcp : uint8_t { kUnknown = 0, kResponsive, kUnresponsive };
const char* toString(ClientTcp c);  // "unknown", "responsive", "unresponsive"

enum class KeepaliveSource : uint8_t { kUnknown = 0, kConnect, kServerKeepalive, kInferred, kConfigured };
// null-ish "unknown", "connect", "server_keepalive", "inferred", "configured" (TLS listener keepalive_seconds)
const char* toString(KeepaliveSource s);

// What carries MQTT on a connection (the listener kind of its broker port).
// kTls: MQTT is encrypted; verdicts come from TLS record timing (inferred).
enum class Transport : uint8_t { kTcp = 0, kTls, kWebsocket, kCount };
const char* toString(Transport t);  // "tcp", "tls", "websocket"

// Round trips the tracker times besides PINGREQ -> PINGRESP (metrics:
// mqttlive_publish_ack_seconds{qos,direction}, mqttlive_subscribe_ack_seconds).
enum class AckKind : uint8_t {
  kPublishQos1 = 0,    // PUBLISH QoS 1 -> PUBACK
  kPublishQos2,        // PUBLISH QoS 2 -> PUBREC
  kSubscribe,          // SUBSCRIBE -> SUBACK
  kCount
};

// Liveness state of an open connection (metrics: mqttlive_connections{state}).
enum class ConnState : uint8_t {
  kConnecting = 0,     // TCP seen, no successful CONNACK yet (or midstream, unknown)
  kActive,             // within its keepalive deadline (or keepalive 0, not idle long)
  kExpired,            // past its deadline and still open: half-open
  kNoKeepaliveIdle,    // keepalive 0 and silent longer than the idle threshold
  kClosing,            // a FIN/RST was seen, waiting for the close to settle
  kCount
};
const char* toString(ConnState s);  // "connecting", "active", "expired", "no_keepalive_idle", "closing"

// What the tracker knows about one connection. Sinks read it during a callback.
struct ConnectionInfo {
  // Ordered by alignment (8-byte, 4, 2-aligned endpoints and fields, then
  // bytes) so that there are no padding holes: 160 bytes (memory bench).
  std::string client_id;
  Micros opened_at = 0;               // first packet of the flow
  Micros connected_at = 0;            // CONNACK
  Micros last_activity = 0;           // last control packet from the client
  Micros deadline = 0;                // 0 = no deadline
  // Ping round trip bookkeeping (PINGREQ -> PINGRESP).
  Micros ping_sent_at = 0;
  uint32_t gaps = 0;                  // TCP gaps on this connection (either direction)
  Endpoint client;
  Endpoint broker;
  // The real client address from a PROXY protocol header (listener
  // proxy_protocol); valid when client_real_known.
  Endpoint client_real;
  uint16_t keepalive_requested = 0;   // CONNECT's value
  uint16_t keepalive = 0;             // effective, seconds
  bool client_id_known = false;
  bool midstream = false;             // picked up without its CONNECT
  uint8_t protocol_level = 0;         // 0 = unknown
  bool keepalive_requested_known = false;
  bool keepalive_known = false;
  KeepaliveSource keepalive_source = KeepaliveSource::kUnknown;
  bool clean_start = false;
  bool will = false;
  bool username_present = false;
  bool connected = false;             // successful CONNACK seen
  bool client_disconnect = false;     // client sent DISCONNECT
  bool broker_disconnect = false;     // broker sent DISCONNECT (v5)
  uint8_t broker_disconnect_reason = 0;
  bool taken_over = false;            // another connection CONNECTed with this client id
  ConnState state = ConnState::kConnecting;
  bool uncertain = false;             // data was missing (gap/capture drop) while judged
  Transport transport = Transport::kTcp;
  bool client_real_known = false;
};

struct Event {
  EventType type = EventType::kConnected;
  Micros ts = 0;
  const ConnectionInfo* conn = nullptr;
  // kConnectRefused
  uint8_t code = 0;
  // kClosed
  CloseReason reason = CloseReason::kBrokerCloseOther;
  ClientTcp client_tcp = ClientTcp::kUnknown;
  bool expired = false;
  Micros duration = 0;
  Side closed_by = Side::kClient;
  bool rst = false;
  // kTakeover: the connection whose client id was reused (conn = the new one)
  const ConnectionInfo* previous = nullptr;
};

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void onEvent(const Event& e) = 0;
  // Observations that are not events but feed metrics (histograms).
  virtual void onPingRtt(Micros /*rtt*/) {}
  // Broker close time minus deadline (negative = early). Only for closes judged
  // broker_close_keepalive on connections that had a deadline.
  virtual void onEnforcementDelay(Micros /*delay*/) {}
  // Request -> acknowledgement round trip as seen at the capture point.
  // `sender` sent the request (PUBLISH/SUBSCRIBE); the other side acked it.
  virtual void onAckLatency(AckKind /*kind*/, Side /*sender*/, Micros /*latency*/) {}
};

}  // namespace mqttlive
