#include "mqttlive/timer_wheel.h"

#include <algorithm>

namespace mqttlive {

TimerWheel::TimerWheel(Micros granularity, uint32_t buckets)
    : granularity_(granularity), mask_(buckets - 1), heads_(buckets, kNone) {}

void TimerWheel::ensure(uint32_t id) {
  if (id >= nodes_.size()) nodes_.resize(std::max<size_t>(id + 1, nodes_.size() * 2));
}

void TimerWheel::unlink(uint32_t id) {
  Node& n = nodes_[id];
  if (n.prev != kNone)
    nodes_[n.prev].next = n.next;
  else
    heads_[n.bucket] = n.next;
  if (n.next != kNone) nodes_[n.next].prev = n.prev;
  n.prev = n.next = n.bucket = kNone;
  --count_;
}

void TimerWheel::arm(uint32_t id, Micros deadline) {
  ensure(id);
  if (nodes_[id].bucket != kNone) unlink(id);
  Node& n = nodes_[id];
  n.deadline = deadline;
  // A deadline already behind the cursor lands in the next bucket to be visited.
  Micros tick = std::max(deadline / granularity_, cursor_ + 1);
  uint32_t b = static_cast<uint32_t>(tick) & mask_;
  n.bucket = b;
  n.prev = kNone;
  n.next = heads_[b];
  if (n.next != kNone) nodes_[n.next].prev = id;
  heads_[b] = id;
  ++count_;
}

void TimerWheel::cancel(uint32_t id) {
  if (armed(id)) unlink(id);
}

void TimerWheel::advance(Micros now, std::vector<uint32_t>& due) {
  due.clear();
  Micros target = now / granularity_;
  if (count_ == 0) {
    cursor_ = std::max(cursor_, target - 1);
    return;
  }
  // Visit each bucket at most once even after a long jump in time.
  Micros first = cursor_ + 1;
  Micros last = std::min(target, cursor_ + static_cast<Micros>(mask_) + 1);
  for (Micros t = first; t <= last; ++t) {
    uint32_t id = heads_[static_cast<uint32_t>(t) & mask_];
    while (id != kNone) {
      uint32_t next = nodes_[id].next;
      if (nodes_[id].deadline <= now) {
        unlink(id);
        due.push_back(id);
      }
      id = next;
    }
  }
  // The bucket of `target` may hold entries due later in this same tick: it is
  // revisited on the next advance, so only move the cursor to target - 1.
  cursor_ = std::max(cursor_, target - 1);
  std::sort(due.begin(), due.end(), [this](uint32_t a, uint32_t b) {
    return nodes_[a].deadline != nodes_[b].deadline ? nodes_[a].deadline < nodes_[b].deadline : a < b;
  });
}

}  // namespace mqttlive
