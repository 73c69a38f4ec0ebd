#include "mqttlive/events.h"

namespace mqttlive {

const char* toString(EventType t) {
  switch (t) {
    case EventType::kConnected: return "connected";
    case EventType::kConnectRefused: return "connect_refused";
    case EventType::kKeepaliveExpired: return "keepalive_expired";
    case EventType::kTakeover: return "takeover";
    case EventType::kClosed: return "closed";
    case EventType::kOpenAtEnd: return "open_at_end";
    case EventType::kMidstream: return "midstream";
    case EventType::kKeepaliveLearned: return "keepalive_learned";
    case EventType::kCount: break;
  }
  return "unknown";
}

const char* toString(CloseReason r) {
  switch (r) {
    case CloseReason::kGracefulDisconnect: return "graceful_disconnect";
    case CloseReason::kClientFinWithoutDisconnect: return "client_fin_without_disconnect";
    case CloseReason::kClientRstWithoutDisconnect: return "client_rst_without_disconnect";
    case CloseReason::kBrokerCloseKeepalive: return "broker_close_keepalive";
    case CloseReason::kBrokerCloseTakeover: return "broker_close_takeover";
    case CloseReason::kBrokerCloseOther: return "broker_close_other";
    case CloseReason::kCount: break;
  }
  return "unknown";
}

const char* toString(ClientTcp c) {
  switch (c) {
    case ClientTcp::kResponsive: return "responsive";
    case ClientTcp::kUnresponsive: return "unresponsive";
    case ClientTcp::kUnknown: break;
  }
  return "unknown";
}

const char* toString(KeepaliveSource s) {
  switch (s) {
    case KeepaliveSource::kConnect: return "connect";
    case KeepaliveSource::kServerKeepalive: return "server_keepalive";
    case KeepaliveSource::kInferred: return "inferred";
    case KeepaliveSource::kConfigured: return "configured";
    case KeepaliveSource::kUnknown: break;
  }
  return "unknown";
}

const char* toString(Transport t) {
  switch (t) {
    case Transport::kTcp: return "tcp";
    case Transport::kTls: return "tls";
    case Transport::kWebsocket: return "websocket";
    case Transport::kCount: break;
  }
  return "unknown";
}

const char* toString(ConnState s) {
  switch (s) {
    case ConnState::kConnecting: return "connecting";
    case ConnState::kActive: return "active";
    case ConnState::kExpired: return "expired";
    case ConnState::kNoKeepaliveIdle: return "no_keepalive_idle";
    case ConnState::kClosing: return "closing";
    case ConnState::kCount: break;
  }
  return "unknown";
}

}  // namespace mqttlive
