// Seed corpora for the fuzz targets, made from real captures:
//   corpus_gen OUT_DIR capture...
// writes
//   OUT_DIR/pipeline/<capture>          the capture file itself
//   OUT_DIR/pipeline/<capture>.script   its frames as a fuzz_pipeline script (raw-frame records)
//   OUT_DIR/decoder/<capture>-<n>       each TCP connection's reassembled payload, both
//                                       directions interleaved as captured (fuzz_mqtt_decoder format)
//   OUT_DIR/reassembly/<capture>-<n>    each connection's segments as a fuzz_reassembly script
// Built from the same sources as the fuzz targets; never part of the product.
#include <pcap/pcap.h>
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "mqttlive/packet_decoder.h"
#include "mqttlive/tcp_reassembly.h"

using namespace mqttlive;

namespace {

constexpr int kLinks[] = {1, 101, 113, 276, 0, 108, 228, 229, 12};  // fuzz_pipeline's kLinks order

bool isBrokerPort(uint16_t p) { return p == 1883 || p == 8883 || p == 1884 || p == 8884; }

void put16(std::vector<uint8_t>& o, uint32_t v) {
  o.push_back(static_cast<uint8_t>(v >> 8));
  o.push_back(static_cast<uint8_t>(v));
}
void put32(std::vector<uint8_t>& o, uint32_t v) {
  put16(o, v >> 16);
  put16(o, v & 0xffff);
}

bool writeFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(f);
}

std::string baseName(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// One connection: the decoder seed (records) and the reassembly script.
struct Conn {
  StreamReassembler reasm[2];
  bool gap_pending[2] = {false, false};
  std::vector<uint8_t> decoder{0x00};  // level unknown, learn from CONNECT
  std::vector<uint8_t> reassembly;
  bool have_isn = false;
  uint32_t isn = 0;
  int records = 0;
};

struct Recorder : ReassemblySink {
  Conn* c = nullptr;
  int side = 0;
  void onData(Micros, std::span<const uint8_t> bytes) override {
    for (size_t off = 0; off < bytes.size() && c->records < 2000;) {
      const size_t n = std::min<size_t>(bytes.size() - off, 4096);
      uint8_t tag = static_cast<uint8_t>((side ? 0x80 : 0) | (c->gap_pending[side] ? 0x40 : 0));
      c->gap_pending[side] = false;
      if (n < 63) {
        c->decoder.push_back(static_cast<uint8_t>(tag | n));
      } else {
        c->decoder.push_back(static_cast<uint8_t>(tag | 63));
        put16(c->decoder, static_cast<uint32_t>(n));
      }
      c->decoder.insert(c->decoder.end(), bytes.begin() + static_cast<long>(off),
                        bytes.begin() + static_cast<long>(off + n));
      off += n;
      ++c->records;
    }
  }
  void onGap(Micros, uint64_t, GapReason) override { c->gap_pending[side] = true; }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OUT_DIR capture...\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  for (const char* d : {"", "/pipeline", "/decoder", "/reassembly"}) mkdir((out + d).c_str(), 0755);
  int written = 0;
  for (int a = 2; a < argc; ++a) {
    const std::string path = argv[a];
    const std::string name = baseName(path);
    char err[PCAP_ERRBUF_SIZE] = {};
    pcap_t* p = pcap_open_offline(path.c_str(), err);
    if (p == nullptr) {
      std::fprintf(stderr, "corpus_gen: skipping %s: %s\n", path.c_str(), err);
      continue;
    }
    {
      std::ifstream in(path, std::ios::binary);
      std::vector<uint8_t> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (raw.size() <= 64 * 1024) written += writeFile(out + "/pipeline/" + name, raw);
    }
    const int link = pcap_datalink(p);
    uint8_t link_index = 0xff;
    for (uint8_t i = 0; i < sizeof(kLinks) / sizeof(kLinks[0]); ++i)
      if (kLinks[i] == link) link_index = i;
    std::vector<uint8_t> script{0x00};
    std::map<std::tuple<std::string, uint16_t, std::string, uint16_t>, Conn> conns;
    ReassemblyBudget budget;
    ReassemblyStats stats;
    Recorder rec;
    Micros last = 0;
    pcap_pkthdr* h = nullptr;
    const u_char* bytes = nullptr;
    while (pcap_next_ex(p, &h, &bytes) == 1) {
      const Micros ts = static_cast<Micros>(h->ts.tv_sec) * kMicrosPerSecond + h->ts.tv_usec;
      if (link_index != 0xff && h->caplen < 2048 && script.size() < 60000) {
        script.push_back(static_cast<uint8_t>(1 | (link_index << 2)));
        put16(script, h->caplen);
        put16(script, static_cast<uint32_t>(std::min<Micros>(std::max<Micros>(ts - last, 0), 65535)));
        script.insert(script.end(), bytes, bytes + h->caplen);
      }
      last = ts;
      TcpSegment seg;
      if (decodePacket(link, std::span<const uint8_t>(bytes, h->caplen), seg) != DecodeStatus::kOk) continue;
      const bool to_broker = isBrokerPort(seg.dst.port) || (!isBrokerPort(seg.src.port) && seg.dst.port < seg.src.port);
      const Endpoint& c = to_broker ? seg.src : seg.dst;
      const Endpoint& b = to_broker ? seg.dst : seg.src;
      Conn& conn = conns[{formatEndpoint(c), c.port, formatEndpoint(b), b.port}];
      const int side = to_broker ? 0 : 1;
      rec.c = &conn;
      rec.side = side;
      const bool syn = seg.flags & tcpflag::kSyn;
      const bool fin = seg.flags & tcpflag::kFin;
      if (side == 1 && (seg.flags & tcpflag::kAck) && conn.reasm[0].started()) {
        rec.side = 0;
        conn.reasm[0].onPeerAck(ts, seg.ack, rec, budget);
        rec.side = side;
      }
      conn.reasm[side].onSegment(ts, seg.seq, syn, fin, seg.payload, seg.payload_len, rec, budget, 1 << 20, stats);
      // Reassembly script: client stream only (stream 0), offsets from its first sequence number.
      if (side == 0 && conn.reassembly.size() < 20000) {
        if (!conn.have_isn) {
          conn.have_isn = true;
          conn.isn = seg.seq;
          put16(conn.reassembly, 4096);  // global budget
          put16(conn.reassembly, 2048);  // per-stream cap
          conn.reassembly.push_back(0);  // consistent contents
          put32(conn.reassembly, seg.seq);
        }
        const uint32_t off = seg.seq - conn.isn;
        conn.reassembly.push_back(0x00);  // segment on stream 0
        conn.reassembly.push_back(1);     // ts step
        const uint8_t flags = static_cast<uint8_t>((syn ? 1 : 0) | (fin ? 2 : 0) | (off >= 8192 ? 0x80 : 0) |
                                                   (seg.payload.size() < seg.payload_len ? 4 : 0));
        conn.reassembly.push_back(flags);
        if (off >= 8192)
          put32(conn.reassembly, off);
        else
          put16(conn.reassembly, off);
        put16(conn.reassembly, std::min<uint32_t>(seg.payload_len, 2999));
        if (flags & 4) put16(conn.reassembly, static_cast<uint32_t>(seg.payload.size()));
      }
    }
    pcap_close(p);
    if (script.size() > 1) written += writeFile(out + "/pipeline/" + name + ".script", script);
    int n = 0;
    for (auto& [key, conn] : conns) {
      for (int s = 0; s < 2; ++s) {
        rec.c = &conn;
        rec.side = s;
        conn.reasm[s].flush(last, rec, budget);
      }
      if (conn.decoder.size() > 1) written += writeFile(out + "/decoder/" + name + "-" + std::to_string(n), conn.decoder);
      if (conn.reassembly.size() > 9)
        written += writeFile(out + "/reassembly/" + name + "-" + std::to_string(n), conn.reassembly);
      ++n;
    }
  }
  std::printf("corpus_gen: %d seed files in %s\n", written, out.c_str());
  return written > 0 ? 0 : 1;
}
