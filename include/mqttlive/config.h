// The operator's configuration: one YAML file (--config.file) plus flags that
// override it. Loading validates everything and throws ConfigError naming the
// key and line; nothing on the data path reads YAML.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "mqttlive/capture.h"
#include "mqttlive/engine.h"
#include "mqttlive/flap_detector.h"

namespace mqttlive {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ListenerKind : uint8_t { kMqtt = 0, kTls, kWebsocket };

struct Listener {
  uint16_t port = 1883;
  ListenerKind kind = ListenerKind::kMqtt;
  bool proxy_protocol = false;     // connections start with a PROXY protocol v1/v2 header
  uint16_t keepalive_seconds = 0;  // kind tls only: keepalive to assume (0 = infer from record cadence)
};

struct CaptureConfig {
  std::vector<std::string> interfaces{"any"};
  int snaplen = 262144;
  int buffer_size_bytes = 64 << 20;
  int timeout_ms = 50;
};

struct PerClientConfig {
  bool enabled = false;
  uint32_t max_series = 100;
  bool hash_client_id = false;
};

// HTTP basic auth on every endpoint but /healthz. Both or neither are set;
// the password is read from its file at start (never from the YAML, never logged).
struct BasicAuthConfig {
  std::string username;       // empty: no authentication
  std::string password_file;
};

// HTTPS on metrics.listen_address (names as in Prometheus exporter-toolkit's
// tls_server_config). cert_file and key_file both or neither; client_ca_file
// (mutual TLS) needs them. The files are read at start, not here.
struct TlsConfig {
  std::string cert_file;       // empty: plain HTTP
  std::string key_file;
  std::string client_ca_file;  // set: clients must present a certificate it signed
};

struct MetricsConfig {
  std::string listen_address = ":9883";
  std::string path = "/metrics";
  PerClientConfig per_client;
  BasicAuthConfig basic_auth;
  TlsConfig tls;
};

// Restart without amnesia (state_file.h): open connections are saved here
// every 30 s and at shutdown, and restored at start when not older than max_age.
struct StateConfig {
  std::string file;                             // empty: disabled
  Micros max_age = 600 * kMicrosPerSecond;
};

struct EventsConfig {
  std::string output = "stdout";  // "stdout" or a file path
  uint32_t types_mask = ~0u;      // bit i = EventType i
  // The final "summary" line of an offline run. Listed in events.types like an
  // event (it is one in the JSON stream) but it is not an EventType.
  bool summary = true;
};

// detectors.*: the storm / flapping / idle-timeout fingerprint detector
// (flap_detector.h) and how many flapping client ids /api/summary lists.
struct DetectorsConfig {
  FlapConfig flap;
  uint32_t top_n = 20;  // 0..FlapDetector::kMaxTop
};

struct Config {
  CaptureConfig capture;
  std::vector<Listener> listeners{Listener{}};
  // keepalive.factor, keepalive.no_keepalive_idle_seconds, limits.* land here.
  EngineConfig engine;
  // Broker closes within this much of the deadline count as enforcement on time
  // (alerting and the enforcement histogram use it; Mosquitto: up to ~6 s late).
  double enforcement_grace_seconds = 10.0;
  MetricsConfig metrics;
  EventsConfig events;
  StateConfig state;
  DetectorsConfig detectors;
};

// Parses YAML text. `source` names the file in messages. Throws ConfigError
// like: "mqttlive.yaml:7: keepalive.factor: must be a number >= 1.0, got 'abc'".
Config parseConfig(const std::string& yaml_text, const std::string& source);
Config loadConfigFile(const std::string& path);
// Derives engine.broker_ports (every listener) and engine.port_options from listeners.
void applyListeners(Config& c);

}  // namespace mqttlive
