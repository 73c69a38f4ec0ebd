// Thin entry point: flags -> config -> runner. All logic is in mqttlive_lib.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>

#include "mqttlive/engine.h"
#include "mqttlive/offline_runner.h"

int main(int argc, char** argv) {
  CLI::App app{"mqttlive: which MQTT client connections are really alive"};
  std::string read_file;
  std::vector<uint16_t> ports;
  double factor = 1.5;
  app.add_option("-r,--read", read_file, "Read a pcap/pcapng file instead of capturing live")->check(CLI::ExistingFile);
  app.add_option("--broker-port", ports, "Broker listener port (repeatable; default 1883)")->check(CLI::Range(1, 65535));
  app.add_option("--keepalive.factor", factor, "Deadline = last activity + factor x keepalive")
      ->check(CLI::Range(1.0, 10.0));
  app.set_version_flag("--version", std::string("mqttlive ") + MQTTLIVE_VERSION);
  CLI11_PARSE(app, argc, argv);

  mqttlive::EngineConfig cfg;
  if (!ports.empty()) cfg.broker_ports = ports;
  cfg.tracker.keepalive_factor = factor;
  if (read_file.empty()) {
    std::cerr << "mqttlive: live capture is not built yet; use --read FILE\n";
    return 2;
  }
  mqttlive::OfflineResult result;
  if (!mqttlive::runOffline(read_file, cfg, stdout, ~0u, result)) {
    std::cerr << "mqttlive: " << result.error << "\n";
    return 1;
  }
  if (result.read_error) std::cerr << "mqttlive: warning: " << result.error << "\n";
  return 0;
}
