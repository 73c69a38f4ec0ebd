// Configuration loader: every invalid file under data/config is rejected with
// its exact message (operators grep for these, and reload failures are only
// visible through them), and valid files land in the right fields.
#include "mqttlive/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace mqttlive {
namespace {

namespace fs = std::filesystem;

// Relative to this file so the test needs no build-system define.
const fs::path kTestsDir = fs::path(__FILE__).parent_path();
const fs::path kDataDir = kTestsDir / "data" / "config";

std::string readFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  EXPECT_TRUE(in.good()) << p;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The message parseConfig throws for `text`, or "" when it parses.
std::string errorOf(const std::string& text, const std::string& source = "test.yaml") {
  try {
    parseConfig(text, source);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

constexpr uint32_t bit(EventType t) { return 1u << static_cast<int>(t); }

// ---------------------------------------------------------------------------
// Invalid configurations (table in the style of blackbox_exporter's config
// tests): file name -> the complete error. The source is the bare file name.

struct BadCase {
  const char* file;
  const char* error;
};

const BadCase kBadCases[] = {
    {"bad_unknown_top_key.yaml", "bad_unknown_top_key.yaml:4: metricz: unknown key"},
    {"bad_unknown_nested_key.yaml", "bad_unknown_nested_key.yaml:3: keepalive.facter: unknown key"},
    {"bad_unknown_listener_key.yaml", "bad_unknown_listener_key.yaml:3: listeners[1].prot: unknown key"},
    {"bad_duplicate_key.yaml", "bad_duplicate_key.yaml:4: keepalive.factor: duplicate key"},
    {"bad_snaplen_not_integer.yaml",
     "bad_snaplen_not_integer.yaml:3: capture.snaplen: expected an integer, got 'big'"},
    {"bad_snaplen_too_big.yaml",
     "bad_snaplen_too_big.yaml:2: capture.snaplen: must be between 64 and 262144, got 300000"},
    {"bad_max_flows_float.yaml",
     "bad_max_flows_float.yaml:2: limits.max_flows: expected an integer, got '1.5'"},
    {"bad_factor_below_one.yaml",
     "bad_factor_below_one.yaml:2: keepalive.factor: must be between 1 and 10, got 0.5"},
    {"bad_factor_not_number.yaml",
     "bad_factor_not_number.yaml:2: keepalive.factor: expected a number, got 'fast'"},
    {"bad_factor_nan.yaml", "bad_factor_nan.yaml:2: keepalive.factor: expected a number, got 'nan'"},
    {"bad_negative_idle.yaml",
     "bad_negative_idle.yaml:2: keepalive.no_keepalive_idle_seconds: must be > 0 and <= 1000000000, got -5"},
    {"bad_grace_negative.yaml",
     "bad_grace_negative.yaml:2: keepalive.enforcement_grace_seconds: must be between 0 and 1000000000, got "
     "-1"},
    {"bad_close_settle_too_long.yaml",
     "bad_close_settle_too_long.yaml:2: keepalive.close_settle_seconds: must be > 0 and <= 60, got 61"},
    {"bad_port_zero.yaml", "bad_port_zero.yaml:2: listeners[0].port: must be between 1 and 65535, got 0"},
    {"bad_port_too_big.yaml",
     "bad_port_too_big.yaml:3: listeners[1].port: must be between 1 and 65535, got 70000"},
    {"bad_duplicate_port.yaml",
     "bad_duplicate_port.yaml:6: listeners[2].port: duplicate port 1883 (already used by listeners[0])"},
    {"bad_listener_kind.yaml",
     "bad_listener_kind.yaml:3: listeners[0].kind: must be one of mqtt, tls, websocket, got 'mqtts'"},
    {"bad_listener_missing_port.yaml",
     "bad_listener_missing_port.yaml:3: listeners[1].port: required key is missing"},
    {"bad_listener_not_mapping.yaml",
     "bad_listener_not_mapping.yaml:1: listeners[0]: expected a mapping, got '1883'"},
    {"bad_empty_listeners.yaml", "bad_empty_listeners.yaml:1: listeners: must not be empty"},
    {"bad_empty_interfaces.yaml", "bad_empty_interfaces.yaml:2: capture.interfaces: must not be empty"},
    {"bad_interfaces_not_list.yaml",
     "bad_interfaces_not_list.yaml:2: capture.interfaces: expected a list, got 'eth0'"},
    {"bad_duplicate_interface.yaml",
     "bad_duplicate_interface.yaml:5: capture.interfaces[2]: duplicate interface 'eth0'"},
    {"bad_buffer_size_too_small.yaml",
     "bad_buffer_size_too_small.yaml:2: capture.buffer_size_bytes: must be between 1048576 and 2147483647, "
     "got 65536"},
    {"bad_timeout_zero.yaml",
     "bad_timeout_zero.yaml:2: capture.timeout_ms: must be between 1 and 1000, got 0"},
    {"bad_section_not_mapping.yaml",
     "bad_section_not_mapping.yaml:1: capture: expected a mapping, got 'eth0'"},
    {"bad_max_buffered_bytes_too_small.yaml",
     "bad_max_buffered_bytes_too_small.yaml:2: limits.max_buffered_bytes: must be between 65536 and "
     "9223372036854775807, got 1024"},
    {"bad_listen_address.yaml",
     "bad_listen_address.yaml:2: metrics.listen_address: expected \"host:port\", \"[host]:port\" or "
     "\":port\", "
     "got 'localhost'"},
    {"bad_listen_address_port.yaml",
     "bad_listen_address_port.yaml:2: metrics.listen_address: port must be between 1 and 65535, got '0'"},
    {"bad_listen_address_ipv6_unbracketed.yaml",
     "bad_listen_address_ipv6_unbracketed.yaml:2: metrics.listen_address: expected \"host:port\", "
     "\"[host]:port\" or \":port\", got '::1:9883'"},
    {"bad_metrics_path.yaml", "bad_metrics_path.yaml:3: metrics.path: must start with '/', got 'metrics'"},
    {"bad_max_series_zero.yaml",
     "bad_max_series_zero.yaml:4: metrics.per_client.max_series: must be between 1 and 10000, got 0"},
    {"bad_per_client_enabled_not_bool.yaml",
     "bad_per_client_enabled_not_bool.yaml:3: metrics.per_client.enabled: expected true or false, got 'yes'"},
    {"bad_tls_key_without_cert.yaml",
     "bad_tls_key_without_cert.yaml:2: metrics.tls: key_file is set but cert_file is missing"},
    {"bad_tls_cert_without_key.yaml",
     "bad_tls_cert_without_key.yaml:2: metrics.tls: cert_file is set but key_file is missing"},
    {"bad_tls_client_ca_alone.yaml",
     "bad_tls_client_ca_alone.yaml:2: metrics.tls: client_ca_file needs cert_file and key_file"},
    {"bad_tls_unknown_key.yaml", "bad_tls_unknown_key.yaml:5: metrics.tls.cert: unknown key"},
    {"bad_tls_empty_cert.yaml", "bad_tls_empty_cert.yaml:3: metrics.tls.cert_file: must not be empty"},
    {"bad_event_type.yaml",
     "bad_event_type.yaml:2: events.types[1]: must be one of connected, connect_refused, keepalive_expired, "
     "takeover, closed, open_at_end, midstream, keepalive_learned, summary, got 'disconnected'"},
    {"bad_duplicate_event_type.yaml",
     "bad_duplicate_event_type.yaml:5: events.types[2]: duplicate event type 'closed'"},
    {"bad_empty_output.yaml", "bad_empty_output.yaml:2: events.output: must not be empty"},
    {"bad_output_null.yaml", "bad_output_null.yaml:2: events.output: expected a string, got null"},
    {"bad_flap_window_too_short.yaml",
     "bad_flap_window_too_short.yaml:3: detectors.flapping.window_seconds: must be between 10 and 86400, got 5"},
    {"bad_flap_connects_one.yaml",
     "bad_flap_connects_one.yaml:3: detectors.flapping.connects: must be between 2 and 10000, got 1"},
    {"bad_flap_max_client_ids_zero.yaml",
     "bad_flap_max_client_ids_zero.yaml:3: detectors.flapping.max_client_ids: must be between 1 and 1000000, "
     "got 0"},
    {"bad_flap_top_n_too_big.yaml",
     "bad_flap_top_n_too_big.yaml:3: detectors.flapping.top_n: must be between 0 and 100, got 101"},
    {"bad_storm_window_too_long.yaml",
     "bad_storm_window_too_long.yaml:3: detectors.storm.window_seconds: must be between 1 and 60, got 61"},
    {"bad_storm_factor_one.yaml", "bad_storm_factor_one.yaml:3: detectors.storm.factor: must be > 1 and <= 1000, got 1"},
    {"bad_storm_min_rate_zero.yaml",
     "bad_storm_min_rate_zero.yaml:3: detectors.storm.min_rate: must be > 0 and <= 1000000, got 0"},
    {"bad_storm_baseline_too_short.yaml",
     "bad_storm_baseline_too_short.yaml:3: detectors.storm.baseline_seconds: must be between 60 and 604800, got 30"},
    {"bad_idle_timeout_min_closes.yaml",
     "bad_idle_timeout_min_closes.yaml:3: detectors.idle_timeout.min_closes: must be between 2 and 256, got 300"},
    {"bad_idle_timeout_min_share.yaml",
     "bad_idle_timeout_min_share.yaml:3: detectors.idle_timeout.min_share: must be > 0 and <= 1, got 1.5"},
    {"bad_idle_timeout_tolerance_zero.yaml",
     "bad_idle_timeout_tolerance_zero.yaml:3: detectors.idle_timeout.tolerance_seconds: must be > 0 and <= 60, "
     "got 0"},
    {"bad_detectors_unknown_key.yaml", "bad_detectors_unknown_key.yaml:2: detectors.flaping: unknown key"},
    {"bad_detectors_storm_not_mapping.yaml",
     "bad_detectors_storm_not_mapping.yaml:2: detectors.storm: expected a mapping, got 'on'"},
    {"bad_syntax.yaml", "bad_syntax.yaml:3: syntax error: end of sequence flow not found"},
    {"bad_top_level_list.yaml", "bad_top_level_list.yaml:1: (top level): expected a mapping, got a list"},
    {"bad_top_level_scalar.yaml",
     "bad_top_level_scalar.yaml:1: (top level): expected a mapping, got 'mqttlive'"},
    {"bad_two_documents.yaml",
     "bad_two_documents.yaml:4: (top level): expected a single YAML document, got 2"},
};

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, RejectedWithExactMessage) {
  const BadCase& c = GetParam();
  const std::string text = readFile(kDataDir / c.file);
  EXPECT_EQ(errorOf(text, c.file), c.error);
}

INSTANTIATE_TEST_SUITE_P(Files, BadConfigTest, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& info) {
                           std::string name = fs::path(info.param.file).stem().string();
                           std::replace_if(
                               name.begin(), name.end(),
                               [](char ch) { return !std::isalnum(static_cast<unsigned char>(ch)); }, '_');
                           return name;
                         });

// A bad_*.yaml file without a table entry would never be checked.
TEST(BadConfigTable, CoversEveryBadFile) {
  std::set<std::string> in_table;
  for (const BadCase& c : kBadCases) {
    EXPECT_TRUE(in_table.insert(c.file).second) << "listed twice: " << c.file;
    EXPECT_TRUE(fs::exists(kDataDir / c.file)) << "missing file: " << c.file;
  }
  size_t files = 0;
  for (const auto& entry : fs::directory_iterator(kDataDir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("bad_", 0) != 0) continue;
    ++files;
    EXPECT_TRUE(in_table.count(name)) << "no expected error for " << name;
  }
  EXPECT_GE(files, 15u);
}

// Cases that read better inline than as files.
TEST(ParseConfig, RejectsEdgeValues) {
  EXPECT_EQ(errorOf("listeners:\n  - port: 99999999999999999999\n"),
            "test.yaml:2: listeners[0].port: must be between 1 and 65535, got 99999999999999999999");
  EXPECT_EQ(errorOf("keepalive:\n  factor: 1e999\n"),
            "test.yaml:2: keepalive.factor: must be between 1 and 10, got 1e999");
  EXPECT_EQ(errorOf("keepalive:\n  factor: .inf\n"),
            "test.yaml:2: keepalive.factor: expected a number, got '.inf'");
  EXPECT_EQ(errorOf("keepalive:\n  factor: 10.01\n"),
            "test.yaml:2: keepalive.factor: must be between 1 and 10, got 10.01");
  EXPECT_EQ(errorOf("keepalive:\n  close_settle_seconds: 0\n"),
            "test.yaml:2: keepalive.close_settle_seconds: must be > 0 and <= 60, got 0");
  EXPECT_EQ(errorOf("keepalive:\n  no_keepalive_idle_seconds: 0\n"),
            "test.yaml:2: keepalive.no_keepalive_idle_seconds: must be > 0 and <= 1000000000, got 0");
  EXPECT_EQ(errorOf("capture:\n  snaplen: 0x100\n"),
            "test.yaml:2: capture.snaplen: expected an integer, got '0x100'");
  EXPECT_EQ(errorOf("capture:\n  snaplen: 63\n"),
            "test.yaml:2: capture.snaplen: must be between 64 and 262144, got 63");
  EXPECT_EQ(errorOf("capture:\n  timeout_ms: 1001\n"),
            "test.yaml:2: capture.timeout_ms: must be between 1 and 1000, got 1001");
  EXPECT_EQ(errorOf("capture:\n  snaplen: [1]\n"),
            "test.yaml:2: capture.snaplen: expected an integer, got a list");
  EXPECT_EQ(errorOf("capture:\n  snaplen:\n"), "test.yaml:2: capture.snaplen: expected an integer, got null");
  EXPECT_EQ(errorOf("limits:\n  max_flows: 0\n"),
            "test.yaml:2: limits.max_flows: must be between 1 and 4294967295, got 0");
  EXPECT_EQ(errorOf("limits:\n  flow_buffer_bytes: 4095\n"),
            "test.yaml:2: limits.flow_buffer_bytes: must be between 4096 and 4294967295, got 4095");
  EXPECT_EQ(errorOf("limits:\n  max_packet_size: 15\n"),
            "test.yaml:2: limits.max_packet_size: must be between 16 and 4294967295, got 15");
  EXPECT_EQ(errorOf("metrics:\n  per_client:\n    max_series: 10001\n"),
            "test.yaml:3: metrics.per_client.max_series: must be between 1 and 10000, got 10001");
  EXPECT_EQ(errorOf("metrics:\n  listen_address: \"[]:9883\"\n"),
            "test.yaml:2: metrics.listen_address: expected \"host:port\", \"[host]:port\" or \":port\", got "
            "'[]:9883'");
  EXPECT_EQ(errorOf("metrics:\n  listen_address: \":65536\"\n"),
            "test.yaml:2: metrics.listen_address: port must be between 1 and 65535, got '65536'");
  EXPECT_EQ(errorOf("metrics:\n  listen_address: \"host:\"\n"),
            "test.yaml:2: metrics.listen_address: expected \"host:port\", \"[host]:port\" or \":port\", got "
            "'host:'");
  EXPECT_EQ(errorOf("metrics:\n  path: \"\"\n"), "test.yaml:2: metrics.path: must start with '/', got ''");
  EXPECT_EQ(errorOf("metrics:\n  per_client: true\n"),
            "test.yaml:2: metrics.per_client: expected a mapping, got 'true'");
  EXPECT_EQ(errorOf("events:\n  types: closed\n"),
            "test.yaml:2: events.types: expected a list, got 'closed'");
  EXPECT_EQ(errorOf("listeners:\n  - port: 1883\n    port: 1884\n"),
            "test.yaml:3: listeners[0].port: duplicate key");
  EXPECT_EQ(errorOf("[a]: 1\n"), "test.yaml:1: (top level): keys must be strings, got a list");
  EXPECT_EQ(errorOf("capture:\n  interfaces: [\"\"]\n"),
            "test.yaml:2: capture.interfaces[0]: must not be empty");
}

TEST(LoadConfigFile, MissingFile) {
  const std::string path = (kDataDir / "does_not_exist.yaml").string();
  try {
    loadConfigFile(path);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": cannot read: " + std::strerror(ENOENT));
  }
}

TEST(LoadConfigFile, Directory) {
  const std::string path = kDataDir.string();
  try {
    loadConfigFile(path);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": cannot read: " + std::strerror(EISDIR));
  }
}

TEST(LoadConfigFile, ErrorsNameThePath) {
  const std::string path = (kDataDir / "bad_unknown_nested_key.yaml").string();
  try {
    loadConfigFile(path);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path + ":3: keepalive.facter: unknown key");
  }
}

// ---------------------------------------------------------------------------
// Valid configurations.

void expectDefaults(const Config& c) {
  const Config d;
  EXPECT_EQ(c.capture.interfaces, d.capture.interfaces);
  EXPECT_EQ(c.capture.snaplen, 262144);
  EXPECT_EQ(c.capture.buffer_size_bytes, 64 << 20);
  EXPECT_EQ(c.capture.timeout_ms, 50);
  ASSERT_EQ(c.listeners.size(), 1u);
  EXPECT_EQ(c.listeners[0].port, 1883);
  EXPECT_EQ(c.listeners[0].kind, ListenerKind::kMqtt);
  EXPECT_EQ(c.engine.broker_ports, std::vector<uint16_t>{1883});
  EXPECT_EQ(c.engine.tracker.keepalive_factor, 1.5);
  EXPECT_EQ(c.engine.tracker.no_keepalive_idle, 300 * kMicrosPerSecond);
  EXPECT_EQ(c.engine.tracker.enforcement_min_silence, d.engine.tracker.enforcement_min_silence);
  EXPECT_EQ(c.engine.tracker.max_connections, 1u << 20);
  EXPECT_EQ(c.engine.max_flows, 1u << 20);
  EXPECT_EQ(c.engine.flow_buffer_bytes, 256u << 10);
  EXPECT_EQ(c.engine.total_buffer_bytes, 256ull << 20);
  EXPECT_EQ(c.engine.mqtt.max_packet_size, 1u << 20);
  EXPECT_EQ(c.engine.close_settle, 2 * kMicrosPerSecond);
  EXPECT_EQ(c.engine.idle_flow_timeout, d.engine.idle_flow_timeout);
  EXPECT_EQ(c.enforcement_grace_seconds, 10.0);
  EXPECT_EQ(c.metrics.listen_address, ":9883");
  EXPECT_EQ(c.metrics.path, "/metrics");
  EXPECT_FALSE(c.metrics.per_client.enabled);
  EXPECT_EQ(c.metrics.per_client.max_series, 100u);
  EXPECT_FALSE(c.metrics.per_client.hash_client_id);
  EXPECT_EQ(c.events.output, "stdout");
  EXPECT_EQ(c.events.types_mask, ~0u);
  EXPECT_TRUE(c.events.summary);
  // detectors.*: the FlapDetector's own defaults (README, docs/metrics.md).
  const FlapConfig& f = c.detectors.flap;
  EXPECT_EQ(f.window, 300 * kMicrosPerSecond);
  EXPECT_EQ(f.flapping_connects, 5u);
  EXPECT_EQ(f.max_clients, 10000u);
  EXPECT_EQ(c.detectors.top_n, 20u);
  EXPECT_EQ(f.storm_window_seconds, 10u);
  EXPECT_EQ(f.storm_factor, 5.0);
  EXPECT_EQ(f.storm_floor, 2.0);
  EXPECT_EQ(f.baseline_seconds, 600.0);
  EXPECT_EQ(f.fingerprint_min_closes, 20u);
  EXPECT_EQ(f.fingerprint_min_fraction, 0.5);
  EXPECT_EQ(f.fingerprint_tolerance, kMicrosPerSecond);
}

TEST(ParseConfig, EmptyInputGivesDefaults) {
  for (const char* text : {"", "\n", "# nothing but a comment\n", "---\n", "{}\n", "~\n",
                           // Sections whose keys are all commented out.
                           "capture:\nkeepalive:\nlimits:\nmetrics:\n  per_client:\nevents:\n",
                           "detectors:\n", "detectors:\n  flapping:\n  storm:\n  idle_timeout:\n"}) {
    SCOPED_TRACE(text);
    expectDefaults(parseConfig(text, "empty.yaml"));
  }
}

TEST(ParseConfig, FullExampleSetsEveryField) {
  const Config c = loadConfigFile((kDataDir / "good_full.yaml").string());

  EXPECT_EQ(c.capture.interfaces, (std::vector<std::string>{"eth0", "eth1"}));
  EXPECT_EQ(c.capture.snaplen, 65535);
  EXPECT_EQ(c.capture.buffer_size_bytes, 128 << 20);
  EXPECT_EQ(c.capture.timeout_ms, 100);

  ASSERT_EQ(c.listeners.size(), 4u);
  EXPECT_EQ(c.listeners[0].port, 1884);
  EXPECT_EQ(c.listeners[0].kind, ListenerKind::kMqtt);
  EXPECT_EQ(c.listeners[1].port, 8883);
  EXPECT_EQ(c.listeners[1].kind, ListenerKind::kTls);
  EXPECT_EQ(c.listeners[2].port, 8080);
  EXPECT_EQ(c.listeners[2].kind, ListenerKind::kWebsocket);
  EXPECT_EQ(c.listeners[3].port, 11883);
  EXPECT_EQ(c.listeners[3].kind, ListenerKind::kMqtt);  // kind defaults to mqtt
  // Every listener is watched; its kind says how the engine reads it.
  EXPECT_EQ(c.engine.broker_ports, (std::vector<uint16_t>{1884, 8883, 8080, 11883}));

  EXPECT_DOUBLE_EQ(c.engine.tracker.keepalive_factor, 2.25);
  EXPECT_DOUBLE_EQ(c.enforcement_grace_seconds, 6.5);
  EXPECT_EQ(c.engine.tracker.no_keepalive_idle, 120 * kMicrosPerSecond);
  EXPECT_EQ(c.engine.close_settle, kMicrosPerSecond / 2);

  EXPECT_EQ(c.engine.max_flows, 5000u);
  EXPECT_EQ(c.engine.tracker.max_connections, 5000u);
  EXPECT_EQ(c.engine.total_buffer_bytes, 1048576u);
  EXPECT_EQ(c.engine.flow_buffer_bytes, 8192u);
  EXPECT_EQ(c.engine.mqtt.max_packet_size, 65536u);

  EXPECT_EQ(c.metrics.listen_address, "[::1]:9090");
  EXPECT_EQ(c.metrics.path, "/prom");
  EXPECT_TRUE(c.metrics.per_client.enabled);
  EXPECT_EQ(c.metrics.per_client.max_series, 250u);
  EXPECT_TRUE(c.metrics.per_client.hash_client_id);

  EXPECT_EQ(c.events.output, "/var/log/mqttlive/events.jsonl");
  EXPECT_EQ(c.events.types_mask,
            bit(EventType::kKeepaliveExpired) | bit(EventType::kClosed) | bit(EventType::kTakeover));
  EXPECT_FALSE(c.events.summary);

  const FlapConfig& f = c.detectors.flap;
  EXPECT_EQ(f.window, 600 * kMicrosPerSecond);
  EXPECT_EQ(f.flapping_connects, 8u);
  EXPECT_EQ(f.max_clients, 2000u);
  EXPECT_EQ(c.detectors.top_n, 50u);
  EXPECT_EQ(f.storm_window_seconds, 30u);
  EXPECT_DOUBLE_EQ(f.storm_factor, 4.0);
  EXPECT_DOUBLE_EQ(f.storm_floor, 0.5);
  EXPECT_DOUBLE_EQ(f.baseline_seconds, 1800.0);
  EXPECT_EQ(f.fingerprint_min_closes, 10u);
  EXPECT_DOUBLE_EQ(f.fingerprint_min_fraction, 0.3);
  EXPECT_EQ(f.fingerprint_tolerance, 2'500'000);
}

// Edges of the detectors.* ranges (the table above has one file per key).
TEST(ParseConfig, DetectorEdges) {
  const Config lo = parseConfig(
      "detectors:\n  flapping:\n    window_seconds: 10\n    connects: 2\n    max_client_ids: 1\n    top_n: 0\n"
      "  storm:\n    window_seconds: 1\n    factor: 1.01\n    min_rate: 0.001\n    baseline_seconds: 60\n"
      "  idle_timeout:\n    min_closes: 2\n    min_share: 1\n    tolerance_seconds: 0.001\n",
      "t");
  EXPECT_EQ(lo.detectors.flap.window, 10 * kMicrosPerSecond);
  EXPECT_EQ(lo.detectors.top_n, 0u);
  EXPECT_EQ(lo.detectors.flap.storm_window_seconds, 1u);
  EXPECT_DOUBLE_EQ(lo.detectors.flap.fingerprint_min_fraction, 1.0);
  EXPECT_EQ(lo.detectors.flap.fingerprint_tolerance, 1000);
  EXPECT_EQ(parseConfig("detectors:\n  flapping:\n    top_n: 100\n", "t").detectors.top_n, 100u);
  EXPECT_EQ(parseConfig("detectors:\n  storm:\n    window_seconds: 60\n", "t").detectors.flap.storm_window_seconds,
            60u);
  EXPECT_EQ(errorOf("detectors:\n  flapping:\n    window_seconds: 86401\n"),
            "test.yaml:3: detectors.flapping.window_seconds: must be between 10 and 86400, got 86401");
  EXPECT_EQ(errorOf("detectors:\n  flapping:\n    window_seconds: 300.5\n"),
            "test.yaml:3: detectors.flapping.window_seconds: expected an integer, got '300.5'");
  EXPECT_EQ(errorOf("detectors:\n  storm:\n    factor: 1001\n"),
            "test.yaml:3: detectors.storm.factor: must be > 1 and <= 1000, got 1001");
  EXPECT_EQ(errorOf("detectors:\n  storm:\n    baseline_seconds: 604801\n"),
            "test.yaml:3: detectors.storm.baseline_seconds: must be between 60 and 604800, got 604801");
  EXPECT_EQ(errorOf("detectors:\n  idle_timeout:\n    min_share: 0\n"),
            "test.yaml:3: detectors.idle_timeout.min_share: must be > 0 and <= 1, got 0");
  EXPECT_EQ(errorOf("detectors:\n  idle_timeout:\n    min_closes: 1\n"),
            "test.yaml:3: detectors.idle_timeout.min_closes: must be between 2 and 256, got 1");
  EXPECT_EQ(errorOf("detectors:\n  idle_timeout:\n    tolerance_seconds: 61\n"),
            "test.yaml:3: detectors.idle_timeout.tolerance_seconds: must be > 0 and <= 60, got 61");
  EXPECT_EQ(errorOf("detectors:\n  storm:\n    factor: 5\n    factor: 6\n"),
            "test.yaml:4: detectors.storm.factor: duplicate key");
  EXPECT_EQ(errorOf("detectors: [storm]\n"), "test.yaml:1: detectors: expected a mapping, got a list");
}

TEST(ParseConfig, EventTypes) {
  EXPECT_EQ(parseConfig("events:\n  types: []\n", "t").events.types_mask, 0u);
  EXPECT_FALSE(parseConfig("events:\n  types: []\n", "t").events.summary);

  const Config summary_only = parseConfig("events:\n  types: [summary]\n", "t");
  EXPECT_EQ(summary_only.events.types_mask, 0u);
  EXPECT_TRUE(summary_only.events.summary);

  std::string all = "events:\n  types:\n";
  for (int t = 0; t < static_cast<int>(EventType::kCount); ++t) {
    all += std::string("    - ") + toString(static_cast<EventType>(t)) + "\n";
  }
  const uint32_t all_bits = (1u << static_cast<int>(EventType::kCount)) - 1;
  EXPECT_EQ(parseConfig(all, "t").events.types_mask, all_bits);
}

TEST(ParseConfig, AcceptedSpellings) {
  // Quoted numbers, an explicit '+', integers where a number is expected.
  const Config c = parseConfig(
      "listeners:\n  - port: \"1884\"\n    kind: \"tls\"\n  - port: +1885\n"
      "keepalive:\n  factor: 2\n  enforcement_grace_seconds: 0\n"
      "metrics:\n  per_client:\n    enabled: True\n    hash_client_id: FALSE\n",
      "t");
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].port, 1884);
  EXPECT_EQ(c.listeners[0].kind, ListenerKind::kTls);
  EXPECT_EQ(c.listeners[1].port, 1885);
  EXPECT_EQ(c.engine.broker_ports, (std::vector<uint16_t>{1884, 1885}));
  EXPECT_EQ(c.engine.tracker.keepalive_factor, 2.0);
  EXPECT_EQ(c.enforcement_grace_seconds, 0.0);
  EXPECT_TRUE(c.metrics.per_client.enabled);
  EXPECT_FALSE(c.metrics.per_client.hash_client_id);

  for (const char* addr : {":9883", "0.0.0.0:9883", "localhost:1", "[::]:65535", "[fe80::1%eth0]:9883"}) {
    SCOPED_TRACE(addr);
    EXPECT_EQ(parseConfig(std::string("metrics:\n  listen_address: \"") + addr + "\"\n", "t")
                  .metrics.listen_address,
              addr);
  }
}

TEST(ParseConfig, TinyDurationsDoNotRoundToZero) {
  // 0 would mean "settle immediately" / "idle at once", not "very short".
  const Config c =
      parseConfig("keepalive:\n  close_settle_seconds: 0.0000001\n  no_keepalive_idle_seconds: 1e-9\n", "t");
  EXPECT_EQ(c.engine.close_settle, 1);
  EXPECT_EQ(c.engine.tracker.no_keepalive_idle, 1);
}

TEST(ApplyListeners, EveryListenerWithItsTransport) {
  Config c;
  c.listeners = {{8883, ListenerKind::kTls, false, 30},
                 {1883, ListenerKind::kMqtt},
                 {8083, ListenerKind::kWebsocket, true},
                 {1884, ListenerKind::kMqtt}};
  c.engine.broker_ports = {9999};  // replaced, not appended to
  c.engine.port_options = {PortOptions{.port = 9999}};
  applyListeners(c);
  EXPECT_EQ(c.engine.broker_ports, (std::vector<uint16_t>{8883, 1883, 8083, 1884}));
  EXPECT_EQ(c.engine.port_options,
            (std::vector<PortOptions>{{8883, Transport::kTls, false, 30},
                                      {1883, Transport::kTcp, false, 0},
                                      {8083, Transport::kWebsocket, true, 0},
                                      {1884, Transport::kTcp, false, 0}}));
}

TEST(ParseConfig, ListenerProxyProtocolAndTlsKeepalive) {
  const Config c = parseConfig(
      "listeners:\n  - port: 8883\n    kind: tls\n    keepalive_seconds: 60\n    proxy_protocol: true\n"
      "  - port: 1883\n",
      "t");
  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_TRUE(c.listeners[0].proxy_protocol);
  EXPECT_EQ(c.listeners[0].keepalive_seconds, 60);
  EXPECT_FALSE(c.listeners[1].proxy_protocol);
  EXPECT_EQ(c.listeners[1].keepalive_seconds, 0);
  ASSERT_EQ(c.engine.port_options.size(), 2u);
  EXPECT_EQ(c.engine.port_options[0], (PortOptions{8883, Transport::kTls, true, 60}));
  // keepalive_seconds before kind is fine; the check runs on the whole listener.
  EXPECT_EQ(parseConfig("listeners:\n  - keepalive_seconds: 5\n    port: 8883\n    kind: tls\n", "t")
                .listeners[0]
                .keepalive_seconds,
            5);
  EXPECT_EQ(errorOf("listeners:\n  - port: 1883\n    keepalive_seconds: 60\n"),
            "test.yaml:3: listeners[0].keepalive_seconds: only for kind tls (plain and websocket listeners "
            "read it from CONNECT)");
  EXPECT_EQ(errorOf("listeners:\n  - port: 8883\n    kind: tls\n    keepalive_seconds: 0\n"),
            "test.yaml:4: listeners[0].keepalive_seconds: must be between 1 and 65535, got 0");
  EXPECT_EQ(errorOf("listeners:\n  - port: 8883\n    proxy_protocol: yes\n"),
            "test.yaml:3: listeners[0].proxy_protocol: expected true or false, got 'yes'");
}

// Hardening keys: idle-flow eviction, the state file, HTTP basic auth.
TEST(ParseConfig, HardeningKeys) {
  const Config d;
  EXPECT_EQ(d.engine.idle_flow_timeout, 0);
  EXPECT_TRUE(d.state.file.empty());
  EXPECT_EQ(d.state.max_age, 600 * kMicrosPerSecond);
  EXPECT_TRUE(d.metrics.basic_auth.username.empty());

  const Config c = parseConfig(
      "limits:\n  idle_flow_timeout_seconds: 90\n"
      "state:\n  file: /var/lib/mqttlive/state.bin\n  max_age_seconds: 120\n"
      "metrics:\n  basic_auth:\n    username: prom\n    password_file: /etc/mqttlive/http.pw\n",
      "t");
  EXPECT_EQ(c.engine.idle_flow_timeout, 90 * kMicrosPerSecond);
  EXPECT_EQ(c.state.file, "/var/lib/mqttlive/state.bin");
  EXPECT_EQ(c.state.max_age, 120 * kMicrosPerSecond);
  EXPECT_EQ(c.metrics.basic_auth.username, "prom");
  EXPECT_EQ(c.metrics.basic_auth.password_file, "/etc/mqttlive/http.pw");
  EXPECT_EQ(parseConfig("limits:\n  idle_flow_timeout_seconds: 0\n", "t").engine.idle_flow_timeout, 0);

  EXPECT_EQ(errorOf("limits:\n  idle_flow_timeout_seconds: -1\n"),
            "test.yaml:2: limits.idle_flow_timeout_seconds: must be between 0 and 1000000000, got -1");
  EXPECT_EQ(errorOf("state:\n  max_age_seconds: 0\n"),
            "test.yaml:2: state.max_age_seconds: must be > 0 and <= 1000000000, got 0");
  EXPECT_EQ(errorOf("state:\n  fiel: x\n"), "test.yaml:2: state.fiel: unknown key");
  EXPECT_EQ(errorOf("metrics:\n  basic_auth:\n    username: prom\n"),
            "test.yaml:2: metrics.basic_auth: username is set but password_file is missing");
  EXPECT_EQ(errorOf("metrics:\n  basic_auth:\n    password_file: /x\n"),
            "test.yaml:2: metrics.basic_auth: password_file is set but username is missing");
  EXPECT_EQ(errorOf("metrics:\n  basic_auth:\n    username: a:b\n    password_file: /x\n"),
            "test.yaml:3: metrics.basic_auth.username: must not contain ':'");
  EXPECT_EQ(errorOf("metrics:\n  basic_auth:\n    password: hunter2\n"),
            "test.yaml:3: metrics.basic_auth.password: unknown key");
}

// metrics.tls (HTTPS): file names only; the files themselves are loaded, and a
// bad path or a mismatched key rejected, when the server starts (https_test).
TEST(ConfigTls, ParsesTheCertificateKeyAndClientCa) {
  EXPECT_TRUE(parseConfig("", "t").metrics.tls.cert_file.empty());
  const Config c = parseConfig(
      "metrics:\n  tls:\n    cert_file: /etc/mqttlive/tls.crt\n    key_file: /etc/mqttlive/tls.key\n"
      "    client_ca_file: /etc/mqttlive/ca.crt\n",
      "t");
  EXPECT_EQ(c.metrics.tls.cert_file, "/etc/mqttlive/tls.crt");
  EXPECT_EQ(c.metrics.tls.key_file, "/etc/mqttlive/tls.key");
  EXPECT_EQ(c.metrics.tls.client_ca_file, "/etc/mqttlive/ca.crt");
  EXPECT_TRUE(parseConfig("metrics:\n  tls:\n", "t").metrics.tls.cert_file.empty());  // all commented out
}

// The shipped example must load: it is what operators copy.
TEST(DeployConfig, ExampleParses) {
  const fs::path path = kTestsDir.parent_path() / "deploy" / "mqttlive.yaml";
  if (!fs::exists(path)) GTEST_SKIP() << path << " not present";
  const Config c = loadConfigFile(path.string());
  EXPECT_FALSE(c.engine.broker_ports.empty());
}

}  // namespace
}  // namespace mqttlive
