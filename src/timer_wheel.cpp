#include "mqttlive/timer_wheel.h"

#include <algorithm>
#include <cstdint>

namespace mqttlive {

TimerWheel::TimerWheel(Micros granularity, uint32_t buckets)
    : granularity_(granularity), mask_(buckets - 1), heads_(buckets, kNone) {
  setCursor(-1);
}

void TimerWheel::grow(uint32_t id) { nodes_.resize(std::max<size_t>(id + 1, nodes_.size() * 2)); }

void TimerWheel::detach(uint32_t id) {
  Node& n = nodes_[id];
  if (n.prev & kHead)
    heads_[n.prev & ~kHead] = n.next;
  else
    nodes_[n.prev].next = n.next;
  // The successor inherits our prev: a node, or the head marker.
  if (n.next != kNone) nodes_[n.next].prev = n.prev;
  n.prev = n.next = kNone;
}

void TimerWheel::unlink(uint32_t id) {
  detach(id);
  --count_;
}

void TimerWheel::link(uint32_t id, uint32_t b) {
  Node& n = nodes_[id];
  n.prev = kHead | b;
  n.next = heads_[b];
  if (n.next != kNone) nodes_[n.next].prev = id;
  heads_[b] = id;
  if (b == (static_cast<uint32_t>(partial_tick_) & mask_) && n.deadline < partial_min_) partial_min_ = n.deadline;
  if (n.deadline < quiet_until_) quiet_until_ = n.deadline;
}

void TimerWheel::relink(uint32_t id, Micros deadline) {
  Node& n = nodes_[id];
  if (n.prev != kNone) {
    detach(id);
    --count_;
  }
  n.deadline = deadline;
  // A deadline already behind the cursor lands in the next bucket to be visited.
  Micros tick = std::max(deadline / granularity_, cursor_ + 1);
  link(id, static_cast<uint32_t>(tick) & mask_);
  ++count_;
}

void TimerWheel::cancel(uint32_t id) {
  if (armed(id)) unlink(id);
}

void TimerWheel::advance(Micros now, std::vector<uint32_t>& due) {
  due.clear();
  if (now < quiet_until_) return;
  Micros target = now / granularity_;
  if (count_ == 0) {
    setCursor(std::max(cursor_, target - 1));
    if (cursor_ == target - 1) {
      partial_tick_ = target;
      partial_min_ = INT64_MAX;
      quiet_until_ = (target + 1) * granularity_;
    }
    return;
  }
  // Visit each bucket at most once even after a long jump in time.
  Micros first = cursor_ + 1;
  Micros last = std::min(target, cursor_ + static_cast<Micros>(mask_) + 1);
  for (Micros t = first; t <= last; ++t) {
    const uint32_t b = static_cast<uint32_t>(t) & mask_;
    // Walked before within this tick and nothing in it is due yet.
    if (t == partial_tick_ && now < partial_min_) continue;
    const bool partial = t == target;
    if (partial) {
      partial_tick_ = t;
      partial_min_ = INT64_MAX;
    }
    uint32_t id = heads_[b];
    while (id != kNone) {
      const uint32_t next = nodes_[id].next;
      const Micros d = nodes_[id].deadline;
      if (d <= now) {
        unlink(id);
        due.push_back(id);
      } else if (const Micros dt = d / granularity_; dt > t && (static_cast<uint32_t>(dt) & mask_) != b) {
        // Pushed later by arm() while it sat here: on to its deadline's bucket
        // (ahead of this walk: visited later in it or in a later advance).
        detach(id);
        link(id, static_cast<uint32_t>(dt) & mask_);
      } else if (partial && d < partial_min_) {
        // Due later in this tick, or a lap (or more) ahead.
        partial_min_ = d;
      }
      id = next;
    }
  }
  // The bucket of `target` may hold entries due later in this same tick: it is
  // revisited on the next advance, so only move the cursor to target - 1.
  setCursor(std::max(cursor_, target - 1));
  quiet_until_ = partial_tick_ == target && cursor_ == target - 1
                     ? std::min(partial_min_, (target + 1) * granularity_)
                     : INT64_MIN;
  std::sort(due.begin(), due.end(), [this](uint32_t a, uint32_t b) {
    return nodes_[a].deadline != nodes_[b].deadline ? nodes_[a].deadline < nodes_[b].deadline : a < b;
  });
}

}  // namespace mqttlive
