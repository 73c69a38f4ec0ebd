// Stage 2: link + IP + TCP header decode. Pure function over one captured
// frame; no allocation, no state. Anything that is not a usable TCP segment
// gets a named status that the caller counts.
#pragma once

#include <cstdint>
#include <span>

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

DecodeStatus decodePacket(int link_type, std::span<const uint8_t> frame, TcpSegment& out);

}  // namespace mqttlive
