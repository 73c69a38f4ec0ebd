#include "mqttlive/offline_runner.h"

#include "mqttlive/capture.h"
#include "mqttlive/json_events.h"

namespace mqttlive {

bool runOffline(const std::string& path, const EngineConfig& cfg, std::FILE* out, uint32_t event_mask,
                OfflineResult& result, bool summary) {
  std::string err;
  auto cap = PcapCapture::openOffline(path, err);
  if (!cap) {
    result.error = err;
    return false;
  }
  JsonEventWriter writer(out, false);
  writer.setEnabled(event_mask);
  Engine engine(cfg, writer);
  FrameBatcher batch(engine, cap->linkType());
  Micros last_ts = 0;
  for (;;) {
    int n = cap->dispatch(4096, [&](Micros ts, std::span<const uint8_t> frame) {
      // Captures are not always in time order; never let packet time run backwards.
      if (ts < last_ts) ts = last_ts;
      last_ts = ts;
      batch.add(ts, frame);
    });
    batch.flush();
    if (n == -2) break;
    if (n < 0) {
      result.read_error = true;
      result.error = "capture " + path + " is damaged after packet " + std::to_string(engine.stats().packets) +
                     ": " + cap->lastError();
      break;
    }
  }
  engine.finish(last_ts);
  result.packets = engine.stats().packets;
  if (summary) writer.writeSummary(last_ts, engine, 0, result.read_error ? result.error.c_str() : nullptr);
  std::fflush(out);
  return true;
}

}  // namespace mqttlive
