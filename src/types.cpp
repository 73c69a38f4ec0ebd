#include "mqttlive/types.h"

#include <arpa/inet.h>

#include <charconv>

namespace mqttlive {

std::string formatEndpoint(const Endpoint& e) {
  char addr[INET6_ADDRSTRLEN] = {};
  std::string out;
  if (e.ip.v4) {
    inet_ntop(AF_INET, e.ip.bytes + 12, addr, sizeof(addr));
    out = addr;
  } else {
    inet_ntop(AF_INET6, e.ip.bytes, addr, sizeof(addr));
    out.reserve(std::strlen(addr) + 8);
    out += '[';
    out += addr;
    out += ']';
  }
  out += ':';
  out += std::to_string(e.port);
  return out;
}

namespace {

// Decimal 0..65535 and nothing else: from_chars alone would accept "+1" or
// stop early on "80x".
bool parsePort(const char* begin, const char* end, uint16_t& port) {
  if (begin == end || end - begin > 5) return false;
  for (const char* p = begin; p != end; ++p)
    if (*p < '0' || *p > '9') return false;
  unsigned value = 0;
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end || value > 65535) return false;
  port = static_cast<uint16_t>(value);
  return true;
}

}  // namespace

bool parseEndpoint(const std::string& text, Endpoint& out) {
  // inet_pton needs a NUL-terminated address; INET6_ADDRSTRLEN bounds any valid one.
  char addr[INET6_ADDRSTRLEN];
  const char* s = text.data();
  const char* end = s + text.size();
  if (text.find('\0') != std::string::npos) return false;
  Endpoint e;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    size_t len = close - 1;
    if (len == 0 || len >= sizeof(addr)) return false;
    std::memcpy(addr, s + 1, len);
    addr[len] = '\0';
    uint8_t raw[16];
    if (inet_pton(AF_INET6, addr, raw) != 1) return false;
    if (!parsePort(s + close + 2, end, e.port)) return false;
    e.ip = IpAddr::fromV6(raw);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon >= sizeof(addr)) return false;
    std::memcpy(addr, s, colon);
    addr[colon] = '\0';
    uint8_t raw[4];
    if (inet_pton(AF_INET, addr, raw) != 1) return false;
    if (!parsePort(s + colon + 1, end, e.port)) return false;
    e.ip = IpAddr::fromV4(raw);
  }
  out = e;
  return true;
}

}  // namespace mqttlive
