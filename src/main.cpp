// Thin entry point: flags -> config -> runner. All logic is in mqttlive_lib.
#include <CLI/CLI.hpp>
#include <cstdio>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "mqttlive/config.h"
#include "mqttlive/live_runner.h"
#include "mqttlive/offline_runner.h"

int main(int argc, char** argv) {
  CLI::App app{"mqttlive: which MQTT client connections are really alive"};
  std::string config_file, read_file, listen, events_output, run_as, log_level = "info";
  std::vector<std::string> interfaces;
  std::vector<uint16_t> ports;
  double factor = 0;
  app.add_option("--config.file", config_file, "YAML configuration file")->check(CLI::ExistingFile);
  app.add_option("-r,--read", read_file, "Read a pcap/pcapng file (packet time) instead of capturing live")
      ->check(CLI::ExistingFile);
  app.add_option("-i,--interface", interfaces, "Capture interface (repeatable; 'any' for all)");
  app.add_option("--broker-port", ports, "Broker listener port (repeatable; default 1883)")
      ->check(CLI::Range(1, 65535));
  app.add_option("--web.listen-address", listen, "Address for /metrics, /healthz, /connections (default :9883)");
  app.add_option("--keepalive.factor", factor, "Deadline = last activity + factor x keepalive (default 1.5)")
      ->check(CLI::Range(1.0, 10.0));
  app.add_option("--events.output", events_output, "'stdout' (default) or a file to append JSON lines to");
  app.add_option("--run-as", run_as, "When started as root: user to switch to after opening the capture");
  app.add_option("--log.level", log_level, "debug, info, warn, error")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  app.set_version_flag("--version", std::string("mqttlive ") + MQTTLIVE_VERSION);
  CLI11_PARSE(app, argc, argv);

  // Logs go to stderr: stdout belongs to the event stream.
  spdlog::set_default_logger(spdlog::stderr_color_mt("mqttlive"));
  spdlog::set_level(spdlog::level::from_str(log_level));

  mqttlive::Config cfg;
  try {
    if (!config_file.empty()) cfg = mqttlive::loadConfigFile(config_file);
  } catch (const mqttlive::ConfigError& e) {
    std::fprintf(stderr, "mqttlive: invalid configuration: %s\n", e.what());
    return 2;
  }
  if (!interfaces.empty()) cfg.capture.interfaces = interfaces;
  if (!ports.empty()) cfg.engine.broker_ports = ports;
  if (!listen.empty()) cfg.metrics.listen_address = listen;
  if (factor != 0) cfg.engine.tracker.keepalive_factor = factor;
  if (!events_output.empty()) cfg.events.output = events_output;

  if (!read_file.empty()) {
    mqttlive::OfflineResult result;
    if (!mqttlive::runOffline(read_file, cfg.engine, stdout, cfg.events.types_mask, result, cfg.events.summary)) {
      std::fprintf(stderr, "mqttlive: %s\n", result.error.c_str());
      return 1;
    }
    if (result.read_error) std::fprintf(stderr, "mqttlive: warning: %s\n", result.error.c_str());
    return 0;
  }
  mqttlive::LiveRunOptions live;
  live.config = cfg;
  live.config_path = config_file;
  live.run_as_user = run_as;
  live.flag_interfaces = interfaces;
  live.flag_ports = ports;
  live.flag_listen_address = listen;
  return mqttlive::runLive(live);
}
