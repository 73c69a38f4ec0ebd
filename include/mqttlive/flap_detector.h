// Storms and flapping, read off the event stream (an EventSink beside the JSON
// writer and the metrics): per client id reconnect counts over a sliding
// window, the clients reconnecting most, fleet-wide reconnect storms against a
// slow baseline, and load balancer idle-timeout fingerprints (many closes
// without DISCONNECT at the same connection age).
//
// Time is the events' ts, moved on by advanceTo(); the detector never reads a
// clock. Memory is bounded: a capped client table (clock eviction, counted),
// fixed rings for the rate and the close ages. Single-threaded (engine thread).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "mqttlive/events.h"

namespace mqttlive {

struct FlapConfig {
  // Per client id: connects (CONNACKs, accepted or refused) within `window`.
  // The window slides in kWindowBuckets steps (window / 10 = 30 s by default).
  Micros window = 300 * kMicrosPerSecond;
  uint32_t max_clients = 10000;       // client ids tracked; beyond: evict (counted)
  size_t max_id_bytes = 256;          // longer ids are tracked by this prefix
  uint32_t flapping_connects = 5;     // >= this many connects in the window = flapping
  // Storm: connect rate over the last `storm_window_seconds` above
  // storm_factor x the baseline (an EWMA of per-second rates with time
  // constant `baseline_seconds`) and at least `storm_floor` per second. Once
  // on, it stays on while the rate is above half of both thresholds.
  uint32_t storm_window_seconds = 10;  // 1..kMaxStormWindow
  double baseline_seconds = 600;
  double storm_factor = 5.0;
  double storm_floor = 2.0;            // connects per second
  // Idle-timeout fingerprint: among the last kCloseRing closes without
  // DISCONNECT of connected sessions (at most `fingerprint_window` old), at
  // least `fingerprint_min_closes` and `fingerprint_min_fraction` of them
  // within +-fingerprint_tolerance of one connection age.
  Micros fingerprint_window = 3600 * kMicrosPerSecond;
  uint32_t fingerprint_min_closes = 20;
  double fingerprint_min_fraction = 0.5;
  Micros fingerprint_tolerance = kMicrosPerSecond;
  Micros fingerprint_min_age = kMicrosPerSecond;  // shorter lives are not idle timeouts
};

// The numbers the metrics export (no allocation to produce).
struct FlapStatus {
  bool storm = false;
  double connect_rate = 0;          // per second over the storm window
  double baseline_rate = 0;         // EWMA, per second
  uint32_t flapping_clients = 0;    // ids with >= flapping_connects in the window
  double fingerprint_seconds = 0;   // idle-timeout fingerprint age, 0 = none
  uint32_t fingerprint_closes = 0;  // closes in the fingerprint cluster
  uint32_t tracked_clients = 0;
  uint64_t evicted_clients = 0;     // client table evictions since start
};

struct FlappingClient {
  std::string client_id;
  uint32_t connects = 0;    // in the window
  Micros first = 0;         // first connect since its window count was last 0
  Micros last = 0;          // last connect
};

class FlapDetector : public EventSink {
 public:
  static constexpr int kWindowBuckets = 10;
  static constexpr uint32_t kMaxStormWindow = 60;
  static constexpr size_t kCloseRing = 256;
  static constexpr size_t kMaxTop = 100;

  explicit FlapDetector(const FlapConfig& cfg = {});

  // SIGHUP: applies the thresholds of `cfg` (flapping_connects, storm_factor,
  // storm_floor, baseline_seconds, fingerprint_*) and keeps the counts, the
  // baseline and the close ages. window, storm_window_seconds and max_clients
  // shape that state: they keep their running values, and the result is false
  // when `cfg` asked to change one of them (a restart applies it).
  bool reconfigure(const FlapConfig& cfg);

  void onEvent(const Event& e) override;
  // Moves time on without an event (idle broker): rates decay, windows slide.
  void advanceTo(Micros now);

  FlapStatus status() const;
  // Up to min(n, kMaxTop) client ids with the most connects in the window
  // (>= 2), most first; ties: the most recent connect first.
  std::vector<FlappingClient> topFlapping(size_t n) const;
  // Connects of one client id in the window (0 if not tracked).
  uint32_t connectsInWindow(const std::string& client_id) const;
  Micros now() const { return now_; }
  const FlapConfig& config() const { return cfg_; }

 private:
  struct Entry {
    std::string id;
    int64_t head = 0;                       // window step of the latest connect
    std::array<uint16_t, kWindowBuckets> counts{};
    Micros first = 0;                       // streak start (see FlappingClient::first)
    Micros last = 0;
    bool referenced = false;                // clock bit
  };
  int64_t stepOf(Micros ts) const;
  uint32_t windowCount(const Entry& e, int64_t step) const;
  void onConnect(const ConnectionInfo& c, Micros ts);
  void onClose(const Event& e);
  size_t slotFor(const std::string& id);
  void roll(Micros ts);
  double rate() const;
  void evaluateStorm();

  FlapConfig cfg_;
  Micros step_ = 0;                         // window / kWindowBuckets
  Micros now_ = 0;
  // Client table: index + entries, clock hand for eviction.
  std::unordered_map<std::string, uint32_t> index_;
  std::vector<Entry> entries_;
  size_t hand_ = 0;
  uint64_t evicted_ = 0;
  // Per-second connect counts, ring over the storm window.
  std::array<uint32_t, kMaxStormWindow> seconds_{};
  int64_t second_ = 0;                      // current second (ts / 1 s); 0 = none yet
  double baseline_ = 0;
  double decay_ = 0;                        // per-second EWMA weight of the old baseline
  bool storm_ = false;
  // Ages of recent closes without DISCONNECT (ring).
  struct Close {
    Micros ts = 0;
    Micros age = 0;
  };
  std::array<Close, kCloseRing> closes_{};
  size_t close_next_ = 0;
  size_t close_count_ = 0;
};

}  // namespace mqttlive
