// Secrets and exposure: a CONNECT's password and v5 user properties never
// reach the event stream, the logs, a /metrics scrape or the state file; and
// hostile client ids are escaped in /connections and metric labels.
#include <gtest/gtest.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "mqttlive/engine.h"
#include "mqttlive/event_fanout.h"
#include "mqttlive/http_server.h"
#include "mqttlive/json_events.h"
#include "mqttlive/metrics.h"
#include "mqttlive/mqtt_encoder.h"
#include "mqttlive/packet_decoder.h"
#include "mqttlive/pcap_writer.h"
#include "mqttlive/state_file.h"
#include "support/capture_run.h"

namespace mqttlive {
namespace {

using namespace mqttlive::testing;
constexpr Micros kS = kMicrosPerSecond;
constexpr Micros kT0 = 1'700'000'000 * kS;
constexpr char kPassword[] = "S3cr3t-PW-zz";
constexpr char kPropValue[] = "UserProp-Secret-42";
constexpr char kWillPayload[] = "Will-Payload-Secret-7";

void putString(std::vector<uint8_t>& out, const std::string& s) {
  out.push_back(static_cast<uint8_t>(s.size() >> 8));
  out.push_back(static_cast<uint8_t>(s.size()));
  out.insert(out.end(), s.begin(), s.end());
}

// MQTT 5 CONNECT with a user property, a will (with a user property of its
// own), a user name and the password.
std::vector<uint8_t> secretConnect(const std::string& client_id) {
  std::vector<uint8_t> body;
  putString(body, "MQTT");
  body.push_back(kMqtt5);
  body.push_back(0xC0 | 0x04 | 0x02);  // username, password, will (QoS 0), clean start
  body.push_back(0);
  body.push_back(5);  // keepalive 5 s
  std::vector<uint8_t> props;
  props.push_back(0x26);  // User Property
  putString(props, "auth-token");
  putString(props, kPropValue);
  body.push_back(static_cast<uint8_t>(props.size()));
  body.insert(body.end(), props.begin(), props.end());
  putString(body, client_id);
  std::vector<uint8_t> will_props;
  will_props.push_back(0x26);
  putString(will_props, "will-token");
  putString(will_props, kPropValue);
  body.push_back(static_cast<uint8_t>(will_props.size()));
  body.insert(body.end(), will_props.begin(), will_props.end());
  putString(body, "last/will");
  putString(body, kWillPayload);
  putString(body, "alice");
  putString(body, kPassword);
  std::vector<uint8_t> pkt{0x10};
  appendVarInt(pkt, static_cast<uint32_t>(body.size()));
  pkt.insert(pkt.end(), body.begin(), body.end());
  return pkt;
}

// A connection that CONNECTs with secrets, gets its CONNACK, publishes the
// password as a payload too, then goes silent until its keepalive expires.
PcapWriter secretCapture(const std::string& client_id = "secret-holder") {
  PcapWriter w;
  TcpConversation c(w, v4("10.3.0.2", 51000), v4("10.3.0.1", 1883));
  c.handshake(kT0);
  c.client(kT0 + 1000, secretConnect(client_id));
  c.broker(kT0 + 2000, encodeConnack(ConnackSpec{.protocol_level = kMqtt5}));
  std::vector<uint8_t> payload(kPassword, kPassword + sizeof kPassword - 1);
  c.client(kT0 + 3000, encodePublish(kMqtt5, "creds", 1, 7, payload));
  c.broker(kT0 + 4000, encodeAck(PacketType::kPuback, kMqtt5, 7));
  c.client(kT0 + 20 * kS, encodePingreq());
  return w;
}

bool mentionsASecret(const std::string& text) {
  return text.find(kPassword) != std::string::npos || text.find(kPropValue) != std::string::npos ||
         text.find(kWillPayload) != std::string::npos;
}

// Feeds a PcapWriter's frames (classic little-endian pcap) to an engine.
Micros feed(Engine& engine, const PcapWriter& w) {
  const auto& b = w.bytes();
  Micros ts = 0;
  for (size_t pos = 24; pos + 16 <= b.size();) {
    auto le32 = [&](size_t at) { return b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (uint32_t{b[at + 3]} << 24); };
    ts = static_cast<Micros>(le32(pos)) * kS + le32(pos + 4);
    const uint32_t caplen = le32(pos + 8);
    engine.onFrame(ts, dlt::kEthernet, std::span<const uint8_t>(b.data() + pos + 16, caplen));
    pos += 16 + caplen;
  }
  return ts;
}

std::string runBinary(const std::string& args) {
  const std::string cmd = std::string(MQTTLIVE_BINARY) + " " + args + " 2>&1";
  std::FILE* p = popen(cmd.c_str(), "r");
  EXPECT_NE(p, nullptr);
  if (p == nullptr) return "";
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  EXPECT_EQ(pclose(p), 0) << out;
  return out;
}

std::string httpGet(uint16_t port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string raw;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (send(fd, req.data(), req.size(), 0) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) raw.append(buf, static_cast<size_t>(n));
    }
  }
  close(fd);
  return raw;
}

TEST(Secrets, BinaryOutputAndLogsNeverShowThem) {
  char name[] = "/tmp/mqttlive-secrets-XXXXXX";
  close(mkstemp(name));
  ASSERT_TRUE(secretCapture().save(name));
  for (const char* level : {"info", "debug"}) {
    const std::string out = runBinary(std::string("--log.level ") + level + " --read " + name);
    ASSERT_NE(out.find("\"event\":\"connected\""), std::string::npos) << out;
    EXPECT_NE(out.find("\"username_present\":true"), std::string::npos);
    EXPECT_NE(out.find("\"keepalive_expired\""), std::string::npos);  // the capture was really judged
    EXPECT_FALSE(mentionsASecret(out)) << out;
  }
  unlink(name);
}

TEST(Secrets, MetricsScrapeAndStateFileNeverHoldThem) {
  MetricsConfig mc;
  mc.per_client.enabled = true;  // client ids as labels: the most revealing setting
  Metrics metrics(mc, "test");
  std::FILE* devnull = std::fopen("/dev/null", "w");
  JsonEventWriter writer(devnull, false);
  EventFanout fanout{&writer, &metrics};
  Engine engine(EngineConfig{}, fanout);
  const Micros end = feed(engine, secretCapture());
  engine.advanceTo(end + 60 * kS);  // expire it: per-client series appear
  metrics.update(engine, CaptureCounters{}, end + 60 * kS);

  HttpServerOptions o;
  o.listen_address = "127.0.0.1:0";
  HttpServer http(metrics.registry(), o);
  std::string error;
  ASSERT_TRUE(http.start(error)) << error;
  http.publishConnections(formatSuspectConnections(engine.tracker(), end + 60 * kS, 100));
  const std::string scrape = httpGet(http.port(), "/metrics");
  ASSERT_NE(scrape.find("client_id=\"secret-holder\""), std::string::npos) << scrape;
  EXPECT_FALSE(mentionsASecret(scrape));
  const std::string conns = httpGet(http.port(), "/connections");
  ASSERT_NE(conns.find("\"secret-holder\""), std::string::npos) << conns;
  EXPECT_FALSE(mentionsASecret(conns));
  http.stop();

  char name[] = "/tmp/mqttlive-secrets-state-XXXXXX";
  close(mkstemp(name));
  const SavedState state = snapshotState(engine.tracker(), end + 60 * kS);
  ASSERT_EQ(state.connections.size(), 1u);
  ASSERT_TRUE(saveStateFile(name, state, error)) << error;
  std::FILE* f = std::fopen(name, "rb");
  std::string bytes;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) bytes.append(buf, n);
  std::fclose(f);
  EXPECT_NE(bytes.find("secret-holder"), std::string::npos);
  EXPECT_FALSE(mentionsASecret(bytes));
  unlink(name);
  std::fclose(devnull);
}

TEST(Secrets, HostileClientIdsAreEscapedInConnectionsJson) {
  const std::string id("q\"uo\\te\nnl\r\x01\xff\xfe{}", 16);
  MetricsConfig mc;
  mc.per_client.enabled = true;
  Metrics metrics(mc, "test");
  Engine engine(EngineConfig{}, metrics);
  const Micros end = feed(engine, secretCapture(id));
  engine.advanceTo(end + 60 * kS);
  const std::string j = formatSuspectConnections(engine.tracker(), end + 60 * kS, 100);
  EXPECT_EQ(j.find('\n'), std::string::npos) << j;
  EXPECT_EQ(j.find('\r'), std::string::npos);
  EXPECT_NE(j.find("\"client_id\":\"q\\\"uo\\\\te\\u000anl\\u000d\\u0001\\ufffd\\ufffd{}\""), std::string::npos) << j;
  // Every byte is printable ASCII or part of valid UTF-8 (the escapes above are ASCII).
  for (unsigned char c : j) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << j;

  metrics.update(engine, CaptureCounters{}, end + 60 * kS);
  HttpServerOptions o;
  o.listen_address = "127.0.0.1:0";
  HttpServer http(metrics.registry(), o);
  std::string error;
  ASSERT_TRUE(http.start(error)) << error;
  const std::string scrape = httpGet(http.port(), "/metrics");
  http.stop();
  // The exposition format escapes \, " and newline; the label stays one line
  // of valid UTF-8 without control characters that could split it.
  const std::string prefix = "mqttlive_client_expired_seconds{client_id=\"q\\\"uo\\\\te\\nnl";
  const size_t pos = scrape.find(prefix);
  ASSERT_NE(pos, std::string::npos) << scrape;
  const std::string line = scrape.substr(pos, scrape.find('\n', pos) - pos);
  EXPECT_EQ(line.find('\r'), std::string::npos) << line;
  EXPECT_NE(line.find("\xef\xbf\xbd{}\"} "), std::string::npos) << line;
}

}  // namespace
}  // namespace mqttlive
