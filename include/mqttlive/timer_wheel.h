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
  // granularity: bucket width in microseconds; buckets: a power of two, at most 2^30.
  explicit TimerWheel(Micros granularity = 1 << 16, uint32_t buckets = 4096);

  // Re-arming moves the entry (a later deadline: when its bucket comes round).
  // Inline: a later deadline for an armed entry (a keepalive renewed by a
  // client packet) only stores it, and that is most calls.
  void arm(uint32_t id, Micros deadline) {
    ensure(id);
    Node& n = nodes_[id];
    // The entry keeps its bucket, which comes round no later than the new
    // deadline's (both past the cursor), and advance() moves it on then.
    // Saves the unlink and relink per client packet, with the neighbours'
    // nodes they touch. quiet() and the partial walk only need bounds at or
    // below every deadline: a later deadline keeps them valid.
    if (n.prev != kNone && deadline >= n.deadline && deadline >= past_cursor_) {
      n.deadline = deadline;
      return;
    }
    relink(id, deadline);
  }
  void cancel(uint32_t id);
  bool armed(uint32_t id) const { return id < nodes_.size() && nodes_[id].prev != kNone; }
  Micros deadlineOf(uint32_t id) const { return nodes_[id].deadline; }
  // Start loading id's node (look-ahead of batched frames).
  [[gnu::always_inline]] void prefetch(uint32_t id) const {
    if (id < nodes_.size()) __builtin_prefetch(&nodes_[id]);
  }

  // Collects ids with deadline <= now into `due` (cancelled from the wheel),
  // sorted by deadline, then id. Buckets are visited once per advance.
  void advance(Micros now, std::vector<uint32_t>& due);
  // advance(now) would find nothing due (cheap; checked for every packet).
  bool quiet(Micros now) const { return now < quiet_until_; }
  size_t size() const { return count_; }
  size_t memoryBytes() const { return heads_.capacity() * sizeof(uint32_t) + nodes_.capacity() * sizeof(Node); }

 private:
  // 16 bytes per entry: the first node of a bucket's list keeps the bucket in
  // `prev` (kHead | bucket), so no separate bucket field is needed.
  // prev == kNone: not armed.
  static constexpr uint32_t kHead = 0x80000000u;
  struct Node {
    Micros deadline = 0;
    uint32_t prev = kNone, next = kNone;
  };
  void relink(uint32_t id, Micros deadline);  // arm() for the rest
  // cursor_ and the first time whose bucket index (time / granularity_) is
  // past it, which arm() compares with instead of dividing.
  void setCursor(Micros c) {
    cursor_ = c;
    past_cursor_ = c >= 0 ? (c + 1) * granularity_ : c * granularity_ + 1;
  }
  void unlink(uint32_t id);
  void detach(uint32_t id);                 // unlink without counting
  void link(uint32_t id, uint32_t bucket);  // push on a bucket's list
  // Checked on every arm(): inline, the growth out of line.
  void ensure(uint32_t id) {
    if (id >= nodes_.size()) [[unlikely]] grow(id);
  }
  void grow(uint32_t id);

  Micros granularity_;
  uint32_t mask_;
  std::vector<uint32_t> heads_;
  std::vector<Node> nodes_;
  Micros cursor_ = -1;  // last bucket index (time / granularity) processed
  Micros past_cursor_;  // see setCursor()
  size_t count_ = 0;
  // The bucket of the current tick is walked by every advance() within that
  // tick; what is left in it after a walk (later this tick, or laps ahead)
  // is not due before partial_min_, so the next walks are skipped until then.
  Micros partial_tick_ = -1;
  Micros partial_min_ = 0;
  // advance(now) with now below this has nothing to do: still in the tick of
  // the last walk and before every armed deadline in its bucket. Called for
  // every captured packet, so this is the common case.
  Micros quiet_until_ = INT64_MIN;
};

}  // namespace mqttlive
