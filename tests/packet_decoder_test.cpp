#include "mqttlive/packet_decoder.h"

#include <gtest/gtest.h>

#include <cstring>
#include <iterator>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace mqttlive {
namespace {

using Bytes = std::vector<uint8_t>;

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void put32(Bytes& b, uint32_t v) {
  put16(b, static_cast<uint16_t>(v >> 16));
  put16(b, static_cast<uint16_t>(v));
}
void set16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}
Bytes cat(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
Bytes payloadOf(size_t n) {
  Bytes p(n);
  for (size_t i = 0; i < n; ++i) p[i] = static_cast<uint8_t>('a' + i % 26);
  return p;
}

struct TcpSpec {
  uint16_t sport = 51000;
  uint16_t dport = 1883;
  uint32_t seq = 0x11223344;
  uint32_t ack = 0x55667788;
  uint8_t flags = tcpflag::kAck | tcpflag::kPsh;
  uint16_t window = 0xfaf0;
  size_t option_bytes = 0;  // multiple of 4
};

Bytes tcp(const TcpSpec& s, const Bytes& payload) {
  Bytes b;
  put16(b, s.sport);
  put16(b, s.dport);
  put32(b, s.seq);
  put32(b, s.ack);
  b.push_back(static_cast<uint8_t>(((20 + s.option_bytes) / 4) << 4));
  b.push_back(s.flags);
  put16(b, s.window);
  put16(b, 0);                           // checksum: not verified
  put16(b, 0);                           // urgent
  b.insert(b.end(), s.option_bytes, 1);  // NOP options
  return cat(b, payload);
}

constexpr uint8_t kSrc4[4] = {10, 0, 0, 1};
constexpr uint8_t kDst4[4] = {192, 168, 1, 20};

Bytes ipv4(const Bytes& l4, uint8_t proto = 6, uint16_t frag = 0x4000 /* DF */, size_t option_bytes = 0) {
  Bytes b;
  const size_t hlen = 20 + option_bytes;
  b.push_back(static_cast<uint8_t>(0x40 | (hlen / 4)));
  b.push_back(0);
  put16(b, static_cast<uint16_t>(hlen + l4.size()));
  put16(b, 0x1234);
  put16(b, frag);
  b.push_back(64);
  b.push_back(proto);
  put16(b, 0);
  b.insert(b.end(), kSrc4, kSrc4 + 4);
  b.insert(b.end(), kDst4, kDst4 + 4);
  for (size_t i = 0; i < option_bytes; ++i) b.push_back(1);
  return cat(b, l4);
}

Bytes src6() {
  Bytes a(16, 0);
  a[0] = 0x20;
  a[1] = 0x01;
  a[2] = 0x0d;
  a[3] = 0xb8;
  a[15] = 1;
  return a;
}
Bytes dst6() {
  Bytes a = src6();
  a[15] = 2;
  return a;
}

struct Ext {
  uint8_t type;  // 0, 43, 60 (8-byte units), 51 (AH), 44 (fragment)
  size_t len;    // total bytes, multiple of 8 (AH: multiple of 4)
  uint16_t frag_field = 0;
};

Bytes ipv6(const Bytes& l4, uint8_t proto = 6, const std::vector<Ext>& exts = {}) {
  Bytes ext_bytes;
  for (size_t i = 0; i < exts.size(); ++i) {
    const Ext& e = exts[i];
    uint8_t next = i + 1 < exts.size() ? exts[i + 1].type : proto;
    Bytes h(e.len, 0);
    h[0] = next;
    if (e.type == 44) {
      set16(h, 2, e.frag_field);
    } else if (e.type == 51) {
      h[1] = static_cast<uint8_t>(e.len / 4 - 2);
    } else {
      h[1] = static_cast<uint8_t>(e.len / 8 - 1);
    }
    ext_bytes = cat(ext_bytes, h);
  }
  Bytes b;
  put32(b, 0x60000000);
  put16(b, static_cast<uint16_t>(ext_bytes.size() + l4.size()));
  b.push_back(exts.empty() ? proto : exts[0].type);
  b.push_back(64);
  b = cat(b, src6());
  b = cat(b, dst6());
  return cat(cat(b, ext_bytes), l4);
}

Bytes ethernet(uint16_t type, const Bytes& payload, const std::vector<uint16_t>& tags = {}) {
  Bytes b = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb};
  for (uint16_t tpid : tags) {
    put16(b, tpid);
    put16(b, 100);  // TCI: VLAN 100
  }
  put16(b, type);
  return cat(b, payload);
}

Bytes sll(uint16_t proto, const Bytes& payload) {
  Bytes b;
  put16(b, 0);  // packet type: to us
  put16(b, 1);  // ARPHRD_ETHER
  put16(b, 6);
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(i));
  put16(b, proto);
  return cat(b, payload);
}

Bytes sll2(uint16_t proto, const Bytes& payload) {
  Bytes b;
  put16(b, proto);
  put16(b, 0);  // reserved
  put32(b, 3);  // ifindex
  put16(b, 1);  // ARPHRD_ETHER
  b.push_back(0);
  b.push_back(6);
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<uint8_t>(i));
  return cat(b, payload);
}

Bytes bsdNull(uint32_t family, bool little_endian, const Bytes& payload) {
  Bytes b(4);
  for (int i = 0; i < 4; ++i) {
    int shift = little_endian ? 8 * i : 8 * (3 - i);
    b[i] = static_cast<uint8_t>(family >> shift);
  }
  return cat(b, payload);
}

// Decodes an exactly sized heap copy (so ASan sees any read past the end) that
// stays alive until the next call: seg.payload may point into it.
DecodeStatus decode(int link, const Bytes& frame, TcpSegment& seg) {
  static Bytes last;
  Bytes copy(frame);
  DecodeStatus st = decodePacket(link, copy, seg);
  if (st == DecodeStatus::kOk && !seg.payload.empty()) {
    EXPECT_GE(seg.payload.data(), copy.data());
    EXPECT_LE(seg.payload.data() + seg.payload.size(), copy.data() + copy.size());
  }
  last = std::move(copy);  // moving keeps the buffer, so the span stays valid
  return st;
}

void expectV4Segment(const TcpSegment& seg, const Bytes& payload, const TcpSpec& spec = {}) {
  uint8_t src_raw[4], dst_raw[4];
  std::memcpy(src_raw, kSrc4, 4);
  std::memcpy(dst_raw, kDst4, 4);
  EXPECT_EQ(seg.src.ip, IpAddr::fromV4(src_raw));
  EXPECT_EQ(seg.dst.ip, IpAddr::fromV4(dst_raw));
  EXPECT_TRUE(seg.src.ip.v4);
  EXPECT_EQ(seg.src.port, spec.sport);
  EXPECT_EQ(seg.dst.port, spec.dport);
  EXPECT_EQ(seg.seq, spec.seq);
  EXPECT_EQ(seg.ack, spec.ack);
  EXPECT_EQ(seg.window, spec.window);
  EXPECT_EQ(seg.flags, spec.flags);
  EXPECT_EQ(seg.payload_len, payload.size());
  EXPECT_EQ(Bytes(seg.payload.begin(), seg.payload.end()), payload);
}

void expectV6Segment(const TcpSegment& seg, const Bytes& payload) {
  EXPECT_EQ(seg.src.ip, IpAddr::fromV6(src6().data()));
  EXPECT_EQ(seg.dst.ip, IpAddr::fromV6(dst6().data()));
  EXPECT_FALSE(seg.src.ip.v4);
  EXPECT_EQ(seg.src.port, 51000);
  EXPECT_EQ(seg.dst.port, 1883);
  EXPECT_EQ(seg.payload_len, payload.size());
  EXPECT_EQ(Bytes(seg.payload.begin(), seg.payload.end()), payload);
}

TEST(PacketDecoder, EthernetIpv4) {
  TcpSpec spec;
  Bytes payload = payloadOf(37);
  TcpSegment seg;
  ASSERT_EQ(decode(dlt::kEthernet, ethernet(0x0800, ipv4(tcp(spec, payload))), seg), DecodeStatus::kOk);
  expectV4Segment(seg, payload, spec);
}

TEST(PacketDecoder, AllTcpFieldsAndOptions) {
  TcpSpec spec;
  spec.sport = 1883;
  spec.dport = 65535;
  spec.seq = 0xfffffffe;
  spec.ack = 1;
  spec.flags = 0xff;
  spec.window = 1;
  spec.option_bytes = 40;  // maximum data offset (15)
  Bytes payload = payloadOf(3);
  TcpSegment seg;
  ASSERT_EQ(decode(dlt::kIpv4, ipv4(tcp(spec, payload), 6, 0, 40), seg), DecodeStatus::kOk);
  expectV4Segment(seg, payload, spec);
}

TEST(PacketDecoder, EthernetPaddingIgnored) {
  Bytes payload = payloadOf(2);
  Bytes frame = ethernet(0x0800, ipv4(tcp({}, payload)));
  ASSERT_LT(frame.size(), 60u);
  frame.resize(60, 0xee);
  TcpSegment seg;
  ASSERT_EQ(decode(dlt::kEthernet, frame, seg), DecodeStatus::kOk);
  expectV4Segment(seg, payload);

  // A pure ACK: the padding must not show up as payload.
  Bytes ack_frame = ethernet(0x0800, ipv4(tcp({}, {})));
  ack_frame.resize(60, 0);
  ASSERT_EQ(decode(dlt::kEthernet, ack_frame, seg), DecodeStatus::kOk);
  EXPECT_EQ(seg.payload.size(), 0u);
  EXPECT_EQ(seg.payload_len, 0u);
}

TEST(PacketDecoder, VlanTags) {
  Bytes payload = payloadOf(10);
  Bytes ip = ipv4(tcp({}, payload));
  for (const std::vector<uint16_t>& tags : std::vector<std::vector<uint16_t>>{
           {0x8100}, {0x88a8, 0x8100}, {0x9100, 0x8100}, {0x88a8, 0x9100, 0x8100, 0x8100}}) {
    TcpSegment seg;
    ASSERT_EQ(decode(dlt::kEthernet, ethernet(0x0800, ip, tags), seg), DecodeStatus::kOk) << tags.size();
    expectV4Segment(seg, payload);
  }
  TcpSegment seg;
  Bytes v6payload = payloadOf(5);
  ASSERT_EQ(decode(dlt::kEthernet, ethernet(0x86dd, ipv6(tcp({}, v6payload)), {0x88a8, 0x8100}), seg),
            DecodeStatus::kOk);
  expectV6Segment(seg, v6payload);
  // A tagged non-IP frame.
  EXPECT_EQ(decode(dlt::kEthernet, ethernet(0x0806, Bytes(28, 0), {0x8100}), seg), DecodeStatus::kNotIp);
}

TEST(PacketDecoder, LinuxSll) {
  Bytes payload = payloadOf(9);
  TcpSegment seg;
  ASSERT_EQ(decode(dlt::kLinuxSll, sll(0x0800, ipv4(tcp({}, payload))), seg), DecodeStatus::kOk);
  expectV4Segment(seg, payload);
  ASSERT_EQ(decode(dlt::kLinuxSll, sll(0x86dd, ipv6(tcp({}, payload))), seg), DecodeStatus::kOk);
  expectV6Segment(seg, payload);
  // A VLAN tag left in the payload is walked like on Ethernet.
  Bytes tagged = {0x00, 0x64, 0x08, 0x00};
  ASSERT_EQ(decode(dlt::kLinuxSll, sll(0x8100, cat(tagged, ipv4(tcp({}, payload)))), seg), DecodeStatus::kOk);
  expectV4Segment(seg, payload);
  EXPECT_EQ(decode(dlt::kLinuxSll, sll(0x0806, Bytes(28, 0)), seg), DecodeStatus::kNotIp);
  EXPECT_EQ(decode(dlt::kLinuxSll, Bytes(15, 0), seg), DecodeStatus::kTruncatedLink);
}

TEST(PacketDecoder, LinuxSll2) {
  Bytes payload = payloadOf(9);
  TcpSegment seg;
  ASSERT_EQ(decode(dlt::kLinuxSll2, sll2(0x0800, ipv4(tcp({}, payload))), seg), DecodeStatus::kOk);
  expectV4Segment(seg, payload);
  ASSERT_EQ(decode(dlt::kLinuxSll2, sll2(0x86dd, ipv6(tcp({}, payload))), seg), DecodeStatus::kOk);
  expectV6Segment(seg, payload);
  EXPECT_EQ(decode(dlt::kLinuxSll2, sll2(0x0806, Bytes(28, 0)), seg), DecodeStatus::kNotIp);
  EXPECT_EQ(decode(dlt::kLinuxSll2, Bytes(19, 0), seg), DecodeStatus::kTruncatedLink);
}

TEST(PacketDecoder, BsdNullBothByteOrders) {
  Bytes payload = payloadOf(4);
  Bytes v4 = ipv4(tcp({}, payload));
  Bytes v6 = ipv6(tcp({}, payload));
  for (bool le : {true, false}) {
    for (int link : {dlt::kNull, dlt::kLoop}) {
      TcpSegment seg;
      ASSERT_EQ(decode(link, bsdNull(2, le, v4), seg), DecodeStatus::kOk) << le << link;
      expectV4Segment(seg, payload);
      for (uint32_t family : {24u, 28u, 30u}) {
        ASSERT_EQ(decode(link, bsdNull(family, le, v6), seg), DecodeStatus::kOk) << family;
        expectV6Segment(seg, payload);
      }
      EXPECT_EQ(decode(link, bsdNull(7, le, v4), seg), DecodeStatus::kNotIp);
      EXPECT_EQ(decode(link, Bytes(3, 0), seg), DecodeStatus::kTruncatedLink);
    }
  }
}

TEST(PacketDecoder, RawIp) {
  Bytes payload = payloadOf(6);
  Bytes v4 = ipv4(tcp({}, payload));
  Bytes v6 = ipv6(tcp({}, payload));
  for (int link : {dlt::kRaw, dlt::kRawAlt, dlt::kRawIp}) {
    TcpSegment seg;
    ASSERT_EQ(decode(link, v4, seg), DecodeStatus::kOk);
    expectV4Segment(seg, payload);
    ASSERT_EQ(decode(link, v6, seg), DecodeStatus::kOk);
    expectV6Segment(seg, payload);
    Bytes bad = v4;
    bad[0] = 0x55;
    EXPECT_EQ(decode(link, bad, seg), DecodeStatus::kNotIp);
    EXPECT_EQ(decode(link, {}, seg), DecodeStatus::kTruncatedIp);
  }
  TcpSegment seg;
  ASSERT_EQ(decode(dlt::kIpv4, v4, seg), DecodeStatus::kOk);
  expectV4Segment(seg, payload);
  ASSERT_EQ(decode(dlt::kIpv6, v6, seg), DecodeStatus::kOk);
  expectV6Segment(seg, payload);
  // The fixed-family links check the version.
  EXPECT_EQ(decode(dlt::kIpv4, v6, seg), DecodeStatus::kBadIpHeader);
  EXPECT_EQ(decode(dlt::kIpv6, cat(v4, Bytes(40, 0)), seg), DecodeStatus::kBadIpHeader);
}

TEST(PacketDecoder, Ipv6ExtensionHeaders) {
  Bytes payload = payloadOf(11);
  Bytes l4 = tcp({}, payload);
  TcpSegment seg;
  ASSERT_EQ(decode(dlt::kIpv6, ipv6(l4, 6, {{0, 8}}), seg), DecodeStatus::kOk);
  expectV6Segment(seg, payload);
  ASSERT_EQ(decode(dlt::kIpv6, ipv6(l4, 6, {{0, 16}, {43, 24}, {60, 8}, {51, 12}}), seg), DecodeStatus::kOk);
  expectV6Segment(seg, payload);
  // Atomic fragment (offset 0, M clear; reserved bits ignored).
  ASSERT_EQ(decode(dlt::kIpv6, ipv6(l4, 6, {{44, 8, 0x0006}}), seg), DecodeStatus::kOk);
  expectV6Segment(seg, payload);
  EXPECT_EQ(decode(dlt::kIpv6, ipv6(l4, 6, {{44, 8, 0x0001}}), seg), DecodeStatus::kIpFragment);
  EXPECT_EQ(decode(dlt::kIpv6, ipv6(l4, 6, {{60, 8}, {44, 8, 0x0008}}), seg), DecodeStatus::kIpFragment);
  EXPECT_EQ(decode(dlt::kIpv6, ipv6(l4, 17, {{0, 8}}), seg), DecodeStatus::kNotTcp);
  EXPECT_EQ(decode(dlt::kIpv6, ipv6(l4, 58), seg), DecodeStatus::kNotTcp);
  EXPECT_EQ(decode(dlt::kIpv6, ipv6({}, 59), seg), DecodeStatus::kNotTcp);

  // An extension header running past the declared payload is malformed.
  Bytes bad = ipv6(l4, 6, {{60, 8}});
  bad[41] = 200;
  EXPECT_EQ(decode(dlt::kIpv6, bad, seg), DecodeStatus::kBadIpHeader);
  Bytes short_payload = ipv6(l4, 6, {{60, 8}});
  set16(short_payload, 4, 4);
  EXPECT_EQ(decode(dlt::kIpv6, short_payload, seg), DecodeStatus::kBadIpHeader);
}

TEST(PacketDecoder, Ipv6TrailingBytesIgnored) {
  Bytes payload = payloadOf(3);
  TcpSegment seg;
  ASSERT_EQ(decode(dlt::kEthernet, ethernet(0x86dd, cat(ipv6(tcp({}, payload)), Bytes(7, 0xee))), seg),
            DecodeStatus::kOk);
  expectV6Segment(seg, payload);
}

TEST(PacketDecoder, EveryStatusReachable) {
  std::set<DecodeStatus> seen;
  TcpSegment seg;
  Bytes l4 = tcp({}, payloadOf(8));
  auto check = [&](int link, const Bytes& frame, DecodeStatus want) {
    EXPECT_EQ(decode(link, frame, seg), want) << toString(want);
    seen.insert(want);
  };
  check(dlt::kEthernet, ethernet(0x0800, ipv4(l4)), DecodeStatus::kOk);
  check(147, ipv4(l4), DecodeStatus::kUnsupportedLink);
  check(dlt::kEthernet, Bytes(13, 0), DecodeStatus::kTruncatedLink);
  check(dlt::kEthernet, ethernet(0x8100, {0x00}), DecodeStatus::kTruncatedLink);
  check(dlt::kEthernet, ethernet(0x0806, Bytes(28, 0)), DecodeStatus::kNotIp);
  check(dlt::kEthernet, ethernet(0x0800, Bytes(19, 0x45)), DecodeStatus::kTruncatedIp);
  check(dlt::kEthernet, ethernet(0x86dd, Bytes(39, 0x60)), DecodeStatus::kTruncatedIp);

  Bytes ihl = ipv4(l4);
  ihl[0] = 0x44;
  check(dlt::kIpv4, ihl, DecodeStatus::kBadIpHeader);
  Bytes total = ipv4(l4);
  set16(total, 2, 19);
  check(dlt::kIpv4, total, DecodeStatus::kBadIpHeader);
  Bytes options = ipv4(l4, 6, 0, 8);
  options.resize(24);  // ends inside the options
  check(dlt::kIpv4, options, DecodeStatus::kTruncatedIp);

  check(dlt::kIpv4, ipv4(l4, 6, 0x2000), DecodeStatus::kIpFragment);  // MF
  check(dlt::kIpv4, ipv4(l4, 6, 0x0010), DecodeStatus::kIpFragment);  // offset
  check(dlt::kIpv4, ipv4(l4, 6, 0x4000), DecodeStatus::kOk);          // DF only
  check(dlt::kIpv4, ipv4(l4, 17), DecodeStatus::kNotTcp);
  check(dlt::kIpv4, ipv4(l4, 17, 0x2000), DecodeStatus::kNotTcp);  // UDP fragments are not ours

  check(dlt::kIpv4, ipv4(Bytes(l4.begin(), l4.begin() + 19)), DecodeStatus::kBadTcpHeader);
  Bytes cut = ipv4(l4);
  cut.resize(20 + 19);
  check(dlt::kIpv4, cut, DecodeStatus::kTruncatedTcp);
  Bytes doff_small = l4;
  doff_small[12] = 0x40;
  check(dlt::kIpv4, ipv4(doff_small), DecodeStatus::kBadTcpHeader);
  Bytes doff_big = l4;
  doff_big[12] = 0xf0;  // 60 bytes > 28-byte segment
  check(dlt::kIpv4, ipv4(doff_big), DecodeStatus::kBadTcpHeader);
  TcpSpec opts;
  opts.option_bytes = 12;
  Bytes cut_opts = ipv4(tcp(opts, {}));
  cut_opts.resize(20 + 24);
  check(dlt::kIpv4, cut_opts, DecodeStatus::kTruncatedTcp);

  EXPECT_EQ(seen.size(), static_cast<size_t>(DecodeStatus::kCount));
}

TEST(PacketDecoder, StatusNames) {
  std::set<std::string> names;
  for (int i = 0; i < static_cast<int>(DecodeStatus::kCount); ++i) {
    std::string n = toString(static_cast<DecodeStatus>(i));
    EXPECT_NE(n, "unknown");
    for (char c : n) EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '_') << n;
    names.insert(n);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(DecodeStatus::kCount));
  EXPECT_STREQ(toString(DecodeStatus::kOk), "ok");
  EXPECT_STREQ(toString(DecodeStatus::kTruncatedIp), "truncated_ip");
  EXPECT_STREQ(toString(DecodeStatus::kBadTcpHeader), "bad_tcp_header");
  EXPECT_STREQ(toString(DecodeStatus::kIpFragment), "ip_fragment");
}

TEST(PacketDecoder, SnaplenCutPayload) {
  Bytes payload = payloadOf(100);
  Bytes frame = ethernet(0x0800, ipv4(tcp({}, payload)));
  frame.resize(14 + 20 + 20 + 30);
  TcpSegment seg;
  ASSERT_EQ(decode(dlt::kEthernet, frame, seg), DecodeStatus::kOk);
  EXPECT_EQ(seg.payload.size(), 30u);
  EXPECT_EQ(seg.payload_len, 100u);
  EXPECT_EQ(Bytes(seg.payload.begin(), seg.payload.end()), Bytes(payload.begin(), payload.begin() + 30));
}

struct PrefixCase {
  const char* name;
  int link;
  Bytes frame;
  size_t link_len;  // bytes before the IP header
  size_t ip_len;    // IP header incl. options / extension headers
  size_t tcp_len;
  size_t payload_len;
};

// Every prefix of a valid frame: the status must follow from where the cut
// falls, and an ok decode must report exactly the captured payload.
TEST(PacketDecoder, AllPrefixesConsistent) {
  TcpSpec opts;
  opts.option_bytes = 12;
  Bytes pl = payloadOf(23);
  std::vector<PrefixCase> cases = {
      {"eth4", dlt::kEthernet, ethernet(0x0800, ipv4(tcp({}, pl))), 14, 20, 20, 23},
      {"qinq4", dlt::kEthernet, ethernet(0x0800, ipv4(tcp(opts, pl), 6, 0, 8), {0x88a8, 0x8100}), 22, 28, 32,
       23},
      {"eth6ext", dlt::kEthernet, ethernet(0x86dd, ipv6(tcp({}, pl), 6, {{0, 8}, {60, 16}})), 14, 64, 20, 23},
      {"sll4", dlt::kLinuxSll, sll(0x0800, ipv4(tcp({}, pl))), 16, 20, 20, 23},
      {"sll2_6", dlt::kLinuxSll2, sll2(0x86dd, ipv6(tcp(opts, pl))), 20, 40, 32, 23},
      {"null_le", dlt::kNull, bsdNull(30, true, ipv6(tcp({}, pl))), 4, 40, 20, 23},
      {"null_be", dlt::kNull, bsdNull(2, false, ipv4(tcp({}, pl))), 4, 20, 20, 23},
      {"loop", dlt::kLoop, bsdNull(2, false, ipv4(tcp({}, pl))), 4, 20, 20, 23},
      {"raw6", dlt::kRawIp, ipv6(tcp({}, pl), 6, {{44, 8}}), 0, 48, 20, 23},
      {"ipv4", dlt::kIpv4, ipv4(tcp({}, pl)), 0, 20, 20, 23},
  };
  for (const PrefixCase& c : cases) {
    ASSERT_EQ(c.frame.size(), c.link_len + c.ip_len + c.tcp_len + c.payload_len) << c.name;
    for (size_t len = 0; len <= c.frame.size(); ++len) {
      Bytes prefix(c.frame.begin(), c.frame.begin() + static_cast<ptrdiff_t>(len));
      TcpSegment seg;
      DecodeStatus st = decode(c.link, prefix, seg);
      DecodeStatus want;
      if (len < c.link_len) {
        want = DecodeStatus::kTruncatedLink;
      } else if (len < c.link_len + c.ip_len) {
        want = DecodeStatus::kTruncatedIp;
      } else if (len < c.link_len + c.ip_len + c.tcp_len) {
        want = DecodeStatus::kTruncatedTcp;
      } else {
        want = DecodeStatus::kOk;
      }
      ASSERT_EQ(st, want) << c.name << " len=" << len << " got " << toString(st);
      if (st == DecodeStatus::kOk) {
        EXPECT_EQ(seg.payload.size(), len - (c.link_len + c.ip_len + c.tcp_len)) << c.name;
        EXPECT_EQ(seg.payload_len, c.payload_len) << c.name;
      }
    }
  }
}

// Random frames and single-byte mutations of valid ones: never crash (run
// under ASan), and any ok result is self-consistent.
TEST(PacketDecoder, FuzzNeverReadsOutOfBounds) {
  std::mt19937 rng(12345);
  Bytes pl = payloadOf(40);
  std::vector<std::pair<int, Bytes>> seeds = {
      {dlt::kEthernet, ethernet(0x0800, ipv4(tcp({}, pl), 6, 0, 4), {0x8100})},
      {dlt::kEthernet, ethernet(0x86dd, ipv6(tcp({}, pl), 6, {{0, 8}, {51, 12}, {44, 8}}))},
      {dlt::kLinuxSll, sll(0x86dd, ipv6(tcp({}, pl)))},
      {dlt::kLinuxSll2, sll2(0x0800, ipv4(tcp({}, pl)))},
      {dlt::kNull, bsdNull(24, true, ipv6(tcp({}, pl)))},
      {dlt::kRawIp, ipv4(tcp({}, pl))},
  };
  const int links[] = {dlt::kNull, dlt::kEthernet, dlt::kRaw,  dlt::kRawAlt, dlt::kRawIp,
                       dlt::kLoop, dlt::kLinuxSll, dlt::kIpv4, dlt::kIpv6,   dlt::kLinuxSll2};
  int ok = 0;
  for (int iter = 0; iter < 200000; ++iter) {
    int link;
    Bytes frame;
    if (iter % 4 == 0) {
      link = links[rng() % std::size(links)];
      frame.resize(rng() % 120);
      for (uint8_t& b : frame) b = static_cast<uint8_t>(rng());
    } else {
      const auto& s = seeds[rng() % seeds.size()];
      link = s.first;
      frame = s.second;
      int mutations = 1 + static_cast<int>(rng() % 3);
      for (int m = 0; m < mutations; ++m) frame[rng() % frame.size()] = static_cast<uint8_t>(rng());
      if (rng() % 3 == 0) frame.resize(rng() % (frame.size() + 1));
    }
    TcpSegment seg;
    DecodeStatus st = decode(link, frame, seg);
    ASSERT_LT(static_cast<int>(st), static_cast<int>(DecodeStatus::kCount));
    if (st == DecodeStatus::kOk) {
      ++ok;
      ASSERT_LE(seg.payload.size(), seg.payload_len);
    }
  }
  EXPECT_GT(ok, 1000);
}

TEST(Endpoint, FormatAndParse) {
  uint8_t v4raw[4] = {1, 2, 3, 4};
  Endpoint e;
  e.ip = IpAddr::fromV4(v4raw);
  e.port = 1883;
  EXPECT_EQ(formatEndpoint(e), "1.2.3.4:1883");
  Endpoint back;
  ASSERT_TRUE(parseEndpoint("1.2.3.4:1883", back));
  EXPECT_EQ(back, e);

  uint8_t v6raw[16] = {};
  v6raw[15] = 1;
  Endpoint e6;
  e6.ip = IpAddr::fromV6(v6raw);
  e6.port = 8883;
  EXPECT_EQ(formatEndpoint(e6), "[::1]:8883");
  ASSERT_TRUE(parseEndpoint("[::1]:8883", back));
  EXPECT_EQ(back, e6);

  Endpoint full;
  full.ip = IpAddr::fromV6(src6().data());
  full.port = 0;
  EXPECT_EQ(formatEndpoint(full), "[2001:db8::1]:0");
  ASSERT_TRUE(parseEndpoint(formatEndpoint(full), back));
  EXPECT_EQ(back, full);
  ASSERT_TRUE(parseEndpoint("255.255.255.255:65535", back));
  EXPECT_EQ(formatEndpoint(back), "255.255.255.255:65535");

  // A v4-mapped literal in brackets stays an IPv6 endpoint.
  ASSERT_TRUE(parseEndpoint("[::ffff:1.2.3.4]:1883", back));
  EXPECT_FALSE(back.ip.v4);
  EXPECT_FALSE(back == e);
}

TEST(Endpoint, ParseRejectsJunk) {
  Endpoint out;
  out.port = 42;
  const char* const kBad[] = {"",
                              ":",
                              "1.2.3.4",
                              "1.2.3.4:",
                              ":1883",
                              "1.2.3:1883",
                              "1.2.3.4:65536",
                              "1.2.3.4:-1",
                              "1.2.3.4:+1",
                              "1.2.3.4:18x3",
                              "1.2.3.4:1883 ",
                              " 1.2.3.4:1883",
                              "::1:1883",
                              "[::1]",
                              "[::1]:",
                              "[::1]1883",
                              "[::1:1883",
                              "[]:1",
                              "[1.2.3.4]:1",
                              "[::g]:1",
                              "host:1883",
                              "1.2.3.4:123456",
                              "[::1]:1:2"};
  for (const char* bad : kBad) {
    EXPECT_FALSE(parseEndpoint(bad, out)) << bad;
  }
  EXPECT_FALSE(parseEndpoint(std::string("1.2.3.4\0:1", 10), out));
  EXPECT_EQ(out.port, 42);  // untouched on failure
}

}  // namespace
}  // namespace mqttlive
