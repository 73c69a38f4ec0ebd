// Every public capture: MQTT packets decoded per type agree with tshark (as
// recorded in SOURCES.md), and the event stream matches its golden file.
// MQTTLIVE_UPDATE_GOLDEN=1 rewrites the golden files after a deliberate change.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "mqttlive/mqtt_encoder.h"
#include "support/capture_run.h"

#include <unistd.h>

namespace mqttlive {
namespace {

namespace fs = std::filesystem;
using namespace mqttlive::testing;

std::vector<std::string> captureFiles() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(MQTTLIVE_CAPTURES_DIR)) {
    auto ext = e.path().extension().string();
    if (ext == ".pcap" || ext == ".pcapng") out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// file -> {"CONNECT": 1, ...} from the "MQTT msg types (tshark)" column.
std::map<std::string, std::map<std::string, int>> tsharkCounts() {
  std::ifstream in(std::string(MQTTLIVE_CAPTURES_DIR) + "/SOURCES.md");
  std::map<std::string, std::map<std::string, int>> out;
  std::regex item(R"(([A-Z0-9]+) (\d+))");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("| ", 0) != 0) continue;
    std::vector<std::string> cols;
    std::stringstream ss(line.substr(1));
    for (std::string c; std::getline(ss, c, '|');) cols.push_back(c);
    if (cols.size() < 9) continue;
    std::string file = std::regex_replace(cols[0], std::regex(R"(^\s+|\s+$)"), "");
    if (file.find(".pcap") == std::string::npos) continue;
    auto& m = out[file];
    const std::string& types = cols[7];
    for (auto it = std::sregex_iterator(types.begin(), types.end(), item); it != std::sregex_iterator(); ++it) {
      std::string name = (*it)[1];
      if (name == "RESERVED0") name = "RESERVED";
      m[name] += std::stoi((*it)[2]);
    }
  }
  return out;
}

std::map<std::string, int> ourCounts(const std::string& summary) {
  std::map<std::string, int> m;
  std::regex item(R"re("([A-Z]+)":(\d+))re");
  for (const char* key : {"mqtt_packets_client", "mqtt_packets_broker"}) {
    std::string obj = field(summary, key);
    for (auto it = std::sregex_iterator(obj.begin(), obj.end(), item); it != std::sregex_iterator(); ++it)
      m[(*it)[1]] += std::stoi((*it)[2]);
  }
  return m;
}

// Where tshark shows a malformed packet as a packet, mqttlive counts it as a
// named parse error instead (and never acts on it). Anything not listed here
// must match tshark exactly.
struct MalformedInstead {
  std::string type;
  std::string parse_error;
};
const std::map<std::string, MalformedInstead> kMalformed = {
    {"suricata-verify_mqtt-events-invalid-qos.pcap", {"PUBLISH", "invalid_qos"}},
    {"suricata-verify_mqtt-events-unassigned-msgtype.pcap", {"RESERVED", "reserved_type"}},
    {"suricata-verify_mqtt5-excessiveproplen.pcap", {"CONNECT", "malformed_properties"}},
};

// Captures whose MQTT runs on another port (SOURCES.md counts them with tshark's decode-as).
EngineConfig configFor(const std::string& file) {
  EngineConfig cfg;
  if (file == "nDPI_coap_mqtt.pcap") cfg.broker_ports = {17501};
  return cfg;
}

class Captures : public ::testing::TestWithParam<std::string> {};

TEST_P(Captures, PacketCountsAgreeWithTshark) {
  static const auto expected = tsharkCounts();
  const std::string file = GetParam();
  auto it = expected.find(file);
  ASSERT_NE(it, expected.end()) << file << " missing from SOURCES.md";
  auto lines = runCaptureFile(std::string(MQTTLIVE_CAPTURES_DIR) + "/" + file, configFor(file));
  ASSERT_FALSE(lines.empty());
  const std::string& summary = lines.back();
  ASSERT_EQ(field(summary, "event"), "\"summary\"");
  auto ours = ourCounts(summary);
  if (auto m = kMalformed.find(file); m != kMalformed.end()) {
    EXPECT_NE(field(summary, "parse_errors").find("\"" + m->second.parse_error + "\":1"), std::string::npos)
        << summary;
    ++ours[m->second.type];
  }
  EXPECT_EQ(ours, it->second) << file << "\n" << summary;
}

TEST_P(Captures, EventsMatchGolden) {
  const std::string file = GetParam();
  auto lines = runCaptureFile(std::string(MQTTLIVE_CAPTURES_DIR) + "/" + file, configFor(file));
  std::string got;
  for (const auto& l : lines) got += l + "\n";
  fs::path golden = fs::path(MQTTLIVE_GOLDEN_DIR) / (file + ".jsonl");
  if (std::getenv("MQTTLIVE_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(golden) << got;
    GTEST_SKIP() << "updated " << golden;
  }
  std::ifstream in(golden);
  ASSERT_TRUE(in.good()) << "no golden file " << golden << " (run with MQTTLIVE_UPDATE_GOLDEN=1)";
  std::stringstream want;
  want << in.rdbuf();
  EXPECT_EQ(got, want.str()) << file;
}

INSTANTIATE_TEST_SUITE_P(Shared, Captures, ::testing::ValuesIn(captureFiles()),
                         [](const ::testing::TestParamInfo<std::string>& i) {
                           std::string n = i.param;
                           for (char& c : n)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return n;
                         });

}  // namespace
}  // namespace mqttlive

namespace mqttlive {
namespace {

// tshark as the oracle on a capture we write: every packet type of every
// protocol level, coalesced and split across segments.
TEST(TsharkOracle, SyntheticCaptureCountsAgree) {
  if (std::system("command -v tshark >/dev/null 2>&1") != 0) GTEST_SKIP() << "tshark not installed";
  using namespace mqttlive::testing;
  PcapWriter w;
  constexpr Micros kS = kMicrosPerSecond;
  int client_port = 50000;
  for (uint8_t level : {kMqtt31, kMqtt311, kMqtt5}) {
    TcpConversation c(w, v4("10.9.0.2", static_cast<uint16_t>(client_port++)), v4("10.9.0.1", 1883));
    Micros t = 1'700'000'000 * kS + level * 100 * kS;
    c.handshake(t);
    ConnectSpec cs;
    cs.protocol_level = level;
    cs.client_id = "oracle-" + std::to_string(level);
    cs.username = "u";
    cs.password = "p";
    c.client(t + 1000, encodeConnect(cs));
    c.broker(t + 2000, encodeConnack(ConnackSpec{.protocol_level = level}));
    c.client(t + 3000, encodeSubscribe(level, 1, {"a/b", "c/#"}, 1));
    c.broker(t + 4000, encodeSuback(level, 1, {1, 1}));
    std::vector<uint8_t> batch;
    for (uint16_t i = 1; i <= 3; ++i) {
      auto p = encodePublish(level, "a/b", 1, i, std::vector<uint8_t>(100, 'x'));
      batch.insert(batch.end(), p.begin(), p.end());
    }
    c.client(t + 5000, batch);  // three PUBLISHes in one segment
    for (uint16_t i = 1; i <= 3; ++i) c.broker(t + 6000 + i, encodeAck(PacketType::kPuback, level, i));
    c.client(t + 7000, encodePublish(level, "a/b", 2, 9, std::vector<uint8_t>(10, 'y')));
    c.broker(t + 7100, encodeAck(PacketType::kPubrec, level, 9));
    c.client(t + 7200, encodeAck(PacketType::kPubrel, level, 9));
    c.broker(t + 7300, encodeAck(PacketType::kPubcomp, level, 9));
    c.client(t + 8000, encodeUnsubscribe(level, 2, {"c/#"}));
    c.broker(t + 8100, encodeAck(PacketType::kUnsuback, level, 2));
    c.client(t + 9000, encodePingreq());
    c.broker(t + 9100, encodePingresp());
    if (level == kMqtt5) {
      c.client(t + 9500, encodeAuth(0x18));
      c.broker(t + 9600, encodeAuth(0x18));
    }
    c.client(t + 10000, encodeDisconnect(level));
    c.clientFin(t + 10100);
  }
  char name[] = "/tmp/mqttlive-oracle-XXXXXX";
  close(mkstemp(name));
  ASSERT_TRUE(w.save(name));
  std::string cmd = std::string("tshark -r ") + name + " -Y mqtt -T fields -e mqtt.msgtype 2>/dev/null";
  std::map<std::string, int> theirs;
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[256];
  const char* names[] = {"RESERVED", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
                         "SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"};
  while (fgets(buf, sizeof buf, p) != nullptr) {
    std::stringstream ss(buf);
    for (std::string t; std::getline(ss, t, ',');) theirs[names[std::stoi(t) & 15]]++;
  }
  pclose(p);
  auto lines = runCaptureFile(name);
  unlink(name);
  EXPECT_EQ(ourCounts(lines.back()), theirs) << lines.back();
  EXPECT_EQ(theirs["PUBLISH"], 12);
  EXPECT_EQ(eventsOf(lines, "closed").size(), 3u);
}

}  // namespace
}  // namespace mqttlive
