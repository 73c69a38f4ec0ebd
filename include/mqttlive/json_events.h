// Sink: events as JSON lines (the documented, stable event contract).
#pragma once

#include <cstdio>
#include <string>

#include "mqttlive/engine.h"
#include "mqttlive/events.h"

namespace mqttlive {

// Appends `s` as a JSON string literal. Control characters are escaped and
// invalid UTF-8 becomes U+FFFD, so a hostile client id cannot break a line.
void appendJsonString(std::string& out, std::string_view s);
// Seconds since the epoch with exactly six decimals.
void appendJsonTime(std::string& out, Micros ts);

class JsonEventWriter : public EventSink {
 public:
  // flush_each_line: live mode, so a reader sees events as they happen.
  JsonEventWriter(std::FILE* out, bool flush_each_line);
  // Bit i set = write EventType i. Default: all.
  void setEnabled(uint32_t mask) { enabled_ = mask; }
  void onEvent(const Event& e) override;
  // The final `summary` line of an offline run.
  void writeSummary(Micros ts, const Engine& engine, uint64_t capture_dropped, const char* read_error = nullptr);
  uint64_t written() const { return written_; }
  // Formats one event into `out` (no newline); exposed for other sinks/tests.
  static void format(std::string& out, const Event& e);

 private:
  void writeLine();
  std::FILE* out_;
  bool flush_;
  uint32_t enabled_ = ~0u;
  uint64_t written_ = 0;
  std::string line_;
};

}  // namespace mqttlive
