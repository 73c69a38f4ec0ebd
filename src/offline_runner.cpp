#include "mqttlive/offline_runner.h"

#include <algorithm>
#include <type_traits>

#include "mqttlive/capture.h"
#include "mqttlive/json_events.h"

namespace mqttlive {

int feedOffline(PcapCapture& cap, FrameBatcher& batch, Micros& last_ts, int max) {
  // One loop, compiled for each way of adding (no per-frame test).
  auto feed = [&](auto in_place) {
    return cap.dispatch(max, [&](Micros ts, std::span<const uint8_t> frame) {
      last_ts = ts = std::max(ts, last_ts);
      if constexpr (decltype(in_place)::value) {
        batch.addInPlace(ts, frame);
      } else {
        batch.add(ts, frame);
      }
    });
  };
  const int n = cap.framesStayValid() ? feed(std::true_type{}) : feed(std::false_type{});
  batch.flush();
  return n;
}

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
    const int n = feedOffline(*cap, batch, last_ts);
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
