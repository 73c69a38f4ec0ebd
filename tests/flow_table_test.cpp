#include "mqttlive/flow_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

namespace mqttlive {
namespace {

Endpoint v4(uint32_t addr, uint16_t port) {
  uint8_t raw[4] = {static_cast<uint8_t>(addr >> 24), static_cast<uint8_t>(addr >> 16),
                    static_cast<uint8_t>(addr >> 8), static_cast<uint8_t>(addr)};
  Endpoint e;
  e.ip = IpAddr::fromV4(raw);
  e.port = port;
  return e;
}

Endpoint v6(uint64_t low, uint16_t port) {
  uint8_t raw[16] = {0x20, 0x01, 0x0d, 0xb8};
  for (int i = 0; i < 8; ++i) raw[15 - i] = static_cast<uint8_t>(low >> (8 * i));
  Endpoint e;
  e.ip = IpAddr::fromV6(raw);
  e.port = port;
  return e;
}

// The shape of real traffic: many clients, few brokers, ephemeral ports.
FlowKey keyFor(uint32_t i) {
  FlowKey k;
  if (i % 3 == 0) {
    k.client = v6(i / 7, static_cast<uint16_t>(32768 + i % 28000));
    k.broker = v6(1, 1883);
  } else {
    k.client = v4(0x0a000000u + i / 11, static_cast<uint16_t>(32768 + i % 28000));
    k.broker = v4(0xc0a80001u, i % 2 ? 1883 : 8883);
  }
  return k;
}

// Checks every live key is found with its slot and every dead one is not.
void expectConsistent(const FlowTable& t, const std::vector<FlowKey>& keys, const std::vector<bool>& live) {
  size_t count = 0;
  for (uint32_t i = 0; i < keys.size(); ++i) {
    if (live[i]) {
      ++count;
      ASSERT_EQ(t.find(keys[i], keys), i) << i;
    } else {
      ASSERT_EQ(t.find(keys[i], keys), FlowTable::kNone) << i;
    }
  }
  ASSERT_EQ(t.size(), count);
}

TEST(FlowKeyHash, DistinguishesFieldsAndFamilies) {
  FlowKey a{v4(0x01020304, 5000), v4(0x05060708, 1883)};
  FlowKey swapped{a.broker, a.client};
  FlowKey port{v4(0x01020304, 5001), v4(0x05060708, 1883)};
  EXPECT_EQ(hashFlowKey(a), hashFlowKey(FlowKey{a.client, a.broker}));
  EXPECT_NE(hashFlowKey(a), hashFlowKey(swapped));
  EXPECT_NE(hashFlowKey(a), hashFlowKey(port));

  // Same 16 bytes, but one is an IPv4 address and one the ::ffff: IPv6 literal.
  FlowKey mapped = a;
  mapped.client.ip.v4 = false;
  mapped.broker.ip.v4 = false;
  EXPECT_FALSE(a == mapped);
  EXPECT_NE(hashFlowKey(a), hashFlowKey(mapped));
}

TEST(FlowKeyHash, SpreadsSequentialKeys) {
  // Sequential addresses and ports must fill low bits (bucket index) and the
  // tag evenly: count distinct 16-bit buckets for 2^16 keys.
  constexpr uint32_t kN = 1u << 16;
  std::vector<uint8_t> low(kN, 0), high(kN, 0);
  std::set<uint64_t> full;
  for (uint32_t i = 0; i < kN; ++i) {
    uint64_t h = hashFlowKey(keyFor(i));
    low[(h >> 32) & 0xffff] = 1;
    high[h >> 48] = 1;
    full.insert(h);
  }
  // A random function fills 1 - 1/e (~63.2%) of the buckets.
  const double low_fill = std::accumulate(low.begin(), low.end(), 0.0) / kN;
  const double high_fill = std::accumulate(high.begin(), high.end(), 0.0) / kN;
  EXPECT_GT(low_fill, 0.62);
  EXPECT_GT(high_fill, 0.62);
  EXPECT_EQ(full.size(), kN);
}

TEST(FlowTable, EmptyTable) {
  FlowTable t(0);
  std::vector<FlowKey> keys = {keyFor(1)};
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.find(keys[0], keys), FlowTable::kNone);
  t.erase(keys[0], keys);  // absent: no-op
  EXPECT_EQ(t.size(), 0u);
  EXPECT_GT(t.memoryBytes(), 0u);
}

TEST(FlowTable, InsertFindErase) {
  FlowTable t(16);
  std::vector<FlowKey> keys = {keyFor(1), keyFor(2), keyFor(3)};
  for (uint32_t i = 0; i < keys.size(); ++i) t.insert(keys[i], i, keys);
  EXPECT_EQ(t.size(), 3u);
  for (uint32_t i = 0; i < keys.size(); ++i) EXPECT_EQ(t.find(keys[i], keys), i);
  t.erase(keys[1], keys);
  EXPECT_EQ(t.size(), 2u);
  EXPECT_EQ(t.find(keys[1], keys), FlowTable::kNone);
  EXPECT_EQ(t.find(keys[0], keys), 0u);
  EXPECT_EQ(t.find(keys[2], keys), 2u);
  t.erase(keys[1], keys);  // twice: no-op
  EXPECT_EQ(t.size(), 2u);
}

TEST(FlowTable, ReinsertRebindsSlot) {
  FlowTable t;
  std::vector<FlowKey> keys = {keyFor(5), keyFor(5)};
  t.insert(keys[0], 0, keys);
  t.insert(keys[1], 1, keys);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.find(keys[0], keys), 1u);
}

TEST(FlowTable, Ipv4AndMappedIpv6AreDifferentKeys) {
  FlowTable t(16);
  std::vector<FlowKey> keys(4);
  keys[0] = FlowKey{v4(0x0a000001, 40000), v4(0x0a000002, 1883)};
  keys[1] = keys[0];
  keys[1].client.ip.v4 = false;
  keys[1].broker.ip.v4 = false;
  keys[2] = keys[0];
  keys[2].client.ip.v4 = false;  // mixed, as nonsense input could produce
  keys[3] = FlowKey{v6(1, 40000), v6(2, 1883)};
  for (uint32_t i = 0; i < keys.size(); ++i) t.insert(keys[i], i, keys);
  EXPECT_EQ(t.size(), 4u);
  for (uint32_t i = 0; i < keys.size(); ++i) EXPECT_EQ(t.find(keys[i], keys), i);
  t.erase(keys[0], keys);
  EXPECT_EQ(t.find(keys[0], keys), FlowTable::kNone);
  EXPECT_EQ(t.find(keys[1], keys), 1u);
  EXPECT_EQ(t.find(keys[2], keys), 2u);
}

TEST(FlowTable, GrowsAndKeepsLoadBelow70Percent) {
  FlowTable t(16);
  const size_t initial = t.memoryBytes();
  std::vector<FlowKey> keys;
  for (uint32_t i = 0; i < 5000; ++i) {
    keys.push_back(keyFor(i));
    t.insert(keys[i], i, keys);
    const size_t buckets = t.memoryBytes() / 8;
    ASSERT_LE(t.size() * 10, buckets * 7) << i;
  }
  EXPECT_GT(t.memoryBytes(), initial);
  std::vector<bool> live(keys.size(), true);
  expectConsistent(t, keys, live);
}

TEST(FlowTable, HundredThousandKeysRandomEraseOrder) {
  constexpr uint32_t kN = 100000;
  std::vector<FlowKey> keys;
  keys.reserve(kN);
  for (uint32_t i = 0; i < kN; ++i) keys.push_back(keyFor(i));
  FlowTable t(16);
  for (uint32_t i = 0; i < kN; ++i) t.insert(keys[i], i, keys);
  std::vector<bool> live(kN, true);
  expectConsistent(t, keys, live);

  std::mt19937 rng(2024);
  std::vector<uint32_t> order(kN);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin(), order.end(), rng);
  for (uint32_t n = 0; n < kN; ++n) {
    t.erase(keys[order[n]], keys);
    live[order[n]] = false;
    // Spot checks all the way, a full check at a few points.
    ASSERT_EQ(t.find(keys[order[n]], keys), FlowTable::kNone);
    if (n + 1 < kN) {
      uint32_t other = order[n + 1 + rng() % (kN - n - 1)];
      ASSERT_EQ(t.find(keys[other], keys), other);
    }
    if (n % 25000 == 0) expectConsistent(t, keys, live);
  }
  EXPECT_EQ(t.size(), 0u);
  expectConsistent(t, keys, live);

  // The emptied table is fully reusable.
  for (uint32_t i = 0; i < kN; i += 2) {
    t.insert(keys[i], i, keys);
    live[i] = true;
  }
  expectConsistent(t, keys, live);
}

// Interleaved inserts and erases against a reference map, including slot
// reuse the way the engine recycles flow slots.
TEST(FlowTable, ChurnMatchesReference) {
  std::mt19937 rng(7);
  FlowTable t(16);
  std::vector<FlowKey> keys;
  std::vector<uint32_t> free_slots;
  std::map<uint32_t, uint32_t> ref;  // key id -> slot
  std::vector<uint32_t> slot_key;    // slot -> key id
  for (int op = 0; op < 300000; ++op) {
    uint32_t id = static_cast<uint32_t>(rng() % 20000);
    auto it = ref.find(id);
    if (it == ref.end()) {
      uint32_t slot;
      if (!free_slots.empty()) {
        slot = free_slots.back();
        free_slots.pop_back();
      } else {
        slot = static_cast<uint32_t>(keys.size());
        keys.emplace_back();
        slot_key.push_back(0);
      }
      keys[slot] = keyFor(id);
      slot_key[slot] = id;
      t.insert(keys[slot], slot, keys);
      ref[id] = slot;
    } else {
      uint32_t slot = it->second;
      ASSERT_EQ(t.find(keyFor(id), keys), slot);
      t.erase(keyFor(id), keys);
      ref.erase(it);
      free_slots.push_back(slot);
    }
    ASSERT_EQ(t.size(), ref.size());
    uint32_t probe = static_cast<uint32_t>(rng() % 20000);
    auto pit = ref.find(probe);
    ASSERT_EQ(t.find(keyFor(probe), keys), pit == ref.end() ? FlowTable::kNone : pit->second) << op;
  }
}

}  // namespace
}  // namespace mqttlive
