// The /status page assets and the /api/summary document. The page itself is
// exercised in headless Chromium by tests/live/test_status_page.py.
#include "mqttlive/status_page.h"

#include <gtest/gtest.h>

#include <string>

#include "mqttlive/metrics.h"

namespace mqttlive {
namespace {

constexpr Micros kS = kMicrosPerSecond;
constexpr Micros kT0 = 1'700'000'010 * kS;

bool mentions(std::string_view text, std::string_view s) { return text.find(s) != std::string_view::npos; }

Endpoint ep(uint8_t last, uint16_t port) {
  uint8_t a[4] = {10, 0, 0, last};
  return Endpoint{IpAddr::fromV4(a), port};
}

MqttPacket connectPacket(std::string_view id, uint16_t keepalive) {
  MqttPacket p;
  p.type = PacketType::kConnect;
  p.protocol_level = kMqtt311;
  p.client_id = id;
  p.keepalive = keepalive;
  return p;
}

TEST(StatusPage, HtmlIsStaticAndLoadsItsScriptFromThisOrigin) {
  const std::string_view html = statusPageHtml();
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_TRUE(mentions(html, "<table id=\"suspects\">"));
  for (const char* key : {"client_id", "client", "state", "keepalive", "silent_for", "suspect_for", "detail"})
    EXPECT_TRUE(mentions(html, std::string("data-key=\"") + key + "\"")) << key;
  EXPECT_TRUE(mentions(html, "<script src=\"status.js\"></script>"));
  // No inline script: the CSP below forbids it.
  EXPECT_FALSE(mentions(html, "<script>"));
  EXPECT_TRUE(mentions(statusPageCsp(), "script-src 'self'"));
  EXPECT_TRUE(mentions(statusPageCsp(), "default-src 'none'"));
}

TEST(StatusPage, ScriptNeverTurnsDataIntoMarkup) {
  const std::string_view js = statusPageScript();
  for (const char* sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                           "new Function"})
    EXPECT_FALSE(mentions(js, sink)) << sink;
  EXPECT_TRUE(mentions(js, "textContent"));
  EXPECT_TRUE(mentions(js, "fetchJson('connections')"));
  EXPECT_TRUE(mentions(js, "fetchJson('api/summary')"));
  EXPECT_TRUE(mentions(js, "REFRESH_MS = 2000"));
}

TEST(StatusPage, SummaryDocument) {
  Metrics metrics(MetricsConfig{}, "t");
  FlapDetector flap;
  struct Both : EventSink {
    Metrics* m;
    FlapDetector* f;
    void onEvent(const Event& e) override {
      m->onEvent(e);
      f->onEvent(e);
    }
    void onPingRtt(Micros rtt) override { m->onPingRtt(rtt); }
  } both;
  both.m = &metrics;
  both.f = &flap;
  TrackerConfig tc;
  tc.no_keepalive_idle = 5 * kS;
  SessionTracker tracker{tc, both};
  for (int i = 0; i < 5; ++i) {
    ConnHandle h = tracker.open(kT0 + i * kS, ep(2, static_cast<uint16_t>(40000 + i)), ep(1, 1883), false);
    tracker.onClientPacket(h, kT0 + i * kS, connectPacket("a\"<b>", 2));
    MqttPacket ack;
    ack.type = PacketType::kConnack;
    tracker.onBrokerPacket(h, kT0 + i * kS + 1000, ack);
    if (i < 4) {
      tracker.onCloseStarted(h, kT0 + i * kS + 500'000, Side::kClient, false);
      tracker.onClosed(h, ClientTcp::kResponsive);
    }
  }
  ConnHandle idle = tracker.open(kT0, ep(3, 1), ep(1, 1883), false);
  tracker.onClientPacket(idle, kT0, connectPacket("quiet", 0));
  metrics.onPingRtt(2000);
  tracker.advanceTo(kT0 + 9 * kS);  // the last one expires at +7 s, "quiet" idles at +5 s
  flap.advanceTo(kT0 + 9 * kS);

  const std::string j = formatSummary(tracker, flap, &metrics, kT0 + 9 * kS, 20);
  EXPECT_EQ(j.rfind("{\"now\":1700000019.000000,\"open\":2,\"connections\":{\"connecting\":0,\"active\":0,"
                    "\"expired\":1,\"no_keepalive_idle\":1,\"closing\":0},\"inflight\":{\"client\":0,\"broker\":0},"
                    "\"storm\":false,\"connect_rate\":0.500000,",
                    0),
            0u)
      << j;
  EXPECT_TRUE(mentions(j, "\"flapping_clients\":1,\"flapping_threshold\":5,\"window_seconds\":300.000000,"
                          "\"storm_window_seconds\":10,\"baseline_seconds\":600.000000,"
                          "\"idle_timeout_fingerprint\":null,\"fingerprint_closes\":0,\"client_ids_hashed\":false,"))
      << j;
  EXPECT_TRUE(mentions(j, "\"top_flapping\":[{\"client_id\":\"a\\\"<b>\",\"connects\":5,"
                          "\"first\":1700000010.001000,\"last\":1700000014.001000,\"flapping\":true}]"))
      << j;
  EXPECT_TRUE(mentions(j, "\"latency\":{\"ping_rtt\":{\"count\":1,\"p50\":0.001750,"));
  EXPECT_TRUE(mentions(j, "\"subscribe_ack\":{\"count\":0,\"p50\":0.000000,\"p90\":0.000000,\"p99\":0.000000}}}"))
      << j;
  // Without metrics there is no latency object.
  const std::string bare = formatSummary(tracker, flap, nullptr, kT0 + 9 * kS, 0);
  EXPECT_FALSE(mentions(bare, "latency"));
  EXPECT_TRUE(mentions(bare, "\"top_flapping\":[]}"));
  // metrics.per_client.hash_client_id: the ids are hashed like the per-client label.
  const std::string hashed = formatSummary(tracker, flap, nullptr, kT0 + 9 * kS, 20, true);
  EXPECT_TRUE(mentions(hashed, "\"client_ids_hashed\":true,\"top_flapping\":[{\"client_id\":\"" +
                                   Metrics::hashClientId("a\"<b>") + "\",\"connects\":5,"))
      << hashed;
  EXPECT_FALSE(mentions(hashed, "<b>"));
}

}  // namespace
}  // namespace mqttlive
