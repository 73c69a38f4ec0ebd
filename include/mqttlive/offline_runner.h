// `mqttlive --read FILE`: the whole data path driven by packet time.
#pragma once

#include <cstdio>
#include <string>

#include "mqttlive/capture.h"
#include "mqttlive/engine.h"

namespace mqttlive {

struct OfflineResult {
  uint64_t packets = 0;
  bool read_error = false;     // the file was truncated or corrupt part-way
  std::string error;           // message for the operator
};

// Reads up to `max` frames of `cap` into `batch` (in place when the capture
// allows it) and flushes the batch. Captures are not always in time order:
// packet time (`last_ts`) never runs backwards. Returns what
// PcapCapture::dispatch returns.
int feedOffline(PcapCapture& cap, FrameBatcher& batch, Micros& last_ts, int max = 4096);

// Reads `path`, writes events + the summary line to `out`. Returns false (with
// result.error) only if the file cannot be opened at all; a file that breaks
// part-way is judged up to the break, reported in the summary and in `error`.
bool runOffline(const std::string& path, const EngineConfig& cfg, std::FILE* out, uint32_t event_mask,
                OfflineResult& result, bool summary = true);

}  // namespace mqttlive
