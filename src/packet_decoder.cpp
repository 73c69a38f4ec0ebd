#include "mqttlive/packet_decoder.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mqttlive {

const char* toString(DecodeStatus s) {
  switch (s) {
    case DecodeStatus::kOk:
      return "ok";
    case DecodeStatus::kUnsupportedLink:
      return "unsupported_link";
    case DecodeStatus::kTruncatedLink:
      return "truncated_link";
    case DecodeStatus::kNotIp:
      return "not_ip";
    case DecodeStatus::kTruncatedIp:
      return "truncated_ip";
    case DecodeStatus::kBadIpHeader:
      return "bad_ip_header";
    case DecodeStatus::kIpFragment:
      return "ip_fragment";
    case DecodeStatus::kNotTcp:
      return "not_tcp";
    case DecodeStatus::kTruncatedTcp:
      return "truncated_tcp";
    case DecodeStatus::kBadTcpHeader:
      return "bad_tcp_header";
    case DecodeStatus::kCount:
      break;
  }
  return "unknown";
}

namespace {

using detail::kEtherIpv4;
constexpr uint16_t kEtherIpv6 = 0x86dd;
constexpr uint16_t kEtherVlan = 0x8100;
constexpr uint16_t kEtherQinQ = 0x88a8;
constexpr uint16_t kEtherQinQOld = 0x9100;

using detail::kProtoTcp;

enum class Net : uint8_t { kNone, kV4, kV6 };

inline uint32_t le32(const uint8_t* p) {
  return (uint32_t{p[3]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[1]} << 8) | uint32_t{p[0]};
}

// Ethertype (after any VLAN tags) to network layer. `off` points at the
// ethertype field; on success it is moved to the first network byte.
DecodeStatus fromEthertype(std::span<const uint8_t> f, size_t& off, Net& net) {
  if (f.size() < off + 2) return DecodeStatus::kTruncatedLink;
  uint16_t type = loadBe16(f.data() + off);
  // Each tag is 4 bytes (TPID already read + TCI + inner type), so the loop
  // is bounded by the frame length.
  while (type == kEtherVlan || type == kEtherQinQ || type == kEtherQinQOld) {
    if (f.size() < off + 6) return DecodeStatus::kTruncatedLink;
    off += 4;
    type = loadBe16(f.data() + off);
  }
  off += 2;
  if (type == kEtherIpv4) {
    net = Net::kV4;
  } else if (type == kEtherIpv6) {
    net = Net::kV6;
  } else {
    return DecodeStatus::kNotIp;
  }
  return DecodeStatus::kOk;
}

// BSD address family values for IPv6 differ per OS (24 NetBSD/OpenBSD,
// 28 FreeBSD, 30 macOS); IPv4 is 2 everywhere.
Net fromFamily(uint32_t family) {
  if (family == 2) return Net::kV4;
  if (family == 24 || family == 28 || family == 30) return Net::kV6;
  return Net::kNone;
}

DecodeStatus fromVersionNibble(std::span<const uint8_t> f, size_t off, Net& net) {
  // No link header to be short of: an empty frame is an empty IP header.
  if (f.size() <= off) return DecodeStatus::kTruncatedIp;
  uint8_t version = f[off] >> 4;
  if (version == 4) {
    net = Net::kV4;
  } else if (version == 6) {
    net = Net::kV6;
  } else {
    return DecodeStatus::kNotIp;
  }
  return DecodeStatus::kOk;
}

DecodeStatus decodeLink(int link_type, std::span<const uint8_t> f, size_t& off, Net& net) {
  switch (link_type) {
    case dlt::kEthernet:
      if (f.size() < 14) return DecodeStatus::kTruncatedLink;
      off = 12;
      return fromEthertype(f, off, net);
    case dlt::kLinuxSll:
      if (f.size() < 16) return DecodeStatus::kTruncatedLink;
      off = 14;
      return fromEthertype(f, off, net);
    case dlt::kLinuxSll2: {
      if (f.size() < 20) return DecodeStatus::kTruncatedLink;
      // The protocol field leads the 20-byte header; VLAN tags are reported
      // out of band in SLL2, so no tag walk here.
      const uint16_t type = loadBe16(f.data());
      if (type == kEtherIpv4) {
        net = Net::kV4;
      } else if (type == kEtherIpv6) {
        net = Net::kV6;
      } else {
        return DecodeStatus::kNotIp;
      }
      off = 20;
      return DecodeStatus::kOk;
    }
    case dlt::kNull:
    case dlt::kLoop: {
      if (f.size() < 4) return DecodeStatus::kTruncatedLink;
      // NULL is in the capturing host's byte order, which the reader may not
      // share; the valid families are small, so one reading is always
      // unambiguous. LOOP is specified big-endian but accepting both is free.
      net = fromFamily(le32(f.data()));
      if (net == Net::kNone) net = fromFamily(loadBe32(f.data()));
      if (net == Net::kNone) return DecodeStatus::kNotIp;
      off = 4;
      return DecodeStatus::kOk;
    }
    case dlt::kRaw:
    case dlt::kRawAlt:
    case dlt::kRawIp:
      off = 0;
      return fromVersionNibble(f, 0, net);
    case dlt::kIpv4:
      off = 0;
      net = Net::kV4;
      return DecodeStatus::kOk;
    case dlt::kIpv6:
      off = 0;
      net = Net::kV6;
      return DecodeStatus::kOk;
    default:
      return DecodeStatus::kUnsupportedLink;
  }
}

// Where the TCP header starts and how far the segment extends, both as
// absolute frame offsets: `captured_end` is what we have, `declared_end`
// what the IP header says was sent.
struct L4 {
  size_t start = 0;
  size_t captured_end = 0;
  size_t declared_end = 0;
  // Source and destination address bytes in the frame (4 or 16 each).
  const uint8_t* src = nullptr;
  const uint8_t* dst = nullptr;
  bool v4 = false;
};

DecodeStatus decodeIpv4(std::span<const uint8_t> f, size_t off, L4& l4) {
  const size_t avail = f.size() - off;
  if (avail < 20) return DecodeStatus::kTruncatedIp;
  const uint8_t* ip = f.data() + off;
  if ((ip[0] >> 4) != 4) return DecodeStatus::kBadIpHeader;
  const size_t hlen = size_t{ip[0] & 0x0fu} * 4;
  if (hlen < 20) return DecodeStatus::kBadIpHeader;
  const size_t total = loadBe16(ip + 2);
  if (total < hlen) return DecodeStatus::kBadIpHeader;
  if (avail < hlen) return DecodeStatus::kTruncatedIp;
  // Checked before the fragment bits so that ip_fragment counts only TCP
  // data we lose, not the UDP fragments that are common on the same link.
  if (ip[9] != kProtoTcp) return DecodeStatus::kNotTcp;
  const uint16_t frag = loadBe16(ip + 6);
  if ((frag & 0x2000) != 0 || (frag & 0x1fff) != 0) return DecodeStatus::kIpFragment;
  l4.src = ip + 12;
  l4.dst = ip + 16;
  l4.v4 = true;
  l4.start = off + hlen;
  l4.declared_end = off + total;
  // Ethernet pads short frames to 60 bytes: anything past total length is not ours.
  l4.captured_end = off + std::min(total, avail);
  return DecodeStatus::kOk;
}

DecodeStatus decodeIpv6(std::span<const uint8_t> f, size_t off, L4& l4) {
  const size_t avail = f.size() - off;
  if (avail < 40) return DecodeStatus::kTruncatedIp;
  const uint8_t* ip = f.data() + off;
  if ((ip[0] >> 4) != 6) return DecodeStatus::kBadIpHeader;
  const size_t declared_end = off + 40 + loadBe16(ip + 4);
  const size_t captured_end = std::min(declared_end, f.size());
  uint8_t next = ip[6];
  size_t pos = off + 40;
  // Every extension header is at least 8 bytes, so this terminates.
  for (;;) {
    size_t ext_len = 0;
    switch (next) {
      case kProtoTcp:
        l4.src = ip + 8;
        l4.dst = ip + 24;
        l4.v4 = false;
        l4.start = pos;
        l4.declared_end = declared_end;
        l4.captured_end = captured_end;
        return DecodeStatus::kOk;
      case 0:   // hop-by-hop options
      case 43:  // routing
      case 60:  // destination options
      case 44:  // fragment
      case 51:  // authentication header
        break;
      default:
        return DecodeStatus::kNotTcp;
    }
    if (pos + 8 > declared_end) return DecodeStatus::kBadIpHeader;
    if (pos + 8 > captured_end) return DecodeStatus::kTruncatedIp;
    const uint8_t* h = f.data() + pos;
    if (next == 44) {
      // Offset 0 with M clear is an atomic fragment (RFC 6946): a whole packet.
      if ((loadBe16(h + 2) & 0xfff9u) != 0) return DecodeStatus::kIpFragment;
      ext_len = 8;
    } else if (next == 51) {
      ext_len = (size_t{h[1]} + 2) * 4;
    } else {
      ext_len = (size_t{h[1]} + 1) * 8;
    }
    if (pos + ext_len > declared_end) return DecodeStatus::kBadIpHeader;
    if (pos + ext_len > captured_end) return DecodeStatus::kTruncatedIp;
    next = h[0];
    pos += ext_len;
  }
}

}  // namespace

DecodeStatus decodePacketGeneral(int link_type, std::span<const uint8_t> frame, TcpSegment& out) {
  size_t off = 0;
  Net net = Net::kNone;
  DecodeStatus st = decodeLink(link_type, frame, off, net);
  if (st != DecodeStatus::kOk) return st;

  L4 l4;
  st = net == Net::kV4 ? decodeIpv4(frame, off, l4) : decodeIpv6(frame, off, l4);
  if (st != DecodeStatus::kOk) return st;

  // The IP layer guarantees start <= declared_end; captured_end may be below start.
  const size_t declared = l4.declared_end - l4.start;
  const size_t captured = l4.captured_end > l4.start ? l4.captured_end - l4.start : 0;
  // A header that cannot fit in the declared segment is malformed no matter
  // how much was captured; checking it first keeps the status independent of snaplen.
  if (declared < 20) return DecodeStatus::kBadTcpHeader;
  if (captured < 20) return DecodeStatus::kTruncatedTcp;
  const uint8_t* tcp = frame.data() + l4.start;
  const size_t hlen = size_t{static_cast<uint8_t>(tcp[12] >> 4)} * 4;
  if (hlen < 20 || hlen > declared) return DecodeStatus::kBadTcpHeader;
  if (hlen > captured) return DecodeStatus::kTruncatedTcp;

  // `out` is written only on success, field by field (see detail::storeEndpoint).
  detail::storeEndpoint(out.src, l4.src, l4.v4, loadBe16(tcp));
  detail::storeEndpoint(out.dst, l4.dst, l4.v4, loadBe16(tcp + 2));
  out.seq = loadBe32(tcp + 4);
  out.ack = loadBe32(tcp + 8);
  out.flags = tcp[13];
  out.window = loadBe16(tcp + 14);
  out.payload = frame.subspan(l4.start + hlen, captured - hlen);
  out.payload_len = static_cast<uint32_t>(declared - hlen);
  return DecodeStatus::kOk;
}

}  // namespace mqttlive
