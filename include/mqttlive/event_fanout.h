// Sink that forwards every callback to a few other sinks, so the engine (which
// takes exactly one EventSink) can feed the JSON writer and the metrics at once.
#pragma once

#include <array>
#include <cstddef>
#include <initializer_list>

#include "mqttlive/events.h"

namespace mqttlive {

class EventFanout : public EventSink {
 public:
  static constexpr size_t kMaxSinks = 4;

  EventFanout() = default;
  EventFanout(std::initializer_list<EventSink*> sinks) {
    for (EventSink* s : sinks) add(s);
  }

  // Returns false when full or `sink` is null. Not thread-safe: set up the
  // fan-out before the engine starts calling it.
  bool add(EventSink* sink) {
    if (sink == nullptr || size_ == kMaxSinks) return false;
    sinks_[size_++] = sink;
    return true;
  }
  size_t size() const { return size_; }

  void onEvent(const Event& e) override {
    for (size_t i = 0; i < size_; ++i) sinks_[i]->onEvent(e);
  }
  void onPingRtt(Micros rtt) override {
    for (size_t i = 0; i < size_; ++i) sinks_[i]->onPingRtt(rtt);
  }
  void onEnforcementDelay(Micros delay) override {
    for (size_t i = 0; i < size_; ++i) sinks_[i]->onEnforcementDelay(delay);
  }
  void onAckLatency(AckKind kind, Side sender, Micros latency) override {
    for (size_t i = 0; i < size_; ++i) sinks_[i]->onAckLatency(kind, sender, latency);
  }

 private:
  // Fixed array: no allocation, and the engine's hot path stays a tight loop.
  std::array<EventSink*, kMaxSinks> sinks_{};
  size_t size_ = 0;
};

}  // namespace mqttlive
