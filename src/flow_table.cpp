#include "mqttlive/flow_table.h"

#include <cstring>

namespace mqttlive {

namespace {

// The full table never exceeds this load factor (70%).
inline bool overLoad(size_t count, size_t capacity) { return count * 10 > capacity * 7; }

}  // namespace

FlowTable::FlowTable(uint32_t initial_capacity) {
  uint32_t cap = 16;
  while (cap < initial_capacity && cap < (1u << 31)) cap <<= 1;
  buckets_.assign(cap, Bucket{});
  mask_ = cap - 1;
}

// The bucket index comes from hash_hi as well, so that erase and grow can find
// an entry's home bucket without rehashing its key.
void FlowTable::insert(const FlowKey& k, uint32_t slot, const std::vector<FlowKey>& keys) {
  const uint32_t tag = static_cast<uint32_t>(hashFlowKey(k) >> 32);
  uint32_t i = tag & mask_;
  for (;; i = (i + 1) & mask_) {
    Bucket& b = buckets_[i];
    if (b.slot == kNone) break;
    // Re-inserting a present key rebinds it rather than adding a twin that
    // find() could never reach.
    if (b.hash_hi == tag && keys[b.slot] == k) {
      b.slot = slot;
      return;
    }
  }
  if (overLoad(size_ + 1, buckets_.size()) && buckets_.size() < (size_t{1} << 31)) {
    grow();
    for (i = tag & mask_; buckets_[i].slot != kNone; i = (i + 1) & mask_) {
    }
  }
  buckets_[i] = Bucket{slot, tag};
  ++size_;
}

void FlowTable::erase(const FlowKey& k, const std::vector<FlowKey>& keys) {
  const uint32_t tag = static_cast<uint32_t>(hashFlowKey(k) >> 32);
  uint32_t hole = tag & mask_;
  for (;; hole = (hole + 1) & mask_) {
    const Bucket& b = buckets_[hole];
    if (b.slot == kNone) return;
    if (b.hash_hi == tag && keys[b.slot] == k) break;
  }
  // Backward-shift deletion: pull later members of the probe run into the
  // hole when that does not move them before their home bucket, so lookups
  // never need tombstones.
  for (uint32_t j = (hole + 1) & mask_; buckets_[j].slot != kNone; j = (j + 1) & mask_) {
    const uint32_t home = buckets_[j].hash_hi & mask_;
    if (((j - home) & mask_) >= ((j - hole) & mask_)) {
      buckets_[hole] = buckets_[j];
      hole = j;
    }
  }
  buckets_[hole] = Bucket{};
  --size_;
}

void FlowTable::grow() {
  std::vector<Bucket> old;
  old.swap(buckets_);
  const size_t cap = old.size() * 2;
  buckets_.assign(cap, Bucket{});
  mask_ = static_cast<uint32_t>(cap - 1);
  for (const Bucket& b : old) {
    if (b.slot == kNone) continue;
    uint32_t i = b.hash_hi & mask_;
    while (buckets_[i].slot != kNone) i = (i + 1) & mask_;
    buckets_[i] = b;
  }
}

}  // namespace mqttlive
