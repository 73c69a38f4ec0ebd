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
#include <fstream>
#include <set>
#include <sstream>
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
#include "mqttlive/status_page.h"
#include "mqttlive/flap_detector.h"
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

// ---- hostile client ids: every output stays well-formed ----

// Each hostile id and what a strict JSON parser must read back from any JSON
// mqttlive writes: control characters (NUL too) survive as escapes, and each
// byte that is not part of valid UTF-8 becomes U+FFFD.
struct HostileId {
  std::string raw;
  std::string decoded;
};

constexpr char kFffd[] = "\xef\xbf\xbd";

std::vector<HostileId> hostileIds() {
  std::vector<HostileId> ids = {
      {std::string("q\"uo\\te\nnl\r\x01\xff\xfe{}", 16), std::string("q\"uo\\te\nnl\r\x01") + kFffd + kFffd + "{}"},
      {std::string("nul\0inside\0", 11), std::string("nul\0inside\0", 11)},
      {"bad\xc3\x28utf8", std::string("bad") + kFffd + "(utf8"},
      {"overlong\xc0\xaf", std::string("overlong") + kFffd + kFffd},
      {"surrogate\xed\xa0\x80", std::string("surrogate") + kFffd + kFffd + kFffd},
      {"too-big\xf4\x90\x80\x80", std::string("too-big") + kFffd + kFffd + kFffd + kFffd},
      {"truncated\xe2\x82", std::string("truncated") + kFffd + kFffd},
      {"</script><img src=x onerror=alert(1)>", "</script><img src=x onerror=alert(1)>"},
      {"x\"} evil_metric 1\n# HELP evil", "x\"} evil_metric 1\n# HELP evil"},
      {"\xc3\xbcn\xc3\xaf" "c\xc3\xb6" "de\xf0\x9f\x98\x80\xe2\x80\xa8\x7f\t", "\xc3\xbcn\xc3\xaf" "c\xc3\xb6" "de\xf0\x9f\x98\x80\xe2\x80\xa8\x7f\t"},
      {"", ""},
  };
  // Very long: 20 000 bytes of quotes, backslashes, newlines and invalid bytes.
  HostileId longest;
  for (int i = 0; i < 4000; ++i) {
    longest.raw += "\"\\\n\xff" "a";
    longest.decoded += std::string("\"\\\n") + kFffd + "a";
  }
  ids.push_back(longest);
  return ids;
}

// One MQTT 5 connection per id (with the secrets of secretConnect), each
// silent after its CONNACK; the first id connects twice (a takeover), and a
// last plain connection pings at +60 s so that the others expire on packet time.
PcapWriter hostileCapture(const std::vector<HostileId>& ids) {
  PcapWriter w;
  Micros t = kT0;
  for (size_t i = 0; i <= ids.size(); ++i) {
    const std::string& id = ids[i == ids.size() ? 0 : i].raw;
    TcpConversation c(w, v4("10.3.0.2", static_cast<uint16_t>(40000 + i)), v4("10.3.0.1", 1883));
    c.handshake(t);
    c.client(t + 1000, secretConnect(id));
    c.broker(t + 2000, encodeConnack(ConnackSpec{.protocol_level = kMqtt5}));
    t += 10'000;
  }
  TcpConversation clock(w, v4("10.3.0.9", 39999), v4("10.3.0.1", 1883));
  clock.handshake(t);
  clock.client(t + 1000, secretConnect("clock"));
  clock.broker(t + 2000, encodeConnack(ConnackSpec{.protocol_level = kMqtt5}));
  clock.client(kT0 + 60 * kS, encodePingreq());
  return w;
}

std::string writeTemp(const std::string& prefix, const std::string& content) {
  std::string name = "/tmp/" + prefix + "-XXXXXX";
  const int fd = mkstemp(name.data());
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  close(fd);
  return name;
}

// Parses `path` as JSON lines (or one document) with Python's json module:
// bytes must be strict UTF-8, strings free of raw control characters, no lone
// surrogates. Prints the hex of the UTF-8 of every "client_id" found, one per
// line; "ERROR ..." on the first problem.
std::string strictJsonClientIds(const std::string& path) {
  static const char kScript[] = R"PY(
import json, sys
data = open(sys.argv[1], 'rb').read()
try:
    text = data.decode('utf-8', errors='strict')
except UnicodeDecodeError as e:
    print('ERROR invalid UTF-8: %s' % e); sys.exit(0)
def walk(o):
    if isinstance(o, dict):
        for k, v in o.items():
            if k == 'client_id' and v is not None:
                print(v.encode('utf-8', errors='strict').hex())
            walk(v)
    elif isinstance(o, list):
        for v in o: walk(v)
    elif isinstance(o, str):
        o.encode('utf-8', errors='strict')
docs = [l for l in text.split('\n') if l] if sys.argv[2] == 'lines' else [text]
for n, d in enumerate(docs):
    try:
        walk(json.loads(d, strict=True))
    except Exception as e:
        print('ERROR line %d: %s: %r' % (n + 1, e, d[:200])); sys.exit(0)
print('OK %d' % len(docs))
)PY";
  const std::string script = writeTemp("mqttlive-strict-json", kScript);
  const std::string lines = path.find("events") != std::string::npos ? "lines" : "doc";
  const std::string cmd = "python3 " + script + " " + path + " " + lines + " 2>&1";
  std::FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  for (size_t n; p != nullptr && (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  if (p != nullptr) pclose(p);
  unlink(script.c_str());
  return out;
}

std::string hex(const std::string& s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::set<std::string> idLines(const std::string& out) {
  std::set<std::string> ids;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("OK ", 0) != 0) ids.insert(line);
  return ids;
}

TEST(HostileClientIds, EventLinesAreStrictJsonAndReadBackExactly) {
  const auto ids = hostileIds();
  const std::vector<std::string> lines = runCapture(hostileCapture(ids));
  std::string all;
  for (const auto& l : lines) {
    EXPECT_EQ(l.find('\n'), std::string::npos);
    all += l + "\n";
  }
  EXPECT_FALSE(mentionsASecret(all));
  ASSERT_FALSE(eventsOf(lines, "takeover").empty());
  ASSERT_GE(eventsOf(lines, "keepalive_expired").size(), ids.size());
  const std::string path = writeTemp("mqttlive-events", all);
  const std::string out = strictJsonClientIds(path);
  unlink(path.c_str());
  ASSERT_EQ(out.find("ERROR"), std::string::npos) << out;
  ASSERT_NE(out.find("OK " + std::to_string(lines.size())), std::string::npos) << out;
  const std::set<std::string> seen = idLines(out);
  // (An empty id is null until the broker assigns one: nothing to read back.)
  for (const auto& id : ids)
    if (!id.raw.empty()) EXPECT_EQ(seen.count(hex(id.decoded)), 1u) << "id " << hex(id.raw) << " not read back";
}

TEST(HostileClientIds, ConnectionsSummaryAndMetricsStayWellFormed) {
  const auto ids = hostileIds();
  MetricsConfig mc;
  mc.per_client.enabled = true;
  mc.per_client.max_series = 1000;
  Metrics metrics(mc, "test");
  FlapDetector flap;
  EventFanout fanout{&metrics, &flap};
  Engine engine(EngineConfig{}, fanout);
  const Micros end = feed(engine, hostileCapture(ids));
  metrics.update(engine, CaptureCounters{}, end);

  // /connections: one strict JSON document with every id read back exactly.
  const std::string conns = formatSuspectConnections(engine.tracker(), end, 1000);
  std::string path = writeTemp("mqttlive-conns", conns);
  std::string out = strictJsonClientIds(path);
  unlink(path.c_str());
  ASSERT_EQ(out.find("ERROR"), std::string::npos) << out;
  std::set<std::string> seen = idLines(out);
  for (const auto& id : ids)
    if (!id.raw.empty()) EXPECT_EQ(seen.count(hex(id.decoded)), 1u) << hex(id.raw);
  EXPECT_FALSE(mentionsASecret(conns));

  // /api/summary (top flapping ids: the first id connected twice).
  const std::string summary = formatSummary(engine.tracker(), flap, &metrics, end);
  path = writeTemp("mqttlive-summary", summary);
  out = strictJsonClientIds(path);
  unlink(path.c_str());
  ASSERT_EQ(out.find("ERROR"), std::string::npos) << out << summary;

  // /metrics with per-client labels: promtool accepts the exposition, and
  // every sample line is one line (no label value split it).
  HttpServerOptions o;
  o.listen_address = "127.0.0.1:0";
  HttpServer http(metrics.registry(), o);
  std::string error;
  ASSERT_TRUE(http.start(error)) << error;
  const std::string raw = httpGet(http.port(), "/metrics");
  http.stop();
  const std::string scrape = raw.substr(raw.find("\r\n\r\n") + 4);
  ASSERT_NE(scrape.find("mqttlive_client_expired_seconds{client_id=\""), std::string::npos) << scrape;
  EXPECT_FALSE(mentionsASecret(scrape));
  EXPECT_EQ(scrape.find("\nevil_metric"), std::string::npos);
  EXPECT_EQ(scrape.find('\r'), std::string::npos);
  EXPECT_EQ(scrape.find(std::string(1, '\0')), std::string::npos);
  size_t client_series = 0;
  std::istringstream in(scrape);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("mqttlive_client_expired_seconds{", 0) != 0) continue;
    ++client_series;
    EXPECT_LE(line.size(), 300u) << "label value not capped: " << line.size();
  }
  EXPECT_GE(client_series, ids.size() - 2);  // ids that sanitize alike share a series
  path = writeTemp("mqttlive-scrape", scrape);
  const std::string cmd = "promtool check metrics < " + path + " 2>&1";
  std::FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string promtool;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) promtool.append(buf, n);
  const int rc = pclose(p);
  unlink(path.c_str());
  // promtool exits 1 for lint findings (e.g. naming advice) and 3 for an unparsable exposition.
  EXPECT_TRUE(WIFEXITED(rc) && WEXITSTATUS(rc) != 3) << promtool;
  EXPECT_EQ(promtool.find("error while linting"), std::string::npos) << promtool;
}

// metrics.per_client.hash_client_id: no raw id in the labels, in /connections
// or in the operator log (stderr, debug level); the events keep the id.
TEST(HashedClientIds, NotInLabelsConnectionsOrLogs) {
  const std::string id = "device-serial-0042@example.com";
  std::vector<HostileId> ids = {{id, id}};
  MetricsConfig mc;
  mc.per_client.enabled = true;
  mc.per_client.hash_client_id = true;
  Metrics metrics(mc, "test");
  Engine engine(EngineConfig{}, metrics);
  const Micros end = feed(engine, hostileCapture(ids));
  metrics.update(engine, CaptureCounters{}, end);
  const std::string hashed = Metrics::hashClientId(id);

  const std::string conns = formatSuspectConnections(engine.tracker(), end, 100, TrackerConfig{}.no_keepalive_idle,
                                                     /*hash_client_id=*/true);
  EXPECT_EQ(conns.find(id), std::string::npos) << conns;
  EXPECT_NE(conns.find("\"client_id\":\"" + hashed + "\""), std::string::npos) << conns;

  HttpServerOptions o;
  o.listen_address = "127.0.0.1:0";
  HttpServer http(metrics.registry(), o);
  std::string error;
  ASSERT_TRUE(http.start(error)) << error;
  http.publishConnections(conns);
  const std::string scrape = httpGet(http.port(), "/metrics");
  const std::string served = httpGet(http.port(), "/connections");
  http.stop();
  EXPECT_EQ(scrape.find(id), std::string::npos);
  EXPECT_NE(scrape.find("client_id=\"" + hashed + "\""), std::string::npos) << scrape;
  EXPECT_EQ(served.find(id), std::string::npos);

  // The binary at debug level with hashing on: stderr (the log) never shows the
  // id, nor any secret; stdout (the events) is the contract and keeps it.
  const std::string pcap = writeTemp("mqttlive-hash", "");
  ASSERT_TRUE(hostileCapture(ids).save(pcap));
  const std::string cfg = writeTemp("mqttlive-hash-cfg",
                                    "metrics:\n  per_client:\n    enabled: true\n    hash_client_id: true\n");
  const std::string err_path = pcap + ".stderr";
  std::string events;
  {
    const std::string cmd = std::string(MQTTLIVE_BINARY) + " --config.file " + cfg + " --log.level debug --read " +
                            pcap + " 2>" + err_path;
    std::FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) events.append(buf, n);
    EXPECT_EQ(pclose(p), 0);
  }
  std::ifstream err_in(err_path);
  std::stringstream log;
  log << err_in.rdbuf();
  EXPECT_NE(events.find("\"client_id\":\"" + id + "\""), std::string::npos) << events;
  EXPECT_EQ(log.str().find(id), std::string::npos) << log.str();
  EXPECT_FALSE(mentionsASecret(log.str() + events));
  for (const auto& f : {pcap, cfg, err_path}) unlink(f.c_str());
}

}  // namespace
}  // namespace mqttlive
