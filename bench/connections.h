// N concurrent tracked connections for the memory and scrape benchmarks.
// Bench code only.
#pragma once

#include <cstdint>
#include <cstdio>
#include <vector>

#include "mqttlive/engine.h"
#include "mqttlive/mqtt_encoder.h"
#include "mqttlive/pcap_writer.h"
#include "synth.h"

namespace mqttlive::bench {

// Client i gets its own address and port (clientEndpoint) and sends a SYN and
// a CONNECT (client id "sensor-000123", keepalive 60, a third MQTT 5.0); the
// broker answers with a CONNACK. Frames are built per client and fed straight
// to Engine::onFrame, 1 us apart, so nothing but the engine's own state stays
// resident. Returns the number of frames fed.
inline uint64_t openConnections(Engine& engine, uint32_t n, Micros t0) {
  const Endpoint broker = v4Endpoint(127, 0, 0, 1, 1883);
  uint64_t frames = 0;
  for (uint32_t i = 0; i < n; ++i) {
    const Endpoint client = clientEndpoint(i);
    const uint32_t cisn = 1000u + i * 7919u, bisn = 5000u + i * 104729u;
    char id[32];
    std::snprintf(id, sizeof(id), "sensor-%06u", i);
    ConnectSpec cs;
    cs.protocol_level = i % 3 == 0 ? kMqtt5 : kMqtt311;
    cs.client_id = id;
    cs.keepalive = 60;
    ConnackSpec ca;
    ca.protocol_level = cs.protocol_level;
    const std::vector<uint8_t> connect = encodeConnect(cs);
    const std::vector<uint8_t> connack = encodeConnack(ca);
    const Micros ts = t0 + i;
    const auto syn = PcapWriter::buildFrame(dlt::kEthernet, client, broker, cisn, 0, tcpflag::kSyn, {});
    const auto data = PcapWriter::buildFrame(dlt::kEthernet, client, broker, cisn + 1, bisn + 1,
                                             tcpflag::kPsh | tcpflag::kAck, connect);
    const auto ack = PcapWriter::buildFrame(dlt::kEthernet, broker, client, bisn + 1,
                                            cisn + 1 + static_cast<uint32_t>(connect.size()),
                                            tcpflag::kPsh | tcpflag::kAck, connack);
    engine.onFrame(ts, dlt::kEthernet, syn);
    engine.onFrame(ts, dlt::kEthernet, data);
    engine.onFrame(ts, dlt::kEthernet, ack);
    frames += 3;
  }
  return frames;
}

}  // namespace mqttlive::bench
