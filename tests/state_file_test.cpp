// Restart without amnesia: the state file round trip, every way a file is
// rejected (with its exact reason), and restored connections being judged
// against what was known before the restart.
#include "mqttlive/state_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "mqttlive/engine.h"
#include "mqttlive/mqtt_encoder.h"
#include "mqttlive/packet_decoder.h"
#include "mqttlive/pcap_writer.h"
#include "support/capture_run.h"
#include "support/recording_sink.h"

namespace mqttlive {
namespace {

using namespace mqttlive::testing;
constexpr Micros kS = kMicrosPerSecond;
constexpr Micros kT0 = 1'700'000'000 * kS;
constexpr uint8_t kAckPsh = tcpflag::kAck | tcpflag::kPsh;

struct Rig {
  explicit Rig(const EngineConfig& cfg = EngineConfig{}) : engine(cfg, sink) {}
  void send(Micros ts, const Endpoint& src, const Endpoint& dst, uint32_t seq, uint32_t ack, uint8_t flags,
            const std::vector<uint8_t>& payload = {}) {
    engine.onFrame(ts, dlt::kEthernet, PcapWriter::buildFrame(dlt::kEthernet, src, dst, seq, ack, flags, payload));
  }
  std::vector<std::string> events(const std::string& type) const { return eventsOf(sink.lines, type); }
  RecordingSink sink;
  Engine engine;
};

const Endpoint kClient = v4("10.2.0.2", 50123);
const Endpoint kBroker = v4("10.2.0.1", 1883);

// Before the restart: CONNECT (keepalive 10, v5, id "sensor-7") at kT0, CONNACK,
// a PINGREQ at kT0 + 5 s. Returns the client's next sequence number.
uint32_t connectAndPing(Rig& rig, const std::string& id = "sensor-7", uint16_t keepalive = 10) {
  uint32_t c = 7000, b = 3000;
  rig.send(kT0, kClient, kBroker, c++, 0, tcpflag::kSyn);
  rig.send(kT0 + 10, kBroker, kClient, b++, c, tcpflag::kSyn | tcpflag::kAck);
  ConnectSpec spec;
  spec.client_id = id;
  spec.keepalive = keepalive;
  spec.protocol_level = kMqtt5;
  auto connect = encodeConnect(spec);
  rig.send(kT0 + 100, kClient, kBroker, c, b, kAckPsh, connect);
  c += static_cast<uint32_t>(connect.size());
  auto connack = encodeConnack(ConnackSpec{.protocol_level = kMqtt5});
  rig.send(kT0 + 200, kBroker, kClient, b, c, kAckPsh, connack);
  b += static_cast<uint32_t>(connack.size());
  rig.send(kT0 + 5 * kS, kClient, kBroker, c, b, kAckPsh, encodePingreq());
  return c + 2;
}

std::string tempPath() {
  char name[] = "/tmp/mqttlive-state-XXXXXX";
  const int fd = mkstemp(name);
  close(fd);
  unlink(name);
  return name;
}

std::string readAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void writeAll(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(StateFile, RoundTripKeepsEveryField) {
  Rig rig;
  connectAndPing(rig);
  SavedState s = snapshotState(rig.engine.tracker(), kT0 + 6 * kS);
  ASSERT_EQ(s.connections.size(), 1u);
  // Fields the tracker does not fill on this path, so they are checked too.
  ConnectionInfo& in = s.connections[0];
  in.client_real_known = true;
  in.client_real = v6("2001:db8::7", 4242);
  in.transport = Transport::kWebsocket;
  in.gaps = 3;
  in.client_id = std::string("quote\"nl\n\xff\x00z", 12);

  SavedState out;
  std::string error;
  ASSERT_TRUE(parseState(serializeState(s), out, error)) << error;
  EXPECT_EQ(out.saved_at, kT0 + 6 * kS);
  ASSERT_EQ(out.connections.size(), 1u);
  const ConnectionInfo& c = out.connections[0];
  EXPECT_EQ(c.client, kClient);
  EXPECT_EQ(c.broker, kBroker);
  EXPECT_EQ(c.client_id, in.client_id);
  EXPECT_TRUE(c.client_id_known);
  EXPECT_EQ(c.protocol_level, kMqtt5);
  EXPECT_TRUE(c.keepalive_known);
  EXPECT_EQ(c.keepalive, 10);
  EXPECT_EQ(c.keepalive_source, KeepaliveSource::kConnect);
  EXPECT_TRUE(c.keepalive_requested_known);
  EXPECT_EQ(c.keepalive_requested, 10);
  EXPECT_EQ(c.last_activity, kT0 + 5 * kS);
  EXPECT_EQ(c.deadline, kT0 + 20 * kS);
  EXPECT_EQ(c.state, ConnState::kActive);
  EXPECT_EQ(c.connected_at, kT0 + 200);
  EXPECT_TRUE(c.connected);
  EXPECT_EQ(c.opened_at, kT0);
  EXPECT_FALSE(c.midstream);
  EXPECT_TRUE(c.clean_start);
  EXPECT_TRUE(c.client_real_known);
  EXPECT_EQ(c.client_real, in.client_real);
  EXPECT_EQ(c.transport, Transport::kWebsocket);
  EXPECT_EQ(c.gaps, 3u);

  // Through the file: atomic write leaves no temp file, owner-only permissions.
  const std::string path = tempPath();
  ASSERT_TRUE(saveStateFile(path, s, error)) << error;
  EXPECT_NE(access((path + ".tmp").c_str(), F_OK), 0);
  struct stat st {};
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  SavedState loaded;
  ASSERT_TRUE(loadStateFile(path, kT0 + 7 * kS, 600 * kS, loaded, error)) << error;
  EXPECT_EQ(loaded.connections.size(), 1u);
  EXPECT_EQ(loaded.connections[0].client_id, in.client_id);
  unlink(path.c_str());
}

TEST(StateFile, ClosingConnectionsAreNotSaved) {
  Rig rig;
  const uint32_t c = connectAndPing(rig);
  rig.send(kT0 + 6 * kS, kClient, kBroker, c, 0, tcpflag::kFin | tcpflag::kAck);
  EXPECT_TRUE(snapshotState(rig.engine.tracker(), kT0 + 6 * kS).connections.empty());
}

TEST(StateFile, DamagedFilesAreRejectedWithTheirReason) {
  Rig rig;
  connectAndPing(rig);
  const std::string good = serializeState(snapshotState(rig.engine.tracker(), kT0));
  SavedState out;
  std::string error;

  EXPECT_FALSE(parseState("", out, error));
  EXPECT_EQ(error, "empty file");

  std::string bad = good;
  bad[0] = 'X';
  EXPECT_FALSE(parseState(bad, out, error));
  EXPECT_EQ(error, "bad magic");
  EXPECT_FALSE(parseState("{\"json\": true}\n", out, error));
  EXPECT_EQ(error, "bad magic");

  bad = good;
  bad[8] = 2;  // version 2
  EXPECT_FALSE(parseState(bad, out, error));
  EXPECT_EQ(error, "unsupported version 2");

  bad = good;
  bad[bad.size() - 3] ^= 0x20;  // inside the client id
  EXPECT_FALSE(parseState(bad, out, error));
  EXPECT_EQ(error, "checksum mismatch");
  bad = good;
  bad[20] ^= 0x01;  // saved_at
  EXPECT_FALSE(parseState(bad, out, error));
  EXPECT_EQ(error, "checksum mismatch");

  for (size_t len = 1; len < good.size(); ++len) {
    EXPECT_FALSE(parseState(good.substr(0, len), out, error)) << len;
    EXPECT_EQ(error, len < 8 ? "bad magic" : "truncated") << "cut at " << len;
    EXPECT_TRUE(out.connections.empty());
  }
  EXPECT_FALSE(parseState(good + "x", out, error));
  EXPECT_NE(error.find("checksum mismatch"), std::string::npos) << error;
}

TEST(StateFile, StaleFutureAndMissingFiles) {
  Rig rig;
  connectAndPing(rig);
  const std::string path = tempPath();
  std::string error;
  SavedState out;
  bool missing = false;
  EXPECT_FALSE(loadStateFile(path, kT0, 600 * kS, out, error, &missing));
  EXPECT_TRUE(missing);

  ASSERT_TRUE(saveStateFile(path, snapshotState(rig.engine.tracker(), kT0), error)) << error;
  EXPECT_FALSE(loadStateFile(path, kT0 + 700 * kS, 600 * kS, out, error, &missing));
  EXPECT_FALSE(missing);
  EXPECT_EQ(error, "stale: saved 700 s ago, more than state.max_age_seconds (600)");
  EXPECT_TRUE(out.connections.empty());
  EXPECT_TRUE(loadStateFile(path, kT0 + 600 * kS, 600 * kS, out, error)) << error;

  EXPECT_FALSE(loadStateFile(path, kT0 - 120 * kS, 600 * kS, out, error));
  EXPECT_EQ(error, "saved 120 s in the future (clock stepped back?)");

  writeAll(path, readAll(path).substr(0, 40));
  EXPECT_FALSE(loadStateFile(path, kT0, 600 * kS, out, error));
  EXPECT_EQ(error, "truncated");
  unlink(path.c_str());
}

// The point of it all: after the restart, the connection's next PINGREQ is
// judged against its restored keepalive. No midstream pickup, no inference.
TEST(StateFile, RestoredConnectionIsJudgedWithItsRestoredKeepalive) {
  SavedState saved;
  uint32_t cseq;
  {
    Rig before;
    cseq = connectAndPing(before);
    saved = snapshotState(before.engine.tracker(), kT0 + 6 * kS);
  }
  Rig after;
  EXPECT_EQ(restoreState(after.engine, saved, kT0 + 8 * kS), 1u);
  EXPECT_EQ(after.engine.openFlows(), 1u);
  EXPECT_EQ(after.engine.stats().restored, 1u);
  after.engine.advanceTo(kT0 + 12 * kS);
  EXPECT_TRUE(after.sink.lines.empty());  // deadline kT0 + 20 s not reached, nothing to say
  // The connection resumes mid-stream (from the TCP point of view).
  after.send(kT0 + 12 * kS, kClient, kBroker, cseq, 3005, kAckPsh, encodePingreq());
  after.send(kT0 + 12 * kS + 300, kBroker, kClient, 3005, cseq + 2, kAckPsh, encodePingresp());
  after.engine.advanceTo(kT0 + 40 * kS);
  EXPECT_TRUE(after.events("midstream").empty());
  EXPECT_TRUE(after.events("keepalive_learned").empty());
  auto exp = after.events("keepalive_expired");
  ASSERT_EQ(exp.size(), 1u) << (after.sink.lines.empty() ? "" : after.sink.lines[0]);
  EXPECT_EQ(field(exp[0], "ts"), "1700000027.000000");  // PINGREQ + 1.5 x 10 s
  EXPECT_EQ(field(exp[0], "client_id"), "\"sensor-7\"");
  EXPECT_EQ(field(exp[0], "keepalive_source"), "\"connect\"");
  EXPECT_EQ(field(exp[0], "uncertain"), "false");  // fresh activity since the restart
  EXPECT_EQ(after.engine.stats().mqtt_packets[0][static_cast<int>(PacketType::kPingreq)], 1u);
  EXPECT_EQ(after.engine.stats().mqtt_packets[1][static_cast<int>(PacketType::kPingresp)], 1u);
}

TEST(StateFile, DeadlinePassedWhileDownIsReportedUncertain) {
  Rig before;
  connectAndPing(before);
  SavedState saved = snapshotState(before.engine.tracker(), kT0 + 6 * kS);
  Rig after;
  ASSERT_EQ(restoreState(after.engine, saved, kT0 + 30 * kS), 1u);
  after.engine.advanceTo(kT0 + 30 * kS);
  auto exp = after.events("keepalive_expired");
  ASSERT_EQ(exp.size(), 1u);
  EXPECT_EQ(field(exp[0], "ts"), "1700000020.000000");
  EXPECT_EQ(field(exp[0], "uncertain"), "true");  // we were not watching
}

TEST(StateFile, ExpiredConnectionStaysExpiredWithoutASecondEvent) {
  Rig before;
  connectAndPing(before);
  before.engine.advanceTo(kT0 + 25 * kS);
  ASSERT_EQ(before.events("keepalive_expired").size(), 1u);
  SavedState saved = snapshotState(before.engine.tracker(), kT0 + 25 * kS);
  ASSERT_EQ(saved.connections[0].state, ConnState::kExpired);
  Rig after;
  ASSERT_EQ(restoreState(after.engine, saved, kT0 + 30 * kS), 1u);
  after.engine.advanceTo(kT0 + 100 * kS);
  EXPECT_TRUE(after.events("keepalive_expired").empty());
  EXPECT_EQ(after.engine.tracker().stateCounts()[static_cast<int>(ConnState::kExpired)], 1u);
  after.engine.finish(kT0 + 100 * kS);
  auto end = after.events("open_at_end");
  ASSERT_EQ(end.size(), 1u);
  EXPECT_EQ(field(end[0], "state"), "\"expired\"");
}

TEST(StateFile, RestoredClientIdStillDetectsTakeovers) {
  Rig before;
  connectAndPing(before);
  SavedState saved = snapshotState(before.engine.tracker(), kT0 + 6 * kS);
  Rig after;
  ASSERT_EQ(restoreState(after.engine, saved, kT0 + 8 * kS), 1u);
  const Endpoint other = v4("10.2.0.3", 50999);
  after.send(kT0 + 9 * kS, other, kBroker, 1, 0, tcpflag::kSyn);
  ConnectSpec spec;
  spec.client_id = "sensor-7";
  spec.protocol_level = kMqtt5;
  after.send(kT0 + 9 * kS + 100, other, kBroker, 2, 1, kAckPsh, encodeConnect(spec));
  auto t = after.events("takeover");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(field(t[0], "previous_client"), "\"10.2.0.2:50123\"");
}

TEST(StateFile, RestoreRespectsLimitsAndWatchedPorts) {
  Rig before;
  connectAndPing(before);
  SavedState saved = snapshotState(before.engine.tracker(), kT0 + 6 * kS);
  EngineConfig cfg;
  cfg.broker_ports = {8883};
  Rig elsewhere(cfg);
  EXPECT_EQ(restoreState(elsewhere.engine, saved, kT0 + 8 * kS), 0u);
  Rig twice;
  EXPECT_EQ(restoreState(twice.engine, saved, kT0 + 8 * kS), 1u);
  EXPECT_EQ(restoreState(twice.engine, saved, kT0 + 8 * kS), 0u);  // the flow exists
  EXPECT_EQ(twice.engine.openFlows(), 1u);
}

TEST(StateFile, RestoredConnectionThatNeverReturnsIsEvictedWhenIdle) {
  Rig before;
  connectAndPing(before);
  SavedState saved = snapshotState(before.engine.tracker(), kT0 + 6 * kS);
  EngineConfig cfg;
  cfg.idle_flow_timeout = 120 * kS;
  Rig after(cfg);
  ASSERT_EQ(restoreState(after.engine, saved, kT0 + 8 * kS), 1u);
  after.engine.advanceTo(kT0 + 127 * kS);
  EXPECT_EQ(after.engine.openFlows(), 1u);
  after.engine.advanceTo(kT0 + 128 * kS);
  EXPECT_EQ(after.engine.openFlows(), 0u);
  EXPECT_EQ(after.engine.tracker().openCount(), 0u);
  EXPECT_EQ(after.engine.stats().flows_evicted[static_cast<int>(EvictReason::kIdleTimeout)], 1u);
}

}  // namespace
}  // namespace mqttlive
