// PROXY protocol v1/v2 header parser: crafted headers in any chunking.
#include "mqttlive/proxy_protocol.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mqttlive {
namespace {

using Bytes = std::vector<uint8_t>;
Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

struct Outcome {
  ProxyHeaderParser::Result result = ProxyHeaderParser::Result::kNeedMore;
  Bytes rest;  // what the next stage receives: kept() on failure + the remaining bytes
  bool has_source = false;
  bool malformed = false;
  bool local = false;
  std::string source;
};

Outcome run(const Bytes& b, size_t piece) {
  ProxyHeaderParser p;
  Outcome o;
  size_t off = 0;
  for (; off < b.size(); off += piece) {
    const size_t k = std::min(piece, b.size() - off);
    size_t used = 0;
    o.result = p.feed(std::span<const uint8_t>(b.data() + off, k), used);
    if (o.result == ProxyHeaderParser::Result::kNeedMore) continue;
    if (o.result == ProxyHeaderParser::Result::kFailed) o.rest.assign(p.kept().begin(), p.kept().end());
    o.rest.insert(o.rest.end(), b.begin() + static_cast<long>(off + used), b.end());
    break;
  }
  o.has_source = p.hasSource();
  o.malformed = p.malformed();
  o.local = p.local();
  if (o.has_source) o.source = formatEndpoint(p.source());
  return o;
}

Bytes v2(uint8_t ver_cmd, uint8_t family, const Bytes& addrs, const Bytes& tlvs = {}) {
  Bytes h = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, ver_cmd, family};
  const size_t len = addrs.size() + tlvs.size();
  h.push_back(static_cast<uint8_t>(len >> 8));
  h.push_back(static_cast<uint8_t>(len));
  h.insert(h.end(), addrs.begin(), addrs.end());
  h.insert(h.end(), tlvs.begin(), tlvs.end());
  return h;
}

const Bytes kConnect = {0x10, 0x0c, 0x00, 0x04, 'M', 'Q', 'T', 'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00};

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(ProxyProtocol, V1Tcp4AndTcp6) {
  for (size_t piece : {size_t{1}, size_t{5}, size_t{1000}}) {
    SCOPED_TRACE(piece);
    auto o = run(text("PROXY TCP4 198.51.100.7 10.0.0.5 41234 1883\r\n") + kConnect, piece);
    EXPECT_EQ(o.result, ProxyHeaderParser::Result::kDone);
    EXPECT_TRUE(o.has_source);
    EXPECT_FALSE(o.malformed);
    EXPECT_EQ(o.source, "198.51.100.7:41234");
    EXPECT_EQ(o.rest, kConnect);

    auto six = run(text("PROXY TCP6 2001:db8::7 2001:db8::1 50000 8883\r\n") + kConnect, piece);
    EXPECT_EQ(six.source, "[2001:db8::7]:50000");
    EXPECT_EQ(six.rest, kConnect);
  }
  auto unknown = run(text("PROXY UNKNOWN\r\n") + kConnect, 3);
  EXPECT_EQ(unknown.result, ProxyHeaderParser::Result::kDone);
  EXPECT_FALSE(unknown.has_source);
  EXPECT_FALSE(unknown.malformed);
  EXPECT_TRUE(unknown.local);
  EXPECT_EQ(unknown.rest, kConnect);
}

TEST(ProxyProtocol, V1Malformed) {
  for (const char* line : {"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1883\r\n", "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
                           "PROXY TCP9 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
                           "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"}) {
    SCOPED_TRACE(line);
    auto o = run(text(line) + kConnect, 4);
    EXPECT_EQ(o.result, ProxyHeaderParser::Result::kDone);
    EXPECT_TRUE(o.malformed);
    EXPECT_FALSE(o.has_source);
    EXPECT_EQ(o.rest, kConnect);
  }
  // No end of line within 107 bytes: not a header.
  auto longline = run(text("PROXY " + std::string(200, 'x')), 10);
  EXPECT_EQ(longline.result, ProxyHeaderParser::Result::kFailed);
}

TEST(ProxyProtocol, V2Inet4Inet6AndTlvs) {
  const Bytes a4 = {198, 51, 100, 7, 10, 0, 0, 5, 0xa1, 0x12, 0x07, 0x5b};
  for (size_t piece : {size_t{1}, size_t{7}, size_t{1000}}) {
    SCOPED_TRACE(piece);
    auto o = run(v2(0x21, 0x11, a4) + kConnect, piece);
    EXPECT_EQ(o.result, ProxyHeaderParser::Result::kDone);
    EXPECT_EQ(o.source, "198.51.100.7:41234");
    EXPECT_EQ(o.rest, kConnect);

    // TLVs (e.g. AWS VPC endpoint id) after the addresses are skipped.
    Bytes tlvs = {0xEA, 0x00, 0x20};
    tlvs.insert(tlvs.end(), 32, 'v');
    tlvs = tlvs + Bytes{0x04, 0x01, 0x00} + Bytes(256, 0x00);
    auto t = run(v2(0x21, 0x11, a4, tlvs) + kConnect, piece);
    EXPECT_EQ(t.source, "198.51.100.7:41234");
    EXPECT_EQ(t.rest, kConnect);
  }
  Bytes a6(36, 0);
  a6[0] = 0x20, a6[1] = 0x01, a6[2] = 0x0d, a6[3] = 0xb8, a6[15] = 7;
  a6[16] = 0x20, a6[17] = 0x01, a6[18] = 0x0d, a6[19] = 0xb8, a6[31] = 1;
  a6[32] = 0xc3, a6[33] = 0x50, a6[34] = 0x22, a6[35] = 0xb3;
  auto six = run(v2(0x21, 0x21, a6) + kConnect, 5);
  EXPECT_EQ(six.source, "[2001:db8::7]:50000");
  EXPECT_EQ(six.rest, kConnect);
}

TEST(ProxyProtocol, V2LocalAndOtherFamiliesCarryNoAddress) {
  auto local = run(v2(0x20, 0x00, {}) + kConnect, 3);
  EXPECT_EQ(local.result, ProxyHeaderParser::Result::kDone);
  EXPECT_FALSE(local.has_source);
  EXPECT_FALSE(local.malformed);
  EXPECT_TRUE(local.local);
  EXPECT_EQ(local.rest, kConnect);
  // HAProxy's health check: LOCAL with a CRC32C TLV (check-send-proxy, proxy-v2-options crc32c).
  auto check = run(v2(0x20, 0x00, {}, Bytes{0x03, 0x00, 0x04, 0xa9, 0xb8, 0x7e, 0x8f}), 7);
  EXPECT_EQ(check.result, ProxyHeaderParser::Result::kDone);
  EXPECT_TRUE(check.local);
  EXPECT_FALSE(check.malformed);
  EXPECT_TRUE(check.rest.empty());
  auto unix_ = run(v2(0x21, 0x31, Bytes(216, 'u')) + kConnect, 50);
  EXPECT_FALSE(unix_.has_source);
  EXPECT_FALSE(unix_.local);  // a relayed client, only without a TCP address
  EXPECT_FALSE(unix_.malformed);
  EXPECT_EQ(unix_.rest, kConnect);
  auto short4 = run(v2(0x21, 0x11, Bytes(4, 1)) + kConnect, 50);
  EXPECT_TRUE(short4.malformed);
  EXPECT_EQ(short4.rest, kConnect);
}

TEST(ProxyProtocol, NoHeaderReplaysTheBytes) {
  // A client that reached the broker directly: everything goes on unchanged.
  for (size_t piece : {size_t{1}, size_t{3}, size_t{100}}) {
    SCOPED_TRACE(piece);
    auto o = run(kConnect, piece);
    EXPECT_EQ(o.result, ProxyHeaderParser::Result::kFailed);
    EXPECT_EQ(o.rest, kConnect);
    auto http = run(text("GET /mqtt HTTP/1.1\r\n"), piece);
    EXPECT_EQ(http.result, ProxyHeaderParser::Result::kFailed);
    EXPECT_EQ(http.rest, text("GET /mqtt HTTP/1.1\r\n"));
    // Starts like a header, then is not one.
    auto almost = run(text("PROXX TCP4\r\n"), piece);
    EXPECT_EQ(almost.result, ProxyHeaderParser::Result::kFailed);
    EXPECT_EQ(almost.rest, text("PROXX TCP4\r\n"));
    Bytes sig_bad = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0B, 0x21};
    auto v2bad = run(sig_bad, piece);
    EXPECT_EQ(v2bad.result, ProxyHeaderParser::Result::kFailed);
    EXPECT_EQ(v2bad.rest, sig_bad);
    Bytes ver_bad = v2(0x11, 0x11, Bytes(12, 0));
    auto v2ver = run(ver_bad, piece);
    EXPECT_EQ(v2ver.result, ProxyHeaderParser::Result::kFailed);
    EXPECT_EQ(v2ver.rest, ver_bad);
  }
}

}  // namespace
}  // namespace mqttlive
