#include "mqttlive/timer_wheel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <utility>
#include <vector>

namespace mqttlive {
namespace {

TEST(TimerWheel, FiresInDeadlineOrderExactlyOnce) {
  TimerWheel w(1000, 64);
  w.arm(3, 5'500);
  w.arm(1, 2'000);
  w.arm(2, 2'000);
  std::vector<uint32_t> due;
  w.advance(1'999, due);
  EXPECT_TRUE(due.empty());
  w.advance(10'000, due);
  EXPECT_EQ(due, (std::vector<uint32_t>{1, 2, 3}));
  w.advance(20'000, due);
  EXPECT_TRUE(due.empty());
  EXPECT_EQ(w.size(), 0u);
}

TEST(TimerWheel, RearmMovesAndCancelRemoves) {
  TimerWheel w(1000, 64);
  w.arm(7, 3'000);
  w.arm(7, 9'000);  // activity pushed the deadline out
  w.arm(8, 4'000);
  w.cancel(8);
  std::vector<uint32_t> due;
  w.advance(8'999, due);
  EXPECT_TRUE(due.empty());
  w.advance(9'000, due);
  EXPECT_EQ(due, std::vector<uint32_t>{7});
}

TEST(TimerWheel, DeadlinesBeyondOneLapWaitTheirTurn) {
  TimerWheel w(1000, 16);  // one lap = 16 ms
  w.arm(1, 100'000);
  std::vector<uint32_t> due;
  for (Micros t = 0; t < 100'000; t += 700) {
    w.advance(t, due);
    ASSERT_TRUE(due.empty()) << t;
  }
  w.advance(100'000, due);
  EXPECT_EQ(due, std::vector<uint32_t>{1});
}

TEST(TimerWheel, LongJumpCollectsEverythingDue) {
  TimerWheel w(1000, 16);
  std::mt19937 rng(7);
  std::vector<Micros> deadlines(500);
  for (uint32_t i = 0; i < deadlines.size(); ++i) {
    deadlines[i] = 1'000 + static_cast<Micros>(rng() % 1'000'000);
    w.arm(i, deadlines[i]);
  }
  std::vector<uint32_t> due;
  w.advance(500'000, due);
  size_t expected = 0;
  for (Micros d : deadlines) expected += d <= 500'000;
  EXPECT_EQ(due.size(), expected);
  for (size_t i = 1; i < due.size(); ++i) EXPECT_LE(deadlines[due[i - 1]], deadlines[due[i]]);
  w.advance(2'000'000, due);
  EXPECT_EQ(due.size(), deadlines.size() - expected);
}

TEST(TimerWheel, DeadlineInThePastFiresOnNextAdvance) {
  TimerWheel w(1000, 64);
  std::vector<uint32_t> due;
  w.advance(50'000, due);
  w.arm(4, 10'000);
  w.advance(50'001, due);
  EXPECT_EQ(due, std::vector<uint32_t>{4});
}

// Against a plain map of deadlines: random arms (later, earlier, behind the
// cursor, inside the tick being walked), cancels and advances in small and
// large steps. Every advance must return exactly the entries due, in order.
TEST(TimerWheel, AgreesWithAModelUnderRandomUse) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE(testing::Message() << "seed " << seed);
    std::mt19937 rng(seed);
    TimerWheel w(1000, 16);
    std::map<uint32_t, Micros> model;
    Micros now = 0;
    std::vector<uint32_t> due;
    for (int step = 0; step < 4000; ++step) {
      const uint32_t id = rng() % 40;
      switch (rng() % 4) {
        case 0:
        case 1: {  // arm near now: behind, in this tick, ahead, laps ahead
          const Micros d = std::max<Micros>(0, now + static_cast<Micros>(rng() % 40'000) - 5'000);
          w.arm(id, d);
          model[id] = d;
          break;
        }
        case 2:
          w.cancel(id);
          model.erase(id);
          break;
        default: {
          now += rng() % 8 == 0 ? static_cast<Micros>(rng() % 50'000) : static_cast<Micros>(rng() % 700);
          w.advance(now, due);
          std::vector<std::pair<Micros, uint32_t>> expect;
          for (auto it = model.begin(); it != model.end();) {
            if (it->second <= now) {
              expect.emplace_back(it->second, it->first);
              it = model.erase(it);
            } else {
              ++it;
            }
          }
          std::sort(expect.begin(), expect.end());
          std::vector<uint32_t> ids;
          for (const auto& e : expect) ids.push_back(e.second);
          ASSERT_EQ(due, ids) << "at " << now << ", step " << step;
        }
      }
      ASSERT_EQ(w.size(), model.size());
    }
  }
}

}  // namespace
}  // namespace mqttlive
