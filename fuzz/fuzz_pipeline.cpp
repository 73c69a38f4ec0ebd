// libFuzzer target: the whole data path after capture (Engine::onFrame ->
// decode -> flow table -> reassembly -> MQTT decoder -> tracker), with every
// event formatted as JSON.
//
// Two input shapes:
//  - a pcap or pcapng file (recognised by its magic): read with libpcap from
//    memory, each frame copied to exactly its length so that ASan sees any
//    read past it (`mqttlive --read` reads classic pcap records itself; that
//    reader is checked against libpcap by fuzz_savefile);
//  - otherwise a script: byte 0 = configuration knobs, then records
//      op & 3 == 0: a TCP segment between a few fixed endpoints, built with
//                   PcapWriter::buildFrame (seq/ack/flags/payload from the input)
//      op & 3 == 1: a raw frame for link type kLinks[(op >> 2) % N]
//      op & 3 == 2: time moves forward without a packet (advanceTo)
//      op & 3 == 3: capture drops, or a reconfiguration
//    fuzz/corpus_gen turns every capture into such a script too.
//
// Invariants checked after every step: open flows <= max_flows, tracker
// connections <= flows, buffered bytes <= the global budget; after finish()
// nothing is buffered. Every JSON line must be valid UTF-8 without raw control
// characters (a hostile client id must not break the event stream).
#include <pcap/pcap.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mqttlive/capture.h"
#include "mqttlive/engine.h"
#include "mqttlive/json_events.h"
#include "mqttlive/packet_decoder.h"
#include "mqttlive/pcap_writer.h"

using namespace mqttlive;

namespace {

constexpr int kLinks[] = {dlt::kEthernet, dlt::kRawIp, dlt::kLinuxSll, dlt::kLinuxSll2, dlt::kNull,
                          dlt::kLoop,     dlt::kIpv4,  dlt::kIpv6,     dlt::kRaw,       147 /* unsupported */};
constexpr int kNumLinks = sizeof(kLinks) / sizeof(kLinks[0]);
constexpr Micros kT0 = 1'700'000'000LL * kMicrosPerSecond;

bool validJsonLine(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t n = (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    i += n;
  }
  return !s.empty() && s.front() == '{' && s.back() == '}';
}

struct FormattingSink : EventSink {
  std::string line;
  void onEvent(const Event& e) override {
    line.clear();
    JsonEventWriter::format(line, e);
    if (!validJsonLine(line)) std::abort();
    if (e.conn == nullptr) std::abort();
  }
};

struct Input {
  const uint8_t* p;
  size_t n;
  size_t i = 0;
  bool empty() const { return i >= n; }
  uint8_t u8() { return i < n ? p[i++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>((u8() << 8) | u8()); }
  uint32_t u32() { return (uint32_t{u16()} << 16) | u16(); }
  std::vector<uint8_t> bytes(size_t len) {
    len = std::min(len, n - std::min(i, n));
    std::vector<uint8_t> out(p + i, p + i + len);
    i += len;
    return out;
  }
};

Endpoint ep4(uint8_t last, uint16_t port) {
  const uint8_t a[4] = {10, 0, 0, last};
  return Endpoint{IpAddr::fromV4(a), port};
}
Endpoint ep6(uint8_t last, uint16_t port) {
  uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8};
  a[15] = last;
  return Endpoint{IpAddr::fromV6(a), port};
}

EngineConfig configFor(uint8_t knobs) {
  EngineConfig cfg;
  cfg.broker_ports = {1883, 8883};
  cfg.max_flows = (knobs & 1) ? 4 : 64;
  cfg.tracker.max_connections = (knobs & 8) ? 3 : 64;
  cfg.idle_flow_timeout = (knobs & 2) ? 30 * kMicrosPerSecond : 0;
  cfg.flow_buffer_bytes = (knobs & 4) ? 512 : 64 << 10;
  cfg.total_buffer_bytes = (knobs & 4) ? 1024 : 1 << 20;
  cfg.mqtt.max_packet_size = (knobs & 16) ? 100 : 1 << 20;
  cfg.close_settle = (knobs & 32) ? 1 : 2 * kMicrosPerSecond;
  cfg.tracker.keepalive_factor = (knobs & 64) ? 1.0 : 1.5;
  cfg.tracker.no_keepalive_idle = 60 * kMicrosPerSecond;
  return cfg;
}

// A reload may lower a limit below what is already in use; from then on the
// usage must not grow while it is over the limit.
struct Checker {
  const EngineConfig& cfg;
  size_t flows = 0;
  uint64_t buffered = 0;
  void operator()(const Engine& e) {
    if (e.openFlows() > cfg.max_flows && e.openFlows() > flows) std::abort();
    // Every tracked connection has its flow (a bare SYN's flow has no connection yet).
    if (e.tracker().openCount() > e.openFlows()) std::abort();
    if (e.bufferedBytes() > cfg.total_buffer_bytes && e.bufferedBytes() > buffered) std::abort();
    flows = e.openFlows();
    buffered = e.bufferedBytes();
  }
};

void runPcap(const uint8_t* data, size_t size) {
  std::FILE* f = fmemopen(const_cast<uint8_t*>(data), size, "rb");
  if (f == nullptr) return;
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, err);
  if (p == nullptr) {
    std::fclose(f);
    return;
  }
  EngineConfig cfg = configFor(0);
  FormattingSink sink;
  Engine engine(cfg, sink);
  Checker check{cfg};
  const int link = pcap_datalink(p);
  Micros last = 0;
  for (int frames = 0; frames < 100000; ++frames) {
    pcap_pkthdr* h = nullptr;
    const u_char* bytes = nullptr;
    const int rc = pcap_next_ex(p, &h, &bytes);
    if (rc != 1) break;
    Micros ts = pcapTime(h, /*nano=*/true);  // as PcapCapture reads it
    if (ts < last) ts = last;
    last = ts;
    // A heap copy of exactly caplen bytes: reads past the frame are ASan reports.
    std::vector<uint8_t> frame(bytes, bytes + h->caplen);
    engine.onFrame(ts, link, frame);
    check(engine);
  }
  engine.finish(last);
  check(engine);
  if (engine.bufferedBytes() != 0) std::abort();
  pcap_close(p);  // closes f
}

void runScript(const uint8_t* data, size_t size) {
  Input in{data, size};
  const uint8_t knobs = in.u8();
  EngineConfig cfg = configFor(knobs);
  FormattingSink sink;
  Engine engine(cfg, sink);
  Checker check{cfg};
  const Endpoint clients[4] = {ep4(2, 40000), ep4(3, 40001), ep6(2, 40000), ep4(2, 40002)};
  const Endpoint brokers[4] = {ep4(1, 1883), ep4(1, 8883), ep6(1, 1883), ep4(1, 9999)};
  // Per (client, broker, direction): the last sequence number used, so that
  // most segments land near the stream instead of at random offsets.
  uint32_t next_seq[4][4][2] = {};
  Micros now = kT0;
  int ops = 0;
  while (!in.empty() && ops++ < 4096) {
    const uint8_t op = in.u8();
    switch (op & 3) {
      case 0: {
        const uint8_t sel = in.u8();
        const int ci = sel & 3, bi = (sel >> 2) & 3;
        const bool from_broker = (sel & 0x10) != 0;
        const uint8_t flags = in.u8();
        uint32_t& seq = next_seq[ci][bi][from_broker ? 1 : 0];
        const uint32_t s = (op & 4) ? in.u32() : seq + static_cast<int16_t>(in.u16()) % 64;
        uint32_t& oseq = next_seq[ci][bi][from_broker ? 0 : 1];
        const uint32_t ack = (op & 8) ? in.u32() : oseq;
        const size_t len = (op & 16) ? in.u16() % 4096 : in.u8();
        std::vector<uint8_t> payload = in.bytes(len);
        now += (op & 32) ? in.u16() * 1000LL : in.u8();
        const Endpoint& c = clients[ci];
        const Endpoint& b = brokers[bi];
        // An IPv6 client talking to an IPv4 broker cannot be built: use the broker's family.
        const Endpoint src = from_broker ? b : (c.ip.v4 == b.ip.v4 ? c : (b.ip.v4 ? ep4(9, c.port) : ep6(9, c.port)));
        const Endpoint dst = from_broker ? (c.ip.v4 == b.ip.v4 ? c : (b.ip.v4 ? ep4(9, c.port) : ep6(9, c.port))) : b;
        auto frame = PcapWriter::buildFrame(dlt::kEthernet, src, dst, s, ack, flags, payload);
        engine.onFrame(now, dlt::kEthernet, frame);
        seq = s + static_cast<uint32_t>(payload.size()) + ((flags & (tcpflag::kSyn | tcpflag::kFin)) ? 1 : 0);
        break;
      }
      case 1: {
        const int link = kLinks[(op >> 2) % kNumLinks];
        const size_t len = in.u16() % 2048;
        now += in.u16();
        std::vector<uint8_t> frame = in.bytes(len);
        engine.onFrame(now, link, frame);
        break;
      }
      case 2:
        now += static_cast<Micros>(in.u32()) * ((op & 4) ? 1000 : 1);
        engine.advanceTo(now);
        break;
      case 3:
        if (op & 4) {
          engine.onCaptureDrops(in.u8());
        } else {
          // Reload with other limits (SIGHUP): must keep every invariant.
          cfg = configFor(in.u8());
          engine.reconfigure(cfg);
        }
        break;
    }
    check(engine);
  }
  engine.finish(now);
  check(engine);
  if (engine.bufferedBytes() != 0) std::abort();
}

bool isCaptureFile(const uint8_t* d, size_t n) {
  if (n < 4) return false;
  const uint32_t m = (uint32_t{d[0]} << 24) | (uint32_t{d[1]} << 16) | (uint32_t{d[2]} << 8) | d[3];
  return m == 0xa1b2c3d4 || m == 0xd4c3b2a1 || m == 0xa1b23c4d || m == 0x4d3cb2a1 || m == 0x0a0d0d0a;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (isCaptureFile(data, size))
    runPcap(data, size);
  else
    runScript(data, size);
  return 0;
}
