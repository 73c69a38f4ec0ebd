// Test sink that keeps every event as its JSON line, so assertions read like
// the event contract an operator's program would parse.
#pragma once

#include <string>
#include <vector>

#include "mqttlive/events.h"
#include "mqttlive/json_events.h"

namespace mqttlive::testing {

class RecordingSink : public EventSink {
 public:
  void onEvent(const Event& e) override {
    std::string line;
    JsonEventWriter::format(line, e);
    lines.push_back(line);
    types.push_back(e.type);
    if (e.type == EventType::kClosed) {
      reasons.push_back(e.reason);
      client_tcp.push_back(e.client_tcp);
    }
    ts.push_back(e.ts);
  }
  void onPingRtt(Micros rtt) override { rtts.push_back(rtt); }
  void onEnforcementDelay(Micros d) override { delays.push_back(d); }
  struct Ack {
    AckKind kind;
    Side sender;
    Micros latency;
  };
  void onAckLatency(AckKind kind, Side sender, Micros latency) override { acks.push_back({kind, sender, latency}); }

  size_t count(EventType t) const {
    size_t n = 0;
    for (auto x : types) n += x == t;
    return n;
  }
  // Index of the first event of type t, or -1.
  int first(EventType t) const {
    for (size_t i = 0; i < types.size(); ++i)
      if (types[i] == t) return static_cast<int>(i);
    return -1;
  }

  std::vector<std::string> lines;
  std::vector<EventType> types;
  std::vector<Micros> ts;
  std::vector<CloseReason> reasons;
  std::vector<ClientTcp> client_tcp;
  std::vector<Micros> rtts;
  std::vector<Micros> delays;
  std::vector<Ack> acks;
};

}  // namespace mqttlive::testing
