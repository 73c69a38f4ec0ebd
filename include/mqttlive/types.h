// Value types shared by every stage: time, addresses, endpoints.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

namespace mqttlive {

// Microseconds since the Unix epoch. Integer so that deadlines are exact and
// offline runs are reproducible to the microsecond.
using Micros = int64_t;
constexpr Micros kMicrosPerSecond = 1'000'000;

// Big-endian (network order) fields of the wire formats every stage reads.
inline uint16_t loadBe16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t loadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

inline Micros secondsToMicros(double s) { return static_cast<Micros>(s * 1e6 + (s >= 0 ? 0.5 : -0.5)); }
inline double microsToSeconds(Micros us) { return static_cast<double>(us) / 1e6; }

// IPv4 addresses are stored as IPv4-mapped IPv6 (::ffff:a.b.c.d) so that one
// 16-byte compare serves both families.
struct IpAddr {
  uint8_t bytes[16] = {};
  bool v4 = false;
  // Explicit and always zero, so that an Endpoint has no padding and equal
  // endpoints are equal bytes (FlowKey compares its key words at once).
  uint8_t zero_ = 0;

  static IpAddr fromV4(const uint8_t* p) {
    IpAddr a;
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    std::memcpy(a.bytes + 12, p, 4);
    a.v4 = true;
    return a;
  }
  static IpAddr fromV6(const uint8_t* p) {
    IpAddr a;
    std::memcpy(a.bytes, p, 16);
    a.v4 = false;
    return a;
  }
  friend bool operator==(const IpAddr& a, const IpAddr& b) {
    return a.v4 == b.v4 && std::memcmp(a.bytes, b.bytes, 16) == 0;
  }
};

struct Endpoint {
  IpAddr ip;
  uint16_t port = 0;
  friend bool operator==(const Endpoint& a, const Endpoint& b) { return a.port == b.port && a.ip == b.ip; }
};
static_assert(sizeof(Endpoint) == 20 && std::has_unique_object_representations_v<Endpoint>,
              "Endpoint: no padding, so equal endpoints are equal bytes");

// "1.2.3.4:1883" or "[::1]:1883".
std::string formatEndpoint(const Endpoint& e);
// Parses the same formats; returns false on anything else.
bool parseEndpoint(const std::string& text, Endpoint& out);

// Which side of an MQTT connection sent something.
enum class Side : uint8_t { kClient = 0, kBroker = 1 };

}  // namespace mqttlive
