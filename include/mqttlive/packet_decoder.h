// Stage 2: link + IP + TCP header decode. Pure function over one captured
// frame; no allocation, no state. Anything that is not a usable TCP segment
// gets a named status that the caller counts.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "mqttlive/types.h"

namespace mqttlive {

// libpcap DLT_* values we accept (numeric so this header needs no pcap.h).
namespace dlt {
constexpr int kNull = 0;         // BSD loopback, host byte order family
constexpr int kEthernet = 1;     // incl. 802.1Q / 802.1ad (QinQ) tags
constexpr int kRaw = 12;         // raw IP on some BSDs
constexpr int kRawAlt = 14;      // raw IP (OpenBSD value)
constexpr int kRawIp = 101;      // LINKTYPE_RAW
constexpr int kLoop = 108;       // OpenBSD loopback, network byte order family
constexpr int kLinuxSll = 113;   // Linux cooked v1 ("any" interface)
constexpr int kIpv4 = 228;
constexpr int kIpv6 = 229;
constexpr int kLinuxSll2 = 276;  // Linux cooked v2
}  // namespace dlt

enum class DecodeStatus : uint8_t {
  kOk = 0,
  kUnsupportedLink,   // DLT we do not decode
  kTruncatedLink,     // frame shorter than its link header
  kNotIp,             // ARP, LLDP, ...
  kTruncatedIp,       // captured bytes end inside the IP header
  kBadIpHeader,       // version/IHL/length inconsistent
  kIpFragment,        // non-first or more-fragments: not reassembled
  kNotTcp,            // UDP, ICMP, ...
  kTruncatedTcp,      // captured bytes end inside the TCP header
  kBadTcpHeader,      // data offset < 5 or beyond the segment
  kCount
};
// snake_case name used in events and metric labels, e.g. "truncated_ip".
const char* toString(DecodeStatus s);

namespace tcpflag {
constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kPsh = 0x08, kAck = 0x10;
}

struct TcpSegment {
  Endpoint src;
  Endpoint dst;
  uint32_t seq = 0;
  uint32_t ack = 0;
  uint16_t window = 0;
  uint8_t flags = 0;
  // Payload bytes actually captured (may be shorter than payload_len when the
  // snaplen cut the frame); points into the caller's frame buffer.
  std::span<const uint8_t> payload;
  // Payload length the IP header says was on the wire. The difference to
  // payload.size() is data we never saw: the reassembler turns it into a gap.
  uint32_t payload_len = 0;
};

// Everything decodePacket() does; decodePacket() handles the usual frame
// inline and calls this for the rest.
DecodeStatus decodePacketGeneral(int link_type, std::span<const uint8_t> frame, TcpSegment& out);

namespace detail {
constexpr uint16_t kEtherIpv4 = 0x0800;
constexpr uint8_t kProtoTcp = 6;
// Writes an endpoint straight into `out` with one 16-byte store for the
// address and one 4-byte store for the family flag and port. The engine reads
// these fields back at once (flow key copy and hash) with wide loads; building
// an IpAddr in a temporary and copying it, or filling it with narrow stores,
// made each of those loads wait for the stores to drain (a store-forwarding
// stall per field). That was most of the decode time and a good part of the
// flow lookup.
inline void storeEndpoint(Endpoint& e, const uint8_t* addr, bool v4, uint16_t port) {
#if defined(__SSE2__)
  __m128i v;
  if (v4) {
    uint32_t a;
    std::memcpy(&a, addr, 4);
    // ::ffff:a.b.c.d -> bytes 10..11 = 0xff, bytes 12..15 = the address.
    v = _mm_or_si128(_mm_slli_si128(_mm_cvtsi32_si128(static_cast<int>(a)), 12),
                     _mm_set_epi32(0, static_cast<int>(0xffff0000u), 0, 0));
  } else {
    v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(addr));
  }
  _mm_storeu_si128(reinterpret_cast<__m128i*>(e.ip.bytes), v);
#else
  if (v4) {
    std::memset(e.ip.bytes, 0, 10);
    e.ip.bytes[10] = 0xff;
    e.ip.bytes[11] = 0xff;
    std::memcpy(e.ip.bytes + 12, addr, 4);
  } else {
    std::memcpy(e.ip.bytes, addr, 16);
  }
#endif
  if constexpr (std::endian::native == std::endian::little && offsetof(Endpoint, ip) == 0 &&
                offsetof(IpAddr, v4) == 16 && offsetof(IpAddr, zero_) == 17 && offsetof(Endpoint, port) == 18 &&
                sizeof(bool) == 1) {
    // v4 flag (byte 16), IpAddr::zero_ (byte 17), port (bytes 18..19).
    const uint32_t tail = uint32_t{v4} | (uint32_t{port} << 16);
    std::memcpy(reinterpret_cast<unsigned char*>(&e) + 16, &tail, 4);
  } else {
    e.ip.v4 = v4;
    e.port = port;
  }
}
}  // namespace detail

// Inline: called for every captured frame.
inline DecodeStatus decodePacket(int link_type, std::span<const uint8_t> frame, TcpSegment& out) {
  // Nearly every frame is Ethernet, IPv4 without options, no fragment, TCP,
  // both headers captured and sound: decoded here with the checks of the
  // general path folded together. Anything else, errors included, goes
  // the general way, so statuses are unchanged.
  const uint8_t* f = frame.data();
  if (link_type == dlt::kEthernet && frame.size() >= 14 + 20 + 20 && loadBe16(f + 12) == detail::kEtherIpv4 &&
      f[14] == 0x45 && f[14 + 9] == detail::kProtoTcp && (loadBe16(f + 14 + 6) & 0x3fff) == 0) {
    const size_t total = loadBe16(f + 14 + 2);
    const size_t ip_end = std::min(total, frame.size() - 14);  // captured part of the IP packet
    const uint8_t* tcp = f + 14 + 20;
    const size_t hlen = size_t{static_cast<uint8_t>(tcp[12] >> 4)} * 4;
    if (total >= 40 && hlen >= 20 && hlen + 20 <= ip_end) {  // ip_end <= total: hlen fits the declared too
      detail::storeEndpoint(out.src, f + 14 + 12, true, loadBe16(tcp));
      detail::storeEndpoint(out.dst, f + 14 + 16, true, loadBe16(tcp + 2));
      out.seq = loadBe32(tcp + 4);
      out.ack = loadBe32(tcp + 8);
      out.flags = tcp[13];
      out.window = loadBe16(tcp + 14);
      out.payload = frame.subspan(14 + 20 + hlen, ip_end - 20 - hlen);
      out.payload_len = static_cast<uint32_t>(total - 20 - hlen);
      return DecodeStatus::kOk;
    }
  }

  return decodePacketGeneral(link_type, frame, out);
}

}  // namespace mqttlive
