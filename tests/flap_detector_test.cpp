// Storms, flapping ids and idle-timeout fingerprints on hand-moved event time.
#include "mqttlive/flap_detector.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

namespace mqttlive {
namespace {

constexpr Micros kS = kMicrosPerSecond;
// Aligned to the 30 s window steps (and to whole seconds) so that the window
// edges below are exact.
constexpr Micros kT0 = 1'700'000'010 * kS;

class FlapTest : public ::testing::Test {
 protected:
  void connect(const std::string& id, Micros ts, bool refused = false) { connectTo(flap, id, ts, refused); }
  static void connectTo(FlapDetector& f, const std::string& id, Micros ts, bool refused = false) {
    ConnectionInfo c;
    c.client_id = id;
    c.client_id_known = !id.empty();
    c.connected = !refused;
    Event e;
    e.type = refused ? EventType::kConnectRefused : EventType::kConnected;
    e.ts = ts;
    e.conn = &c;
    f.onEvent(e);
  }
  void close(Micros ts, Micros age, CloseReason reason = CloseReason::kClientFinWithoutDisconnect,
             bool connected = true) {
    ConnectionInfo c;
    c.client_id = "x";
    c.client_id_known = true;
    c.connected = connected;
    c.opened_at = ts - age;
    Event e;
    e.type = EventType::kClosed;
    e.ts = ts;
    e.conn = &c;
    e.reason = reason;
    e.duration = age;
    flap.onEvent(e);
  }
  FlapConfig cfg;
  FlapDetector flap{cfg};
};

TEST_F(FlapTest, CountsConnectsPerClientOverTheSlidingWindow) {
  connect("dev-1", kT0);
  connect("dev-1", kT0 + 10 * kS);
  connect("dev-1", kT0 + 20 * kS, /*refused=*/true);  // refused attempts are reconnects too
  connect("dev-2", kT0 + 100 * kS);
  EXPECT_EQ(flap.connectsInWindow("dev-1"), 3u);
  EXPECT_EQ(flap.connectsInWindow("dev-2"), 1u);
  EXPECT_EQ(flap.connectsInWindow("nobody"), 0u);
  // The window slides in 30 s steps: the first step (kT0 .. +30 s) leaves it
  // when the window end reaches kT0 + 300 s.
  flap.advanceTo(kT0 + 299 * kS);
  EXPECT_EQ(flap.connectsInWindow("dev-1"), 3u);
  flap.advanceTo(kT0 + 300 * kS);
  EXPECT_EQ(flap.connectsInWindow("dev-1"), 0u);
  EXPECT_EQ(flap.connectsInWindow("dev-2"), 1u);
  flap.advanceTo(kT0 + 400 * kS);
  EXPECT_EQ(flap.connectsInWindow("dev-2"), 0u);
}

TEST_F(FlapTest, FlappingClientsAndTheTopList) {
  for (int i = 0; i < 7; ++i) connect("flappy", kT0 + i * 20 * kS);
  for (int i = 0; i < 5; ++i) connect("wobbly", kT0 + 30 * kS + i * 10 * kS);
  for (int i = 0; i < 2; ++i) connect("twice", kT0 + 50 * kS + i * kS);
  connect("once", kT0 + 60 * kS);
  connect("", kT0 + 61 * kS);  // unknown id: counts for the rate only
  flap.advanceTo(kT0 + 150 * kS);
  FlapStatus st = flap.status();
  EXPECT_EQ(st.flapping_clients, 2u);  // >= 5 connects
  EXPECT_EQ(st.tracked_clients, 4u);

  auto top = flap.topFlapping(10);
  ASSERT_EQ(top.size(), 3u);  // "once" has nothing to report
  EXPECT_EQ(top[0].client_id, "flappy");
  EXPECT_EQ(top[0].connects, 7u);
  EXPECT_EQ(top[0].first, kT0);
  EXPECT_EQ(top[0].last, kT0 + 120 * kS);
  EXPECT_EQ(top[1].client_id, "wobbly");
  EXPECT_EQ(top[1].connects, 5u);
  EXPECT_EQ(top[1].first, kT0 + 30 * kS);
  EXPECT_EQ(top[2].client_id, "twice");
  ASSERT_EQ(flap.topFlapping(1).size(), 1u);
  EXPECT_EQ(flap.topFlapping(1)[0].client_id, "flappy");
  EXPECT_TRUE(flap.topFlapping(0).empty());
  EXPECT_LE(flap.topFlapping(100000).size(), FlapDetector::kMaxTop);

  // Once a client calms down its streak ends; the next connect starts a new one.
  flap.advanceTo(kT0 + 1000 * kS);
  EXPECT_EQ(flap.status().flapping_clients, 0u);
  connect("flappy", kT0 + 1000 * kS);
  connect("flappy", kT0 + 1001 * kS);
  top = flap.topFlapping(10);
  ASSERT_EQ(top.size(), 1u);
  EXPECT_EQ(top[0].first, kT0 + 1000 * kS);
  EXPECT_EQ(top[0].connects, 2u);
}

TEST_F(FlapTest, ClientTableIsCappedWithClockEvictionCounted) {
  cfg.max_clients = 3;
  FlapDetector f(cfg);
  connectTo(f, "a", kT0);
  connectTo(f, "a", kT0 + kS);
  connectTo(f, "b", kT0 + 2 * kS);
  connectTo(f, "c", kT0 + 3 * kS);
  EXPECT_EQ(f.status().tracked_clients, 3u);
  EXPECT_EQ(f.status().evicted_clients, 0u);
  // All three were referenced: one turn of the clock clears the bits, the
  // hand's first entry goes.
  connectTo(f, "d", kT0 + 4 * kS);
  EXPECT_EQ(f.status().tracked_clients, 3u);
  EXPECT_EQ(f.status().evicted_clients, 1u);
  EXPECT_EQ(f.connectsInWindow("a"), 0u);
  EXPECT_EQ(f.connectsInWindow("d"), 1u);
  // "b" and "c" lost their bits; "c" reconnects and keeps its place.
  connectTo(f, "c", kT0 + 5 * kS);
  connectTo(f, "e", kT0 + 6 * kS);
  EXPECT_EQ(f.status().evicted_clients, 2u);
  EXPECT_EQ(f.connectsInWindow("b"), 0u);
  EXPECT_EQ(f.connectsInWindow("c"), 2u);
  // An entry with nothing left in its window goes first, bit or not.
  f.advanceTo(kT0 + 400 * kS);
  connectTo(f, "c", kT0 + 400 * kS);
  connectTo(f, "g", kT0 + 401 * kS);
  EXPECT_EQ(f.connectsInWindow("c"), 1u);
  EXPECT_EQ(f.status().evicted_clients, 3u);
  EXPECT_EQ(f.status().tracked_clients, 3u);
}

TEST_F(FlapTest, LongHostileIdsAreTrackedByAPrefix) {
  const std::string a = std::string(1000, 'x') + "a";
  const std::string b = std::string(1000, 'x') + "b";
  connect(a, kT0);
  connect(b, kT0 + kS);
  EXPECT_EQ(flap.connectsInWindow(a), 2u);
  ASSERT_EQ(flap.topFlapping(5).size(), 1u);
  EXPECT_EQ(flap.topFlapping(5)[0].client_id.size(), cfg.max_id_bytes);
}

TEST_F(FlapTest, StormIsARateFarAboveTheBaselineWithAFloor) {
  // Ten quiet minutes: one connect every 10 s (0.1/s).
  for (int i = 0; i < 60; ++i) connect("steady-" + std::to_string(i % 5), kT0 + i * 10 * kS);
  flap.advanceTo(kT0 + 600 * kS);
  FlapStatus st = flap.status();
  EXPECT_FALSE(st.storm);
  EXPECT_NEAR(st.baseline_rate, 0.1, 0.07);
  EXPECT_NEAR(st.connect_rate, 0.1, 0.11);

  // 60 connects within 3 s: 6/s over the 10 s window.
  const Micros t1 = kT0 + 600 * kS;
  for (int i = 0; i < 60; ++i) connect("fleet-" + std::to_string(i), t1 + i * 50'000);
  st = flap.status();
  EXPECT_TRUE(st.storm);
  EXPECT_DOUBLE_EQ(st.connect_rate, 6.0);
  EXPECT_LT(st.baseline_rate, 0.3);

  // The rate falls as the window slides past the burst.
  flap.advanceTo(t1 + 9 * kS);
  EXPECT_TRUE(flap.status().storm);
  flap.advanceTo(t1 + 11 * kS);  // only the burst's last second (20 connects) left
  st = flap.status();
  EXPECT_DOUBLE_EQ(st.connect_rate, 2.0);
  EXPECT_TRUE(st.storm);
  flap.advanceTo(t1 + 13 * kS);
  st = flap.status();
  EXPECT_FALSE(st.storm);
  EXPECT_DOUBLE_EQ(st.connect_rate, 0.0);
  EXPECT_GT(st.baseline_rate, 0.1);  // the burst left a trace in the baseline
}

TEST_F(FlapTest, NoStormBelowTheAbsoluteFloor) {
  // From a silent start, 1 connect per second is far above the baseline of
  // 0 but below the floor of 2/s.
  for (int i = 0; i < 10; ++i) connect("d" + std::to_string(i), kT0 + i * kS);
  EXPECT_FALSE(flap.status().storm);
  EXPECT_DOUBLE_EQ(flap.status().connect_rate, 1.0);
}

TEST_F(FlapTest, NoStormAtTheUsualRate) {
  // Ten minutes at 10 connects per second: that is the baseline, not a storm.
  for (int s = 0; s < 600; ++s)
    for (int k = 0; k < 10; ++k) connect("c" + std::to_string(k), kT0 + s * kS + k * 90'000);
  flap.advanceTo(kT0 + 600 * kS);
  FlapStatus st = flap.status();
  EXPECT_NEAR(st.baseline_rate, 10.0 * (1 - std::exp(-1.0)), 0.2);
  // 1.5x the usual rate is not "far above".
  for (int k = 0; k < 15; ++k) connect("c" + std::to_string(k), kT0 + 600 * kS + k * 60'000);
  EXPECT_FALSE(flap.status().storm);
}

TEST_F(FlapTest, StormHysteresisAndLongSilence) {
  const Micros t1 = kT0;
  for (int i = 0; i < 100; ++i) connect("a" + std::to_string(i), t1 + i * 10'000);  // 10/s
  EXPECT_TRUE(flap.status().storm);
  // Keep 1.5/s flowing: below the 2/s floor to start one, above half of it.
  for (int s = 1; s <= 20; ++s) {
    connect("b", t1 + s * kS);
    if (s % 2 == 0) connect("b", t1 + s * kS + 500'000);
  }
  flap.advanceTo(t1 + 20 * kS + 600'000);
  FlapStatus st = flap.status();
  EXPECT_GE(st.connect_rate, 1.0);
  EXPECT_LT(st.connect_rate, 2.0);
  EXPECT_TRUE(st.storm);
  // A year of silence: no per-second loop over it, baseline back to ~0.
  flap.advanceTo(t1 + 365LL * 86400 * kS);
  st = flap.status();
  EXPECT_FALSE(st.storm);
  EXPECT_DOUBLE_EQ(st.connect_rate, 0.0);
  EXPECT_LT(st.baseline_rate, 1e-9);
}

TEST_F(FlapTest, ConfiguredThresholds) {
  FlapConfig c;
  c.window = 60 * kS;
  c.flapping_connects = 3;
  c.storm_window_seconds = 5;
  c.storm_factor = 2;
  c.storm_floor = 0.5;
  FlapDetector f{c};
  for (int i = 0; i < 3; ++i) connectTo(f, "x", kT0 + i * kS);
  EXPECT_EQ(f.status().flapping_clients, 1u);
  // 3 connects in a 5 s window: 0.6/s, above the 0.5/s floor and 2 x a zero baseline.
  EXPECT_DOUBLE_EQ(f.status().connect_rate, 0.6);
  EXPECT_TRUE(f.status().storm);
  f.advanceTo(kT0 + 62 * kS);  // the 60 s window has slid past them
  EXPECT_EQ(f.status().flapping_clients, 0u);
  EXPECT_FALSE(f.status().storm);
}

TEST_F(FlapTest, ReconfigureKeepsStateAndTheShapingKeys) {
  for (int i = 0; i < 4; ++i) connect("x", kT0 + i * kS);
  EXPECT_EQ(flap.status().flapping_clients, 0u);  // 4 < 5
  FlapConfig next = cfg;
  next.flapping_connects = 4;
  next.storm_floor = 100;
  EXPECT_TRUE(flap.reconfigure(next));
  EXPECT_EQ(flap.status().flapping_clients, 1u);  // same counts, new threshold
  EXPECT_EQ(flap.connectsInWindow("x"), 4u);
  EXPECT_EQ(flap.config().storm_floor, 100.0);
  // Window, storm window and table size keep their running values.
  next.window = 600 * kS;
  next.storm_window_seconds = 30;
  next.max_clients = 5;
  next.flapping_connects = 2;
  EXPECT_FALSE(flap.reconfigure(next));
  EXPECT_EQ(flap.config().window, cfg.window);
  EXPECT_EQ(flap.config().storm_window_seconds, cfg.storm_window_seconds);
  EXPECT_EQ(flap.config().max_clients, cfg.max_clients);
  EXPECT_EQ(flap.config().flapping_connects, 2u);  // the thresholds still apply
  EXPECT_EQ(flap.connectsInWindow("x"), 4u);
}

TEST_F(FlapTest, TimeNeverRunsBackwards) {
  connect("a", kT0 + 100 * kS);
  // A close stamped at its first FIN can arrive after later events.
  close(kT0 + 50 * kS, 10 * kS);
  connect("a", kT0 + 40 * kS);  // late: counted now
  EXPECT_EQ(flap.now(), kT0 + 100 * kS);
  EXPECT_EQ(flap.connectsInWindow("a"), 2u);
  EXPECT_DOUBLE_EQ(flap.status().connect_rate, 0.2);
}

TEST_F(FlapTest, IdleTimeoutFingerprintFromClusteredCloseAges) {
  Micros t = kT0;
  // 25 sessions cut at 350 s +- 0.6 s, 15 others at scattered ages.
  for (int i = 0; i < 25; ++i) close(t += kS, 350 * kS + (i % 7 - 3) * 200'000);
  for (int i = 0; i < 15; ++i) close(t += kS, (20 + i * 37) * kS, CloseReason::kClientRstWithoutDisconnect);
  FlapStatus st = flap.status();
  EXPECT_DOUBLE_EQ(st.fingerprint_seconds, 350.0);
  EXPECT_EQ(st.fingerprint_closes, 25u);
}

TEST_F(FlapTest, FingerprintNeedsManyClosesAndAMajority) {
  Micros t = kT0;
  for (int i = 0; i < 19; ++i) close(t += kS, 60 * kS);
  EXPECT_DOUBLE_EQ(flap.status().fingerprint_seconds, 0.0);  // 19 < 20
  close(t += kS, 60 * kS + 900'000, CloseReason::kBrokerCloseOther);
  EXPECT_DOUBLE_EQ(flap.status().fingerprint_seconds, 60.0);
  // 21 closes spread at other ages: 20 of 41 is not half.
  for (int i = 0; i < 21; ++i) close(t += kS, (100 + 10 * i) * kS);
  EXPECT_DOUBLE_EQ(flap.status().fingerprint_seconds, 0.0);
}

TEST_F(FlapTest, FingerprintIgnoresExplainedClosesAndOldOnes) {
  Micros t = kT0;
  for (int i = 0; i < 30; ++i) {
    close(t += kS, 90 * kS, CloseReason::kGracefulDisconnect);
    close(t, 90 * kS, CloseReason::kBrokerCloseKeepalive);
    close(t, 90 * kS, CloseReason::kBrokerCloseTakeover);
    close(t, 90 * kS, CloseReason::kClientFinWithoutDisconnect, /*connected=*/false);  // never got CONNACK
    close(t, 200'000);  // shorter than the minimum age
  }
  EXPECT_DOUBLE_EQ(flap.status().fingerprint_seconds, 0.0);
  for (int i = 0; i < 30; ++i) close(t += kS, 90 * kS);
  EXPECT_DOUBLE_EQ(flap.status().fingerprint_seconds, 90.0);
  // An hour later the cluster has aged out.
  flap.advanceTo(t + 3601 * kS);
  EXPECT_DOUBLE_EQ(flap.status().fingerprint_seconds, 0.0);
}

TEST_F(FlapTest, FingerprintMemoryIsARingOfRecentCloses) {
  Micros t = kT0;
  for (size_t i = 0; i < FlapDetector::kCloseRing; ++i) close(t += kS, 30 * kS);
  EXPECT_DOUBLE_EQ(flap.status().fingerprint_seconds, 30.0);
  // A new timeout value takes over once it dominates the ring.
  for (size_t i = 0; i < FlapDetector::kCloseRing / 2 + 1; ++i) close(t += kS, 45 * kS);
  EXPECT_DOUBLE_EQ(flap.status().fingerprint_seconds, 45.0);
}

}  // namespace
}  // namespace mqttlive
