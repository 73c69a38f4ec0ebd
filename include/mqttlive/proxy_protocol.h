// PROXY protocol (HAProxy, cloud load balancers) v1 and v2: the header a
// proxy puts at the start of the client->broker stream to tell the broker the
// real client address. Listeners with proxy_protocol: true read it before
// anything else (MQTT, the WebSocket upgrade, the TLS ClientHello).
//
// Fed the first bytes of the client's stream in arbitrary chunks; holds at
// most kMaxKept bytes in a fixed buffer (v1 is at most 107 bytes; of v2 only
// the 16-byte preamble and the address block are kept, TLVs are skipped).
#pragma once

#include <cstdint>
#include <span>

#include "mqttlive/types.h"

namespace mqttlive {

enum class ProxyError : uint8_t {
  kBadHeader = 0,  // the stream does not start with a valid PROXY v1/v2 header
  kCount
};
const char* toString(ProxyError e);  // "proxy_bad_header"

class ProxyHeaderParser {
 public:
  static constexpr size_t kMaxKept = 108;  // v1 maximum (107) rounded; v2 needs 16 + 36

  enum class Result : uint8_t {
    kNeedMore = 0,  // every byte consumed, header not complete yet
    kDone,          // header complete; `consumed` bytes of this chunk were header
    kFailed,        // no header: replay kept() and then the chunk from `consumed` on
  };

  Result feed(std::span<const uint8_t> bytes, size_t& consumed);

  // After kDone: the real client, when the header named a TCP source
  // (v1 TCP4/TCP6, v2 PROXY command with AF_INET/AF_INET6 stream).
  // "PROXY UNKNOWN" and v2 LOCAL (health checks) carry none.
  bool hasSource() const { return has_source_; }
  // After kDone: v2 LOCAL or v1 UNKNOWN, the proxy's own connection (health
  // checks: HAProxy `check-send-proxy` sends v2 LOCAL), not a relayed client.
  bool local() const { return local_; }
  const Endpoint& source() const { return source_; }
  int version() const { return version_; }
  // After kDone: the header was complete but unusable (bad address, v2
  // version/length); the caller counts it. The stream goes on after it.
  bool malformed() const { return malformed_; }
  // After kFailed: the bytes taken before the failure (they belong to the stream).
  std::span<const uint8_t> kept() const { return {buf_, len_}; }

 private:
  Result fail(size_t at, size_t& consumed);
  bool parseV1();
  bool parseV2();

  uint8_t buf_[kMaxKept] = {};
  uint8_t len_ = 0;
  uint8_t version_ = 0;    // 0 = not decided yet
  uint32_t v2_total_ = 0;  // v2: 16 + address length
  uint32_t taken_ = 0;     // v2: header bytes consumed so far (kept or skipped)
  bool has_source_ = false;
  bool local_ = false;
  bool malformed_ = false;
  Endpoint source_;
};

}  // namespace mqttlive
