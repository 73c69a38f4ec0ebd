#include "mqttlive/proxy_protocol.h"

#include <arpa/inet.h>

#include <cstring>
#include <string_view>

namespace mqttlive {

const char* toString(ProxyError e) {
  switch (e) {
    case ProxyError::kBadHeader: return "proxy_bad_header";
    case ProxyError::kCount: break;
  }
  return "unknown";
}

namespace {

constexpr char kV1Prefix[] = "PROXY ";
constexpr size_t kV1PrefixLen = 6;
constexpr size_t kV1MaxLine = 107;  // spec: the longest TCP6 line, CRLF included
constexpr uint8_t kV2Sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr size_t kV2Preamble = 16;

bool parsePortText(std::string_view s, uint16_t& out) {
  if (s.empty() || s.size() > 5) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return false;
  out = static_cast<uint16_t>(v);
  return true;
}

bool parseAddrText(std::string_view s, bool v6, IpAddr& out) {
  char buf[64];
  if (s.empty() || s.size() >= sizeof buf) return false;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  uint8_t raw[16];
  if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, raw) != 1) return false;
  out = v6 ? IpAddr::fromV6(raw) : IpAddr::fromV4(raw);
  return true;
}

}  // namespace

ProxyHeaderParser::Result ProxyHeaderParser::fail(size_t at, size_t& consumed) {
  consumed = at;
  return Result::kFailed;
}

ProxyHeaderParser::Result ProxyHeaderParser::feed(std::span<const uint8_t> bytes, size_t& consumed) {
  consumed = bytes.size();
  for (size_t i = 0; i < bytes.size(); ++i) {
    const uint8_t b = bytes[i];
    if (version_ == 0) {
      if (b == 'P') {
        version_ = 1;
      } else if (b == kV2Sig[0]) {
        version_ = 2;
      } else {
        return fail(i, consumed);
      }
    }
    if (version_ == 1) {
      if (len_ < kV1PrefixLen && b != static_cast<uint8_t>(kV1Prefix[len_])) return fail(i, consumed);
      if (len_ >= kV1MaxLine) return fail(i, consumed);
      buf_[len_++] = b;
      if (b == '\n') {
        malformed_ = !parseV1();
        consumed = i + 1;
        return Result::kDone;
      }
      continue;
    }
    // v2: 12-byte signature, version/command, family/protocol, 2-byte length, addresses, TLVs.
    const uint32_t at = taken_;
    if (at < sizeof kV2Sig && b != kV2Sig[at]) return fail(i, consumed);
    if (at == 12 && (b >> 4) != 2) return fail(i, consumed);
    ++taken_;
    if (len_ < kMaxKept) buf_[len_++] = b;
    if (at == kV2Preamble - 1) v2_total_ = kV2Preamble + ((uint32_t{buf_[14]} << 8) | buf_[15]);
    if (taken_ >= kV2Preamble && taken_ == v2_total_) {
      malformed_ = !parseV2();
      consumed = i + 1;
      return Result::kDone;
    }
  }
  return Result::kNeedMore;
}

bool ProxyHeaderParser::parseV1() {
  std::string_view line(reinterpret_cast<const char*>(buf_), len_);
  if (line.size() < 2 || line.substr(line.size() - 2) != "\r\n") return false;
  line.remove_suffix(2);
  std::string_view f[6];
  size_t k = 0;
  while (!line.empty() && k < 6) {
    const size_t sp = line.find(' ');
    f[k++] = line.substr(0, sp);
    if (sp == std::string_view::npos) {
      line = {};
    } else {
      line.remove_prefix(sp + 1);
    }
  }
  if (k < 2 || f[0] != "PROXY") return false;
  if (f[1] == "UNKNOWN") {  // the proxy could not tell (or its own health check): no address
    local_ = true;
    return true;
  }
  if ((f[1] != "TCP4" && f[1] != "TCP6") || k != 6 || !line.empty()) return false;
  const bool v6 = f[1] == "TCP6";
  Endpoint src, dst;
  if (!parseAddrText(f[2], v6, src.ip) || !parseAddrText(f[3], v6, dst.ip) || !parsePortText(f[4], src.port) ||
      !parsePortText(f[5], dst.port))
    return false;
  source_ = src;
  has_source_ = true;
  return true;
}

bool ProxyHeaderParser::parseV2() {
  const uint8_t command = buf_[12] & 0x0f;
  const uint8_t family = buf_[13];
  const uint32_t addr_len = v2_total_ - static_cast<uint32_t>(kV2Preamble);
  if (command == 0) {  // LOCAL: the proxy's own connection (health check)
    local_ = true;
    return true;
  }
  if (command != 1) return false;
  const uint8_t* a = buf_ + kV2Preamble;
  if (family == 0x11) {  // AF_INET, STREAM
    if (addr_len < 12) return false;
    source_.ip = IpAddr::fromV4(a);
    source_.port = loadBe16(a + 8);
    has_source_ = true;
  } else if (family == 0x21) {  // AF_INET6, STREAM
    if (addr_len < 36) return false;
    source_.ip = IpAddr::fromV6(a);
    source_.port = loadBe16(a + 32);
    has_source_ = true;
  }
  // UNSPEC, UDP, UNIX: valid, but no TCP client address to report.
  return true;
}

}  // namespace mqttlive
