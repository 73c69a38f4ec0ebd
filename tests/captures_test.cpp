// Every public capture: MQTT packets decoded per type agree with tshark (as
// recorded in SOURCES.md), and the event stream matches its golden file.
// MQTTLIVE_UPDATE_GOLDEN=1 rewrites the golden files after a deliberate change.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "support/capture_run.h"

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
