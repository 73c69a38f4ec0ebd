// The live status page served at /status: static HTML and a vanilla script
// (/status.js) embedded in the binary, and the /api/summary document the
// script polls beside /connections. The page builds its DOM with textContent
// only: client ids are hostile input.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "mqttlive/flap_detector.h"
#include "mqttlive/tracker.h"
#include "mqttlive/types.h"

namespace mqttlive {

class Metrics;

std::string_view statusPageHtml();
std::string_view statusPageScript();
// Content-Security-Policy sent with both: scripts only from this origin, so
// markup that slipped into the page could not run.
std::string_view statusPageCsp();

// The /api/summary document, one JSON object:
// {"now":ts,"open":n,"connections":{"connecting":n,"active":n,"expired":n,
//  "no_keepalive_idle":n,"closing":n},"inflight":{"client":n,"broker":n},
//  "storm":bool,"connect_rate":r,"baseline_rate":r,"flapping_clients":n,
//  "flapping_threshold":k,"window_seconds":s,"storm_window_seconds":n,"baseline_seconds":s,
//  "idle_timeout_fingerprint":s|null,"fingerprint_closes":n,"client_ids_hashed":bool,
//  "top_flapping":[{"client_id":..,"connects":n,"first":ts,"last":ts,"flapping":bool},...],
//  "latency":{"ping_rtt":{"count":n,"p50":s,"p90":s,"p99":s},...}}
// `metrics` may be null (no latency object then). At most `top_n` flapping ids
// (those with >= 2 connects in the window; detectors.flapping.top_n, capped at
// FlapDetector::kMaxTop), most connects first. With `hash_client_ids`
// (metrics.per_client.hash_client_id) each id is Metrics::hashClientId of it.
std::string formatSummary(const SessionTracker& tracker, const FlapDetector& flap, const Metrics* metrics,
                          Micros now, size_t top_n = 20, bool hash_client_ids = false);

}  // namespace mqttlive
