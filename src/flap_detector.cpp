#include "mqttlive/flap_detector.h"

#include <algorithm>
#include <cmath>

namespace mqttlive {

namespace {

constexpr int kB = FlapDetector::kWindowBuckets;

int64_t floorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0)) ? 1 : 0); }
size_t ringIndex(int64_t step, int64_t n) { return static_cast<size_t>(((step % n) + n) % n); }

}  // namespace

FlapDetector::FlapDetector(const FlapConfig& cfg) : cfg_(cfg) {
  cfg_.window = std::max<Micros>(cfg_.window, kB);
  cfg_.max_clients = std::max<uint32_t>(cfg_.max_clients, 1);
  cfg_.storm_window_seconds = std::clamp<uint32_t>(cfg_.storm_window_seconds, 1, kMaxStormWindow);
  cfg_.baseline_seconds = std::max(cfg_.baseline_seconds, 1.0);
  step_ = cfg_.window / kB;
  decay_ = std::exp(-1.0 / cfg_.baseline_seconds);
}

bool FlapDetector::reconfigure(const FlapConfig& cfg) {
  const FlapConfig running = cfg_;
  cfg_ = cfg;
  cfg_.window = running.window;
  cfg_.storm_window_seconds = running.storm_window_seconds;
  cfg_.max_clients = running.max_clients;
  cfg_.max_id_bytes = running.max_id_bytes;  // tracked keys are prefixes of this length
  cfg_.baseline_seconds = std::max(cfg_.baseline_seconds, 1.0);
  decay_ = std::exp(-1.0 / cfg_.baseline_seconds);
  return std::max<Micros>(cfg.window, kB) == running.window &&
         std::clamp<uint32_t>(cfg.storm_window_seconds, 1, kMaxStormWindow) == running.storm_window_seconds &&
         std::max<uint32_t>(cfg.max_clients, 1) == running.max_clients && cfg.max_id_bytes == running.max_id_bytes;
}

int64_t FlapDetector::stepOf(Micros ts) const { return floorDiv(ts, step_); }

uint32_t FlapDetector::windowCount(const Entry& e, int64_t step) const {
  if (step - e.head >= kB) return 0;
  uint32_t n = 0;
  // Steps (step - kB, e.head] are inside the window.
  for (int64_t s = e.head; s > step - kB && s > e.head - kB; --s) n += e.counts[ringIndex(s, kB)];
  return n;
}

void FlapDetector::onEvent(const Event& e) {
  roll(e.ts);
  switch (e.type) {
    case EventType::kConnected:
    case EventType::kConnectRefused:
      if (e.conn != nullptr) onConnect(*e.conn, e.ts);
      break;
    case EventType::kClosed:
      onClose(e);
      break;
    default:
      break;
  }
  evaluateStorm();
}

void FlapDetector::advanceTo(Micros now) {
  roll(now);
  evaluateStorm();
}

void FlapDetector::roll(Micros ts) {
  if (ts <= now_) return;  // time never runs backwards (closes are stamped at their first FIN)
  now_ = ts;
  const int64_t sec = floorDiv(ts, kMicrosPerSecond);
  const int64_t w = cfg_.storm_window_seconds;
  if (second_ == 0) {
    second_ = sec;
    return;
  }
  // Finish every whole second up to `sec`: each feeds the baseline, and its
  // ring slot is reused for a later second. After a long quiet stretch the
  // zero seconds beyond one ring turn only decay the baseline.
  int64_t steps = 0;
  while (second_ < sec && steps <= w) {
    const double c = seconds_[ringIndex(second_, w)];
    baseline_ = decay_ * baseline_ + (1.0 - decay_) * c;
    ++second_;
    ++steps;
    seconds_[ringIndex(second_, w)] = 0;
  }
  if (second_ < sec) {
    baseline_ *= std::pow(decay_, static_cast<double>(sec - second_));
    second_ = sec;
    seconds_.fill(0);
  }
}

double FlapDetector::rate() const {
  uint64_t n = 0;
  for (uint32_t i = 0; i < cfg_.storm_window_seconds; ++i) n += seconds_[i];
  return static_cast<double>(n) / cfg_.storm_window_seconds;
}

void FlapDetector::evaluateStorm() {
  const double r = rate();
  if (!storm_)
    storm_ = r >= cfg_.storm_floor && r > cfg_.storm_factor * baseline_;
  else
    storm_ = r >= cfg_.storm_floor / 2 && r > cfg_.storm_factor / 2 * baseline_;
}

size_t FlapDetector::slotFor(const std::string& id) {
  auto it = index_.find(id);
  if (it != index_.end()) return it->second;
  if (entries_.size() < cfg_.max_clients) {
    entries_.emplace_back();
    entries_.back().id = id;
    index_.emplace(id, static_cast<uint32_t>(entries_.size() - 1));
    return entries_.size() - 1;
  }
  // Clock: skip (and clear) recently referenced entries, but an entry with
  // nothing left in the window goes first. Two turns always find one.
  const int64_t step = stepOf(now_);
  size_t victim = hand_;
  for (size_t i = 0; i < 2 * entries_.size(); ++i) {
    Entry& e = entries_[hand_];
    victim = hand_;
    hand_ = (hand_ + 1) % entries_.size();
    if (!e.referenced || windowCount(e, step) == 0) break;
    e.referenced = false;
  }
  Entry& v = entries_[victim];
  index_.erase(v.id);
  ++evicted_;
  v = Entry{};
  v.id = id;
  index_.emplace(id, static_cast<uint32_t>(victim));
  return victim;
}

void FlapDetector::onConnect(const ConnectionInfo& c, Micros ts) {
  // Fleet-wide rate: every CONNACK, counted in its second (or the current one
  // when it arrives late).
  ++seconds_[ringIndex(std::max(second_, floorDiv(ts, kMicrosPerSecond)), cfg_.storm_window_seconds)];
  if (!c.client_id_known || c.client_id.empty()) return;
  try {
    const std::string key = c.client_id.size() > cfg_.max_id_bytes ? c.client_id.substr(0, cfg_.max_id_bytes)
                                                                    : c.client_id;
    Entry& e = entries_[slotFor(key)];
    const int64_t step = std::max(stepOf(ts), e.head);
    if (e.last == 0 || windowCount(e, stepOf(now_)) == 0) e.first = ts;
    if (e.last == 0 || step - e.head >= kB) {
      e.counts.fill(0);
    } else {
      for (int64_t s = e.head + 1; s <= step; ++s) e.counts[ringIndex(s, kB)] = 0;
    }
    e.head = step;
    uint16_t& n = e.counts[ringIndex(step, kB)];
    if (n < UINT16_MAX) ++n;
    e.last = std::max(e.last, ts);
    e.referenced = true;
  } catch (...) {
    // Out of memory: the id goes uncounted, the engine thread goes on.
  }
}

void FlapDetector::onClose(const Event& e) {
  // Load balancers cut idle sessions without an MQTT goodbye. Closes the
  // tracker explains otherwise (keepalive enforcement, takeover) and sessions
  // that never got a CONNACK are not such cuts.
  if (e.conn == nullptr || !e.conn->connected) return;
  if (e.reason == CloseReason::kGracefulDisconnect || e.reason == CloseReason::kBrokerCloseKeepalive ||
      e.reason == CloseReason::kBrokerCloseTakeover)
    return;
  if (e.duration < cfg_.fingerprint_min_age) return;
  closes_[close_next_] = Close{e.ts, e.duration};
  close_next_ = (close_next_ + 1) % kCloseRing;
  close_count_ = std::min(close_count_ + 1, kCloseRing);
}

FlapStatus FlapDetector::status() const {
  FlapStatus st;
  st.storm = storm_;
  st.connect_rate = rate();
  st.baseline_rate = baseline_;
  st.tracked_clients = static_cast<uint32_t>(entries_.size());
  st.evicted_clients = evicted_;
  const int64_t step = stepOf(now_);
  for (const Entry& e : entries_)
    if (windowCount(e, step) >= cfg_.flapping_connects) ++st.flapping_clients;

  std::array<Micros, kCloseRing> ages;
  size_t n = 0;
  for (size_t i = 0; i < close_count_; ++i)
    if (closes_[i].ts >= now_ - cfg_.fingerprint_window) ages[n++] = closes_[i].age;
  std::sort(ages.begin(), ages.begin() + static_cast<std::ptrdiff_t>(n));
  size_t best = 0, best_at = 0;
  for (size_t i = 0, j = 0; i < n; ++i) {
    j = std::max(j, i);
    while (j < n && ages[j] - ages[i] <= 2 * cfg_.fingerprint_tolerance) ++j;
    if (j - i > best) best = j - i, best_at = i;
  }
  if (best > 0 && best >= cfg_.fingerprint_min_closes &&
      static_cast<double>(best) >= cfg_.fingerprint_min_fraction * static_cast<double>(n)) {
    // The cluster's median, to the millisecond.
    const Micros median = ages[best_at + best / 2];
    st.fingerprint_seconds = static_cast<double>((median + 500) / 1000) / 1000.0;
    st.fingerprint_closes = static_cast<uint32_t>(best);
  }
  return st;
}

std::vector<FlappingClient> FlapDetector::topFlapping(size_t n) const {
  n = std::min(n, kMaxTop);
  std::vector<FlappingClient> out;
  if (n == 0) return out;
  const int64_t step = stepOf(now_);
  std::vector<std::pair<uint32_t, size_t>> ranked;  // (connects, entry)
  for (size_t i = 0; i < entries_.size(); ++i) {
    const uint32_t c = windowCount(entries_[i], step);
    if (c >= 2) ranked.emplace_back(c, i);
  }
  auto better = [&](const std::pair<uint32_t, size_t>& a, const std::pair<uint32_t, size_t>& b) {
    if (a.first != b.first) return a.first > b.first;
    if (entries_[a.second].last != entries_[b.second].last) return entries_[a.second].last > entries_[b.second].last;
    return entries_[a.second].id < entries_[b.second].id;
  };
  const size_t k = std::min(n, ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(k), ranked.end(), better);
  out.reserve(k);
  for (size_t i = 0; i < k; ++i) {
    const Entry& e = entries_[ranked[i].second];
    FlappingClient f;
    f.client_id = e.id;
    f.connects = ranked[i].first;
    f.first = e.first;
    f.last = e.last;
    out.push_back(std::move(f));
  }
  return out;
}

uint32_t FlapDetector::connectsInWindow(const std::string& client_id) const {
  auto it = index_.find(client_id.size() > cfg_.max_id_bytes ? client_id.substr(0, cfg_.max_id_bytes) : client_id);
  return it == index_.end() ? 0 : windowCount(entries_[it->second], stepOf(now_));
}

}  // namespace mqttlive
