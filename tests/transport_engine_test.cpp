// Listeners beyond plain port 1883, through the whole offline path: MQTT over
// WebSocket, liveness of MQTT inside TLS, and PROXY protocol headers, on
// synthetic captures.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mqttlive/engine.h"
#include "mqttlive/mqtt_encoder.h"
#include "mqttlive/packet_decoder.h"
#include "support/capture_run.h"

namespace mqttlive {
namespace {

using namespace mqttlive::testing;
using Bytes = std::vector<uint8_t>;
constexpr Micros kS = kMicrosPerSecond;
constexpr Micros kT0 = 1'700'000'000 * kS;

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }
Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

ConnectSpec spec(const std::string& id, uint16_t keepalive) {
  ConnectSpec s;
  s.client_id = id;
  s.keepalive = keepalive;
  return s;
}

EngineConfig withPort(uint16_t port, Transport t, bool proxy = false, uint16_t keepalive = 0) {
  EngineConfig cfg;
  cfg.broker_ports = {port};
  cfg.port_options = {PortOptions{port, t, proxy, keepalive}};
  return cfg;
}

std::string closeReason(const std::vector<std::string>& lines) {
  auto c = eventsOf(lines, "closed");
  return c.size() == 1 ? field(c[0], "reason") : "<" + std::to_string(c.size()) + " closed events>";
}

// ---- WebSocket ----

const std::string kUpgrade =
    "GET /mqtt HTTP/1.1\r\nHost: broker\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";
const std::string k101 =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n";

// One WebSocket frame; client frames are masked.
Bytes wsFrame(const Bytes& payload, bool from_client, uint8_t opcode = 2, bool fin = true) {
  Bytes f = {static_cast<uint8_t>((fin ? 0x80 : 0) | opcode)};
  const uint8_t m = from_client ? 0x80 : 0;
  if (payload.size() <= 125) {
    f.push_back(static_cast<uint8_t>(m | payload.size()));
  } else {
    f.push_back(m | 126);
    f.push_back(static_cast<uint8_t>(payload.size() >> 8));
    f.push_back(static_cast<uint8_t>(payload.size()));
  }
  const uint8_t key[4] = {0xa1, 0x5e, 0x07, 0xc3};
  if (from_client) f.insert(f.end(), key, key + 4);
  for (size_t i = 0; i < payload.size(); ++i)
    f.push_back(from_client ? static_cast<uint8_t>(payload[i] ^ key[i & 3]) : payload[i]);
  return f;
}

struct WsScenario {
  PcapWriter w;
  Endpoint client = v4("10.2.0.2", 52000);
  Endpoint broker = v4("10.2.0.1", 8083);
  TcpConversation conv{w, client, broker};
  // Handshake, upgrade, CONNECT (fragmented, a ping between the fragments), CONNACK.
  void connect(const std::string& id, uint16_t keepalive) {
    conv.handshake(kT0);
    conv.client(kT0 + 1000, text(kUpgrade));
    conv.broker(kT0 + 2000, text(k101));
    const Bytes c = encodeConnect(spec(id, keepalive));
    const Bytes a(c.begin(), c.begin() + 5), b(c.begin() + 5, c.end());
    conv.client(kT0 + 3000, wsFrame(a, true, 2, false) + wsFrame(text("p"), true, 9) + wsFrame(b, true, 0, true));
    conv.broker(kT0 + 4000, wsFrame(text("p"), false, 10) + wsFrame(encodeConnack(ConnackSpec{}), false));
  }
};

TEST(WebSocketEngine, ConnectedSilentThenBrokerEnforces) {
  WsScenario s;
  s.connect("ws-silent", 4);
  // WebSocket pings are not MQTT activity: the keepalive clock keeps running.
  s.conv.client(kT0 + 2 * kS, wsFrame({}, true, 9));
  s.conv.broker(kT0 + 2 * kS + 100, wsFrame({}, false, 10));
  s.conv.brokerFin(kT0 + 7 * kS, TcpConversation::Reply::kNothing);
  auto lines = runCapture(s.w, withPort(8083, Transport::kWebsocket));
  auto c = eventsOf(lines, "connected");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(field(c[0], "client_id"), "\"ws-silent\"");
  EXPECT_EQ(field(c[0], "transport"), "\"websocket\"");
  EXPECT_EQ(field(c[0], "keepalive"), "4");
  EXPECT_EQ(field(c[0], "client_real"), "null");
  auto exp = eventsOf(lines, "keepalive_expired");
  ASSERT_EQ(exp.size(), 1u);
  EXPECT_EQ(field(exp[0], "ts"), "1700000006.003000");  // CONNECT at +3 ms, 1.5 x 4 s
  EXPECT_EQ(field(exp[0], "transport"), "\"websocket\"");
  EXPECT_EQ(closeReason(lines), "\"broker_close_keepalive\"");
  const auto& sum = lines.back();
  EXPECT_EQ(field(sum, "mqtt_packets_client"), "{\"CONNECT\":1}") << sum;
  EXPECT_EQ(field(sum, "mqtt_packets_broker"), "{\"CONNACK\":1}") << sum;
  EXPECT_EQ(field(sum, "transport_errors"), "{}") << sum;
}

TEST(WebSocketEngine, DisconnectThenCloseFrameIsGraceful) {
  WsScenario s;
  s.connect("ws-clean", 30);
  s.conv.client(kT0 + 5 * kS, wsFrame(encodeDisconnect(kMqtt311), true));
  s.conv.client(kT0 + 5 * kS + 10, wsFrame({0x03, 0xe8}, true, 8));
  s.conv.broker(kT0 + 5 * kS + 20, wsFrame({0x03, 0xe8}, false, 8));
  s.conv.clientFin(kT0 + 5 * kS + 30);
  auto lines = runCapture(s.w, withPort(8083, Transport::kWebsocket));
  EXPECT_EQ(closeReason(lines), "\"graceful_disconnect\"");
  EXPECT_EQ(field(eventsOf(lines, "closed")[0], "transport"), "\"websocket\"");
}

TEST(WebSocketEngine, CloseFrameWithoutDisconnectIsTheClientsClose) {
  WsScenario s;
  s.connect("ws-close", 30);
  s.conv.client(kT0 + 5 * kS, wsFrame({0x03, 0xe9}, true, 8));
  s.conv.broker(kT0 + 5 * kS + 500, wsFrame({0x03, 0xe9}, false, 8));
  s.conv.brokerFin(kT0 + 5 * kS + 1000);
  auto lines = runCapture(s.w, withPort(8083, Transport::kWebsocket));
  EXPECT_EQ(closeReason(lines), "\"client_fin_without_disconnect\"");
  auto closed = eventsOf(lines, "closed");
  EXPECT_EQ(field(closed[0], "closed_by"), "\"client\"");
  EXPECT_EQ(field(closed[0], "ts"), "1700000005.000000");  // the Close frame, not the FIN
}

TEST(WebSocketEngine, OneByteSegments) {
  PcapWriter w;
  Endpoint cl = v4("10.2.0.2", 52001), br = v4("10.2.0.1", 8083);
  TcpConversation conv(w, cl, br);
  conv.handshake(kT0);
  const Bytes client_bytes = text(kUpgrade) + wsFrame(encodeConnect(spec("ws-bytes", 10)), true) +
                             wsFrame(encodePingreq(), true) + wsFrame(encodeDisconnect(kMqtt311), true);
  conv.broker(kT0 + 500, text(k101) + wsFrame(encodeConnack(ConnackSpec{}), false));
  for (size_t i = 0; i < client_bytes.size(); ++i)
    conv.client(kT0 + 1000 + static_cast<Micros>(i) * 10, Bytes{client_bytes[i]});
  conv.clientFin(kT0 + 2 * kS);
  auto lines = runCapture(w, withPort(8083, Transport::kWebsocket));
  EXPECT_EQ(field(lines.back(), "mqtt_packets_client"), "{\"CONNECT\":1,\"PINGREQ\":1,\"DISCONNECT\":1}")
      << lines.back();
  EXPECT_EQ(closeReason(lines), "\"graceful_disconnect\"");
}

TEST(WebSocketEngine, RefusedUpgradeIsCounted) {
  PcapWriter w;
  TcpConversation conv(w, v4("10.2.0.2", 52002), v4("10.2.0.1", 8083));
  conv.handshake(kT0);
  conv.client(kT0 + 1000, text("GET /mqtt HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"));
  conv.broker(kT0 + 2000, text("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"));
  conv.brokerFin(kT0 + 3000);
  auto lines = runCapture(w, withPort(8083, Transport::kWebsocket));
  EXPECT_EQ(field(lines.back(), "transport_errors"), "{\"ws_bad_upgrade\":1}") << lines.back();
  EXPECT_TRUE(eventsOf(lines, "connected").empty());
}

TEST(WebSocketEngine, PlainPortsAreUnchanged) {
  // The same bytes on a plain listener are not MQTT: nothing decodes.
  WsScenario s;
  s.connect("ws-on-plain", 4);
  auto lines = runCapture(s.w, withPort(8083, Transport::kTcp));
  EXPECT_TRUE(eventsOf(lines, "connected").empty());
}

// ---- TLS ----

Bytes record(uint8_t type, size_t len, uint16_t version = 0x0303) {
  Bytes r = {type, static_cast<uint8_t>(version >> 8), static_cast<uint8_t>(version), static_cast<uint8_t>(len >> 8),
             static_cast<uint8_t>(len)};
  for (size_t i = 0; i < len; ++i) r.push_back(static_cast<uint8_t>(i * 31 + 7));
  return r;
}

struct TlsScenario {
  PcapWriter w;
  Endpoint client = v4("10.3.0.2", 53000);
  Endpoint broker = v4("10.3.0.1", 8883);
  TcpConversation conv{w, client, broker};
  // TLS 1.3 handshake, then CONNECT/CONNACK as application data.
  void connect() {
    conv.handshake(kT0);
    conv.client(kT0 + 1000, record(22, 250, 0x0301));                              // ClientHello
    conv.broker(kT0 + 2000, record(22, 122) + record(20, 1) + record(23, 2100));   // SH, CCS, encrypted flight
    conv.client(kT0 + 3000, record(20, 1) + record(23, 53));                       // CCS, Finished
    conv.client(kT0 + 3100, record(23, 45));                                       // CONNECT
    conv.broker(kT0 + 4000, record(23, 250) + record(23, 21));                      // tickets, CONNACK
  }
};

TEST(TlsEngine, HandshakeLearnedKeepaliveExpiryAndEnforcement) {
  TlsScenario s;
  s.connect();
  for (int i = 1; i <= 3; ++i) {
    s.conv.client(kT0 + i * 10 * kS, record(23, 19));  // PINGREQ every 10 s
    s.conv.broker(kT0 + i * 10 * kS + 300, record(23, 19));
  }
  // Silent from +30 s; the broker closes at 1.5 x 10 s after the last ping.
  s.conv.brokerFin(kT0 + 45 * kS + 500000, TcpConversation::Reply::kAckOnly);
  auto lines = runCapture(s.w, withPort(8883, Transport::kTls));
  auto c = eventsOf(lines, "connected");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(field(c[0], "ts"), "1700000000.003000");  // client Finished: application data both ways
  EXPECT_EQ(field(c[0], "transport"), "\"tls\"");
  EXPECT_EQ(field(c[0], "client_id"), "null");
  EXPECT_EQ(field(c[0], "protocol"), "null");
  EXPECT_EQ(field(c[0], "keepalive"), "null");
  EXPECT_EQ(field(c[0], "clean_start"), "null");  // the CONNECT is encrypted
  EXPECT_EQ(field(c[0], "username_present"), "null");
  auto learned = eventsOf(lines, "keepalive_learned");
  ASSERT_EQ(learned.size(), 1u);
  EXPECT_EQ(field(learned[0], "keepalive"), "10");
  EXPECT_EQ(field(learned[0], "keepalive_source"), "\"inferred\"");
  EXPECT_EQ(field(learned[0], "ts"), "1700000030.000000");
  auto exp = eventsOf(lines, "keepalive_expired");
  ASSERT_EQ(exp.size(), 1u);
  EXPECT_EQ(field(exp[0], "ts"), "1700000045.000000");
  EXPECT_EQ(field(exp[0], "transport"), "\"tls\"");
  EXPECT_EQ(closeReason(lines), "\"broker_close_keepalive\"");
  EXPECT_EQ(field(eventsOf(lines, "closed")[0], "keepalive_source"), "\"inferred\"");
}

TEST(TlsEngine, ConfiguredKeepalive) {
  TlsScenario s;
  s.connect();
  s.conv.client(kT0 + 20 * kS, record(23, 600));  // a PUBLISH
  auto lines = runCapture(s.w, withPort(8883, Transport::kTls, false, 30));
  auto c = eventsOf(lines, "connected");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(field(c[0], "keepalive"), "30");
  EXPECT_EQ(field(c[0], "keepalive_source"), "\"configured\"");
  auto end = eventsOf(lines, "open_at_end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(field(end[0], "last_activity"), "1700000020.000000");
  EXPECT_EQ(field(end[0], "deadline"), "1700000065.000000");
}

TEST(TlsEngine, CloseVerdicts) {
  {
    TlsScenario s;  // abrupt FIN: no close_notify
    s.connect();
    s.conv.client(kT0 + 5 * kS, record(23, 19));
    s.conv.clientFin(kT0 + 8 * kS);
    EXPECT_EQ(closeReason(runCapture(s.w, withPort(8883, Transport::kTls))), "\"client_fin_without_disconnect\"");
  }
  {
    TlsScenario s;  // RST
    s.connect();
    s.conv.clientRst(kT0 + 8 * kS);
    EXPECT_EQ(closeReason(runCapture(s.w, withPort(8883, Transport::kTls))), "\"client_rst_without_disconnect\"");
  }
  {
    TlsScenario s;  // TLS 1.3: DISCONNECT + close_notify (both encrypted) right before the FIN
    s.connect();
    s.conv.client(kT0 + 8 * kS, record(23, 19) + record(23, 19));
    s.conv.clientFin(kT0 + 8 * kS + 2000);
    EXPECT_EQ(closeReason(runCapture(s.w, withPort(8883, Transport::kTls))), "\"graceful_disconnect\"");
  }
  {
    TlsScenario s;  // the broker reacts to DISCONNECT + close_notify and closes first
    s.connect();
    s.conv.client(kT0 + 8 * kS, record(23, 19) + record(23, 19));
    s.conv.brokerFin(kT0 + 8 * kS + 3000);
    EXPECT_EQ(closeReason(runCapture(s.w, withPort(8883, Transport::kTls))), "\"graceful_disconnect\"");
  }
  {
    TlsScenario s;  // a broker close long after the client's last small record is not one
    s.connect();
    s.conv.client(kT0 + 8 * kS, record(23, 19));
    s.conv.brokerFin(kT0 + 9 * kS);
    EXPECT_EQ(closeReason(runCapture(s.w, withPort(8883, Transport::kTls))), "\"broker_close_other\"");
  }
  {
    TlsScenario s;  // TLS 1.2: an Alert record, then the FIN
    s.connect();
    s.conv.client(kT0 + 8 * kS, record(21, 26));
    s.conv.clientFin(kT0 + 9 * kS);
    EXPECT_EQ(closeReason(runCapture(s.w, withPort(8883, Transport::kTls))), "\"graceful_disconnect\"");
  }
}

TEST(TlsEngine, MidstreamPickup) {
  PcapWriter w;
  TcpConversation conv(w, v4("10.3.0.2", 53001), v4("10.3.0.1", 8883), 424242, 929292);
  // Starts inside a record, then pings every 20 s.
  conv.client(kT0, Bytes(40, 0x00));
  for (int i = 0; i < 4; ++i) {
    conv.client(kT0 + (i + 1) * 20 * kS, record(23, 19));
    conv.broker(kT0 + (i + 1) * 20 * kS + 400, record(23, 19));
  }
  auto lines = runCapture(w, withPort(8883, Transport::kTls));
  auto mid = eventsOf(lines, "midstream");
  ASSERT_EQ(mid.size(), 1u);
  EXPECT_EQ(field(mid[0], "transport"), "\"tls\"");
  EXPECT_TRUE(eventsOf(lines, "connected").empty());
  auto learned = eventsOf(lines, "keepalive_learned");
  ASSERT_EQ(learned.size(), 1u);
  EXPECT_EQ(field(learned[0], "keepalive"), "20");
  EXPECT_EQ(field(lines.back(), "transport_errors"), "{\"tls_resync\":1}") << lines.back();
}

// ---- PROXY protocol ----

Bytes proxyV2Inet4(const char* src, uint16_t sport) {
  Bytes h = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 12};
  Endpoint e = v4(src, sport);
  h.insert(h.end(), e.ip.bytes + 12, e.ip.bytes + 16);
  h.insert(h.end(), {10, 0, 0, 1});
  h.push_back(static_cast<uint8_t>(sport >> 8));
  h.push_back(static_cast<uint8_t>(sport));
  h.insert(h.end(), {0x07, 0x5b});
  return h;
}

TEST(ProxyEngine, V1OnPlainMqtt) {
  PcapWriter w;
  TcpConversation conv(w, v4("10.4.0.9", 40000), v4("10.4.0.1", 1883));
  conv.handshake(kT0);
  // Header and CONNECT in one segment, as HAProxy sends them.
  conv.client(kT0 + 1000, text("PROXY TCP4 203.0.113.50 10.4.0.1 61000 1883\r\n") + encodeConnect(spec("behind-lb", 10)));
  conv.broker(kT0 + 2000, encodeConnack(ConnackSpec{}));
  conv.client(kT0 + 3 * kS, encodeDisconnect(kMqtt311));
  conv.clientFin(kT0 + 3 * kS + 10);
  auto lines = runCapture(w, withPort(1883, Transport::kTcp, true));
  auto c = eventsOf(lines, "connected");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(field(c[0], "client"), "\"10.4.0.9:40000\"");
  EXPECT_EQ(field(c[0], "client_real"), "\"203.0.113.50:61000\"");
  EXPECT_EQ(field(c[0], "transport"), "\"tcp\"");
  EXPECT_EQ(field(c[0], "client_id"), "\"behind-lb\"");
  auto closed = eventsOf(lines, "closed");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(field(closed[0], "client_real"), "\"203.0.113.50:61000\"");
  EXPECT_EQ(field(closed[0], "reason"), "\"graceful_disconnect\"");
}

TEST(ProxyEngine, V2BeforeWebSocketUpgradeSplitAcrossSegments) {
  PcapWriter w;
  TcpConversation conv(w, v4("10.4.0.9", 40001), v4("10.4.0.1", 8083));
  conv.handshake(kT0);
  const Bytes all = proxyV2Inet4("198.51.100.20", 55555) + text(kUpgrade) +
                    wsFrame(encodeConnect(spec("ws-behind-lb", 10)), true);
  conv.client(kT0 + 1000, Bytes(all.begin(), all.begin() + 9));
  conv.client(kT0 + 1100, Bytes(all.begin() + 9, all.begin() + 40));
  conv.client(kT0 + 1200, Bytes(all.begin() + 40, all.end()));
  conv.broker(kT0 + 2000, text(k101) + wsFrame(encodeConnack(ConnackSpec{}), false));
  auto lines = runCapture(w, withPort(8083, Transport::kWebsocket, true));
  auto c = eventsOf(lines, "connected");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(field(c[0], "client_real"), "\"198.51.100.20:55555\"");
  EXPECT_EQ(field(c[0], "transport"), "\"websocket\"");
  EXPECT_EQ(field(c[0], "client_id"), "\"ws-behind-lb\"");
}

TEST(ProxyEngine, V2BeforeTls) {
  TlsScenario s;
  s.conv.handshake(kT0);
  s.conv.client(kT0 + 500, proxyV2Inet4("192.0.2.77", 4444) + record(22, 250, 0x0301));
  s.conv.broker(kT0 + 2000, record(22, 122) + record(20, 1) + record(23, 2100));
  s.conv.client(kT0 + 3000, record(20, 1) + record(23, 53));
  auto lines = runCapture(s.w, withPort(8883, Transport::kTls, true));
  auto c = eventsOf(lines, "connected");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(field(c[0], "client_real"), "\"192.0.2.77:4444\"");
  EXPECT_EQ(field(lines.back(), "transport_errors"), "{}") << lines.back();
}

TEST(ProxyEngine, MissingHeaderIsCountedAndTheStreamStillDecodes) {
  PcapWriter w;
  TcpConversation conv(w, v4("10.4.0.9", 40002), v4("10.4.0.1", 1883));
  conv.handshake(kT0);
  conv.client(kT0 + 1000, encodeConnect(spec("direct", 10)));
  conv.broker(kT0 + 2000, encodeConnack(ConnackSpec{}));
  auto lines = runCapture(w, withPort(1883, Transport::kTcp, true));
  auto c = eventsOf(lines, "connected");
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(field(c[0], "client_real"), "null");
  EXPECT_EQ(field(c[0], "client_id"), "\"direct\"");
  EXPECT_EQ(field(lines.back(), "transport_errors"), "{\"proxy_bad_header\":1}") << lines.back();
}

// HAProxy `check check-send-proxy` with send-proxy-v2: connect, a LOCAL header
// (here with HAProxy's CRC32C TLV), then a reset. Not a client: no event, no
// close counted. A relayed client that sends nothing and leaves is still one.
TEST(ProxyEngine, LocalHealthCheckLeavesNoEvent) {
  PcapWriter w;
  TcpConversation check(w, v4("10.4.0.9", 40003), v4("10.4.0.1", 1883));
  check.handshake(kT0);
  Bytes local = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 7,
                 0x03, 0x00, 0x04, 0xa9, 0xb8, 0x7e, 0x8f};
  check.client(kT0 + 1000, local);
  check.clientRst(kT0 + 2000);
  TcpConversation v1check(w, v4("10.4.0.9", 40004), v4("10.4.0.1", 1883));
  v1check.handshake(kT0 + kS);
  v1check.client(kT0 + kS + 1000, text("PROXY UNKNOWN\r\n"));
  v1check.clientFin(kT0 + kS + 2000);
  TcpConversation relayed(w, v4("10.4.0.9", 40005), v4("10.4.0.1", 1883));
  relayed.handshake(kT0 + 2 * kS);
  relayed.client(kT0 + 2 * kS + 1000, proxyV2Inet4("203.0.113.9", 61001));
  relayed.clientFin(kT0 + 2 * kS + 2000);
  auto lines = runCapture(w, withPort(1883, Transport::kTcp, true));
  auto closed = eventsOf(lines, "closed");
  ASSERT_EQ(closed.size(), 1u) << lines.size();
  EXPECT_EQ(field(closed[0], "client_real"), "\"203.0.113.9:61001\"");
  EXPECT_EQ(field(closed[0], "reason"), "\"client_fin_without_disconnect\"");
  EXPECT_EQ(field(lines.back(), "transport_errors"), "{}") << lines.back();
}

}  // namespace
}  // namespace mqttlive
