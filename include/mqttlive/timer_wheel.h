// Bucketed deadlines: arm/re-arm/cancel in O(1), expiry visits only due buckets.
// Entries are caller-owned indices (uint32); the wheel stores only links.
// Exact deadlines are kept by the caller; the wheel only narrows candidates,
// and an entry whose bucket comes round before its deadline waits a lap.
#pragma once

#include <cstdint>
#include <vector>

#include "mqttlive/types.h"

namespace mqttlive {

class TimerWheel {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;
  // granularity: bucket width in microseconds; buckets: a power of two.
  explicit TimerWheel(Micros granularity = 1 << 16, uint32_t buckets = 4096);

  void arm(uint32_t id, Micros deadline);   // re-arming moves the entry
  void cancel(uint32_t id);
  bool armed(uint32_t id) const { return id < nodes_.size() && nodes_[id].bucket != kNone; }
  Micros deadlineOf(uint32_t id) const { return nodes_[id].deadline; }

  // Collects ids with deadline <= now into `due` (cancelled from the wheel),
  // sorted by deadline, then id. Buckets are visited once per advance.
  void advance(Micros now, std::vector<uint32_t>& due);
  size_t size() const { return count_; }
  size_t memoryBytes() const { return heads_.capacity() * sizeof(uint32_t) + nodes_.capacity() * sizeof(Node); }

 private:
  struct Node {
    Micros deadline = 0;
    uint32_t prev = kNone, next = kNone, bucket = kNone;
  };
  void unlink(uint32_t id);
  void ensure(uint32_t id);

  Micros granularity_;
  uint32_t mask_;
  std::vector<uint32_t> heads_;
  std::vector<Node> nodes_;
  Micros cursor_ = -1;  // last bucket index (time / granularity) processed
  size_t count_ = 0;
};

}  // namespace mqttlive
