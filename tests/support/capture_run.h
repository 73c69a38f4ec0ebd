// Runs the offline pipeline over a synthetic or shared capture and returns the
// JSON lines, with a tiny field reader for assertions.
#pragma once

#include <string>
#include <vector>

#include "mqttlive/engine.h"
#include "mqttlive/pcap_writer.h"

namespace mqttlive::testing {

std::vector<std::string> runCaptureFile(const std::string& path, const EngineConfig& cfg = EngineConfig{});
std::vector<std::string> runCapture(const PcapWriter& w, const EngineConfig& cfg = EngineConfig{});
// Raw JSON text of a top-level field ("\"x\"", "12", "null", "{...}"), or "" if absent.
std::string field(const std::string& line, const std::string& key);
// Lines whose "event" is `event`.
std::vector<std::string> eventsOf(const std::vector<std::string>& lines, const std::string& event);
Endpoint v4(const char* dotted, uint16_t port);
Endpoint v6(const char* text, uint16_t port);

}  // namespace mqttlive::testing
