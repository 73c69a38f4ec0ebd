// Helpers shared by the benchmark programs: a streaming pcap writer, an
// allocation-free Ethernet/IPv4/TCP frame builder, deterministic addresses for
// synthetic clients, and process memory figures. Bench code only.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "mqttlive/packet_decoder.h"
#include "mqttlive/types.h"

namespace mqttlive::bench {

// Client i of a synthetic population: its own loopback-range IPv4 address
// (127.1.0.0 upward, so 16M clients fit and replaying onto `lo` never names a
// foreign host) and a source port that changes with each reconnect.
inline Endpoint clientEndpoint(uint32_t i, uint32_t generation = 0) {
  Endpoint e;
  const uint32_t a = (127u << 24) + (1u << 16) + i;
  const uint8_t b[4] = {static_cast<uint8_t>(a >> 24), static_cast<uint8_t>(a >> 16), static_cast<uint8_t>(a >> 8),
                        static_cast<uint8_t>(a)};
  e.ip = IpAddr::fromV4(b);
  e.port = static_cast<uint16_t>(20000 + (i * 7 + generation * 1031) % 40000);
  return e;
}

inline Endpoint v4Endpoint(uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port) {
  const uint8_t ip[4] = {a, b, c, d};
  Endpoint e;
  e.ip = IpAddr::fromV4(ip);
  e.port = port;
  return e;
}

// Builds Ethernet II + IPv4 + TCP (with the 12-byte timestamp option real
// stacks send) into a caller buffer; returns the frame length. Checksums are
// filled in so that tshark does not flag the frames.
class FrameBuilder {
 public:
  static constexpr size_t kHeaderBytes = 14 + 20 + 32;

  size_t build(uint8_t* out, const Endpoint& src, const Endpoint& dst, uint32_t seq, uint32_t ack, uint8_t flags,
               const uint8_t* payload, size_t len, uint32_t tsval) {
    // Destination MAC is not lo's all-zero address: frames replayed onto `lo`
    // are seen by packet taps (the capture) but dropped by the IP stack.
    static const uint8_t kMacs[12] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
    std::memcpy(out, kMacs, 12);
    out[12] = 0x08;
    out[13] = 0x00;
    uint8_t* ip = out + 14;
    const size_t tcp_len = 32 + len;
    const size_t total = 20 + tcp_len;
    ip[0] = 0x45;
    ip[1] = 0;
    put16(ip + 2, static_cast<uint16_t>(total));
    put16(ip + 4, ip_id_++);
    put16(ip + 6, 0x4000);
    ip[8] = 64;
    ip[9] = 6;
    put16(ip + 10, 0);
    std::memcpy(ip + 12, src.ip.bytes + 12, 4);
    std::memcpy(ip + 16, dst.ip.bytes + 12, 4);
    put16(ip + 10, fold(sum(ip, 20, 0)));
    uint8_t* tcp = ip + 20;
    put16(tcp, src.port);
    put16(tcp + 2, dst.port);
    put32(tcp + 4, seq);
    put32(tcp + 8, (flags & tcpflag::kAck) ? ack : 0);
    tcp[12] = 8 << 4;  // 32-byte header
    tcp[13] = flags;
    put16(tcp + 14, 502);
    put16(tcp + 16, 0);
    put16(tcp + 18, 0);
    // NOP NOP TS(kind 8, len 10, tsval, tsecr)
    tcp[20] = 1;
    tcp[21] = 1;
    tcp[22] = 8;
    tcp[23] = 10;
    put32(tcp + 24, tsval);
    put32(tcp + 28, tsval - 1);
    if (len > 0) std::memcpy(tcp + 32, payload, len);
    uint32_t s = 0;
    s = sum(ip + 12, 8, s);
    s += 6;
    s += static_cast<uint32_t>(tcp_len);
    s = sum(tcp, tcp_len, s);
    put16(tcp + 16, fold(s));
    return 14 + total;
  }

 private:
  static void put16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v >> 8);
    p[1] = static_cast<uint8_t>(v);
  }
  static void put32(uint8_t* p, uint32_t v) {
    put16(p, static_cast<uint16_t>(v >> 16));
    put16(p + 2, static_cast<uint16_t>(v));
  }
  static uint32_t sum(const uint8_t* p, size_t n, uint32_t s) {
    size_t i = 0;
    for (; i + 1 < n; i += 2) s += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
    if (n & 1) s += static_cast<uint32_t>(p[n - 1] << 8);
    return s;
  }
  static uint16_t fold(uint32_t s) {
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(~s);
  }
  uint16_t ip_id_ = 1;
};

// Classic pcap (microsecond, Ethernet) written record by record through a large
// stdio buffer, so a capture of any size needs constant memory.
class StreamingPcapWriter {
 public:
  bool open(const std::string& path, uint32_t snaplen = 262144) {
    fp_ = std::fopen(path.c_str(), "wb");
    if (fp_ == nullptr) return false;
    buf_.resize(4 << 20);
    std::setvbuf(fp_, buf_.data(), _IOFBF, buf_.size());
    const uint32_t hdr[6] = {0xa1b2c3d4u, 2u | (4u << 16), 0, 0, snaplen, 1 /* DLT_EN10MB */};
    return std::fwrite(hdr, sizeof(hdr), 1, fp_) == 1;
  }
  // Timestamps never run backwards in the file, as in a real capture.
  void write(Micros ts, const uint8_t* frame, size_t len) {
    if (ts < last_) ts = last_;
    last_ = ts;
    const uint32_t rec[4] = {static_cast<uint32_t>(ts / kMicrosPerSecond),
                             static_cast<uint32_t>(ts % kMicrosPerSecond), static_cast<uint32_t>(len),
                             static_cast<uint32_t>(len)};
    ok_ = ok_ && std::fwrite(rec, sizeof(rec), 1, fp_) == 1 && std::fwrite(frame, len, 1, fp_) == 1;
    ++frames_;
    bytes_ += sizeof(rec) + len;
  }
  bool close() {
    if (fp_ == nullptr) return false;
    const bool ok = std::fclose(fp_) == 0 && ok_;
    fp_ = nullptr;
    return ok;
  }
  uint64_t frames() const { return frames_; }
  uint64_t bytes() const { return bytes_; }
  Micros lastTs() const { return last_; }

 private:
  std::FILE* fp_ = nullptr;
  std::vector<char> buf_;
  bool ok_ = true;
  Micros last_ = 0;
  uint64_t frames_ = 0;
  uint64_t bytes_ = 24;
};

// Resident set size of this process in bytes (VmRSS), 0 if unknown.
inline uint64_t rssBytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// SplitMix64: small, fast, fully deterministic across platforms.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n).
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
  // Uniform in [lo, hi].
  int64_t range(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo + 1))); }
  bool chance(double p) { return static_cast<double>(next() >> 11) * 0x1.0p-53 < p; }

 private:
  uint64_t s_;
};

}  // namespace mqttlive::bench
