// `mqttlive -i IFACE`: the sidecar. Captures on one or more interfaces, drives
// the engine with the system clock (ticks even when no packet arrives), serves
// /metrics, /healthz and /connections, reloads on SIGHUP, stops on SIGTERM/SIGINT.
#pragma once

#include <string>

#include "mqttlive/config.h"

namespace mqttlive {

struct LiveRunOptions {
  Config config;
  std::string config_path;   // empty: no file; SIGHUP then only re-applies flags
  std::string run_as_user;   // after opening captures, switch to this user (when root)
  // Overrides that must survive a reload (flags beat the file).
  std::vector<std::string> flag_interfaces;
  std::vector<uint16_t> flag_ports;
  std::string flag_listen_address;
};

// BPF expression for the listener ports: "tcp port 1883 or tcp port 8883".
std::string bpfForPorts(const std::vector<uint16_t>& ports);

// Returns the process exit code: 0 after a clean stop, non-zero when nothing
// could be started (no capture could be opened, metrics port taken, ...).
int runLive(LiveRunOptions opts);

}  // namespace mqttlive
