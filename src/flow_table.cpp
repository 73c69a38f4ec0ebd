#include "mqttlive/flow_table.h"

#include <cstring>

namespace mqttlive {

namespace {

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

constexpr uint64_t kMul = 0x9fb21c651e98df25ull;

// The full table never exceeds this load factor (70%).
inline bool overLoad(size_t count, size_t capacity) { return count * 10 > capacity * 7; }

}  // namespace

uint64_t hashFlowKey(const FlowKey& k) {
  // One multiply per 8-byte word, all independent (they overlap in the
  // pipeline, unlike a chain of rounds), summed, then one xorshift-multiply
  // round that brings the well-mixed high bits down to the bucket bits. Ports
  // and the family flags share one word; the flags keep a v4 address and the
  // identical-byte ::ffff:a.b.c.d v6 address apart, as operator== does.
  const uint64_t tail = uint64_t{k.client.port} | (uint64_t{k.broker.port} << 16) |
                        (uint64_t{k.client.ip.v4} << 32) | (uint64_t{k.broker.ip.v4} << 33);
  uint64_t h = (load64(k.client.ip.bytes) ^ 0x243f6a8885a308d3ull) * kMul;
  h += (load64(k.client.ip.bytes + 8) ^ 0x13198a2e03707344ull) * 0xc2b2ae3d27d4eb4full;
  h += (load64(k.broker.ip.bytes) ^ 0xa4093822299f31d0ull) * 0x165667b19e3779f9ull;
  h += (load64(k.broker.ip.bytes + 8) ^ 0x082efa98ec4e6c89ull) * 0xff51afd7ed558ccdull;
  h += (tail ^ 0x452821e638d01377ull) * 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 32;
  h *= 0x9e3779b97f4a7c15ull;
  h ^= h >> 29;
  return h;
}

FlowTable::FlowTable(uint32_t initial_capacity) {
  uint32_t cap = 16;
  while (cap < initial_capacity && cap < (1u << 31)) cap <<= 1;
  buckets_.assign(cap, Bucket{});
  mask_ = cap - 1;
}

// The bucket index comes from hash_hi as well, so that erase and grow can find
// an entry's home bucket without rehashing its key.
uint32_t FlowTable::find(const FlowKey& k, uint64_t hash, const std::vector<FlowKey>& keys) const {
  const uint32_t tag = static_cast<uint32_t>(hash >> 32);
  for (uint32_t i = tag & mask_;; i = (i + 1) & mask_) {
    const Bucket& b = buckets_[i];
    if (b.slot == kNone) return kNone;
    if (b.hash_hi == tag && keys[b.slot] == k) return b.slot;
  }
}

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
