// Stage 3: the flow table. Open addressing over the full 5-tuple (protocol is
// always TCP here), mapping a connection to a caller-owned slot index. Lookup
// and insert are O(1) and allocation-free until the table must grow.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "mqttlive/types.h"

namespace mqttlive {

// Canonical key: client side first, broker (listener) side second.
namespace detail {
inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
}  // namespace detail

struct FlowKey {
  Endpoint client;
  Endpoint broker;
  // Compared for every packet: as five 8-byte words, which is the same as
  // comparing the fields since an Endpoint has no padding (types.h).
  friend bool operator==(const FlowKey& a, const FlowKey& b) {
    const auto* x = reinterpret_cast<const uint8_t*>(&a);
    const auto* y = reinterpret_cast<const uint8_t*>(&b);
    uint64_t d = 0;
    for (size_t i = 0; i < sizeof(FlowKey); i += 8) d |= detail::load64(x + i) ^ detail::load64(y + i);
    return d == 0;
  }
};
static_assert(sizeof(FlowKey) == 40 && std::has_unique_object_representations_v<FlowKey>);

// Inline: computed for every packet.
inline uint64_t hashFlowKey(const FlowKey& k) {
  if (k.client.ip.v4 && k.broker.ip.v4) {
    // IPv4 (nearly every flow): the mapped prefix is the same in every key,
    // so only the addresses and ports are mixed. Keys of other families take
    // the general hash below; that two functions exist only moves buckets.
    uint32_t c, b;
    std::memcpy(&c, k.client.ip.bytes + 12, 4);
    std::memcpy(&b, k.broker.ip.bytes + 12, 4);
    const uint64_t ports = uint64_t{k.client.port} | (uint64_t{k.broker.port} << 16);
    uint64_t h = ((uint64_t{c} << 32 | b) ^ 0x243f6a8885a308d3ull) * 0x9fb21c651e98df25ull;
    h += (ports ^ 0x452821e638d01377ull) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 32;
    h *= 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    return h;
  }
  // One multiply per 8-byte word, all independent (they overlap in the
  // pipeline, unlike a chain of rounds), summed, then one xorshift-multiply
  // round that brings the well-mixed high bits down to the bucket bits. Ports
  // and the family flags share one word; the flags keep a v4 address and the
  // identical-byte ::ffff:a.b.c.d v6 address apart, as operator== does.
  const uint64_t tail = uint64_t{k.client.port} | (uint64_t{k.broker.port} << 16) |
                        (uint64_t{k.client.ip.v4} << 32) | (uint64_t{k.broker.ip.v4} << 33);
  uint64_t h = (detail::load64(k.client.ip.bytes) ^ 0x243f6a8885a308d3ull) * 0x9fb21c651e98df25ull;
  h += (detail::load64(k.client.ip.bytes + 8) ^ 0x13198a2e03707344ull) * 0xc2b2ae3d27d4eb4full;
  h += (detail::load64(k.broker.ip.bytes) ^ 0xa4093822299f31d0ull) * 0x165667b19e3779f9ull;
  h += (detail::load64(k.broker.ip.bytes + 8) ^ 0x082efa98ec4e6c89ull) * 0xff51afd7ed558ccdull;
  h += (tail ^ 0x452821e638d01377ull) * 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 32;
  h *= 0x9e3779b97f4a7c15ull;
  h ^= h >> 29;
  return h;
}

class FlowTable {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;
  explicit FlowTable(uint32_t initial_capacity = 1024);

  // Slot index for key, or kNone.
  uint32_t find(const FlowKey& k, const std::vector<FlowKey>& keys) const {
    return find(k, hashFlowKey(k), keys);
  }
  // Same, with hash = hashFlowKey(k) computed by the caller. Inline: once per packet.
  uint32_t find(const FlowKey& k, uint64_t hash, const std::vector<FlowKey>& keys) const {
    const auto tag = static_cast<uint32_t>(hash >> 32);
    for (uint32_t i = tag & mask_;; i = (i + 1) & mask_) {
      const Bucket& b = buckets_[i];
      if (b.slot == kNone) return kNone;
      if (b.hash_hi == tag && keys[b.slot] == k) return b.slot;
    }
  }
  // Look-ahead for batched lookups (Engine::onFrames): start loading the
  // bucket of `hash`; later, the slot of the first entry with its tag, a
  // likely but unverified match (kNone if none). Neither changes anything.
  [[gnu::always_inline]] void prefetch(uint64_t hash) const {
    __builtin_prefetch(&buckets_[static_cast<uint32_t>(hash >> 32) & mask_]);
  }
  uint32_t candidate(uint64_t hash) const {
    const auto tag = static_cast<uint32_t>(hash >> 32);
    for (uint32_t i = tag & mask_;; i = (i + 1) & mask_) {
      const Bucket& b = buckets_[i];
      if (b.slot == kNone || b.hash_hi == tag) return b.slot;
    }
  }
  // Inserts key -> slot (the caller stores keys[slot] = k first).
  void insert(const FlowKey& k, uint32_t slot, const std::vector<FlowKey>& keys);
  void erase(const FlowKey& k, const std::vector<FlowKey>& keys);
  size_t size() const { return size_; }
  size_t memoryBytes() const { return buckets_.capacity() * sizeof(Bucket); }

 private:
  struct Bucket {
    uint32_t slot = kNone;
    uint32_t hash_hi = 0;  // upper hash bits: skips most key compares
  };
  void grow();  // entries rehash from hash_hi alone; keys are not needed
  std::vector<Bucket> buckets_;
  size_t size_ = 0;
  uint32_t mask_;
};

}  // namespace mqttlive
