// Stage 5: incremental MQTT 3.1 / 3.1.1 / 5.0 decoder for one direction of one
// connection. Fed arbitrary byte chunks; consumes every byte; emits whole
// packets and named errors through callbacks. No I/O, clock or metrics inside.
//
// Memory: in steady state (each packet's header inside one chunk) nothing is
// buffered. Only the fields we need are parsed; payloads are skipped without
// copying. A packet whose needed head straddles chunks is assembled in a small
// buffer that is released when the packet completes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "mqttlive/mqtt_packet.h"
#include "mqttlive/types.h"

namespace mqttlive {

enum class ParseError : uint8_t {
  kReservedType = 0,      // packet type 0 (or 15 before MQTT 5)
  kBadFixedHeaderFlags,   // flags that the spec fixes (e.g. SUBSCRIBE must be 0b0010)
  kInvalidQos,            // PUBLISH QoS 3
  kBadRemainingLength,    // more than 4 length bytes, or non-minimal encoding past 4
  kPacketTooLarge,        // remaining length above the configured maximum: skipped
  kBadProtocolName,       // CONNECT protocol name not "MQTT"/"MQIsdp"
  kBadProtocolLevel,      // CONNECT level not 3/4/5
  kMalformedConnect,      // fields run past the packet, reserved flag set, ...
  kMalformedConnack,
  kMalformedProperties,   // v5 property length/ids inconsistent
  kMalformedPacket,       // any other type whose body is inconsistent
  kResync,                // bytes discarded while searching for framing after a gap/midstream
  kCount
};
// snake_case name for events and metric labels, e.g. "bad_remaining_length".
const char* toString(ParseError e);

class MqttDecoderCallbacks {
 public:
  virtual ~MqttDecoderCallbacks() = default;
  virtual void onPacket(const MqttPacket& packet) = 0;
  virtual void onError(ParseError error) = 0;
};

struct MqttDecoderLimits {
  uint32_t max_packet_size = 1u << 20;  // remaining length above this is skipped + counted
};

class MqttDecoder {
 public:
  MqttDecoder() = default;
  MqttDecoder(MqttDecoder&&) noexcept = default;
  MqttDecoder& operator=(MqttDecoder&&) noexcept = default;
  ~MqttDecoder();

  // The client-side decoder learns the level from CONNECT; the engine passes it
  // to the broker-side decoder so CONNACK/DISCONNECT properties are parsed.
  // 0 = unknown: v5 is then recognised from the packet shape where possible.
  void setProtocolLevel(uint8_t level) { level_ = level; }
  uint8_t protocolLevel() const { return level_; }

  // Start in resync mode: the first bytes may be the middle of a packet
  // (capture began mid-connection). Emits a packet only once framing is found.
  void startMidstream() { resync_ = true; }

  void feed(std::span<const uint8_t> bytes, const MqttDecoderLimits& limits, MqttDecoderCallbacks& cb);

  // At a packet boundary with nothing buffered: feedWhole() may go first.
  bool atBoundary() const { return state_ == 0 && skip_ == 0 && !resync_; }
  // The fast path of feed(), inline for a caller that takes packets itself
  // (the engine's established-flow path: no virtual call per packet). Whole
  // packets at the start of [p, p + n) are parsed in place and passed to
  // on(const MqttPacket&); it stops at the first one that needs the general
  // path (split, a bad length, or any error) and returns the bytes consumed.
  // Requires atBoundary(); feed() picks up the rest exactly where this left off.
  template <class OnPacket>
  size_t feedWhole(const uint8_t* p, size_t n, const MqttDecoderLimits& limits, OnPacket&& on) {
    size_t pos = 0;
    while (n - pos >= 2) {
      const uint8_t first = p[pos];
      uint32_t len = p[pos + 1];
      size_t len_bytes = 1;
      if (len >= 0x80 && !wholeLength(p + pos + 1, n - pos - 1, len, len_bytes)) break;
      if (len > n - pos - 1 - len_bytes) break;
      const uint8_t* body = p + pos + 1 + len_bytes;
      MqttPacket pkt;
      if (!(len <= limits.max_packet_size && parseCommon(first, body, len, pkt)) &&
          !parseWhole(first, level_, body, len, limits, pkt))
        break;
      fixed_ = first;
      remaining_ = len;
      len_bytes_ = static_cast<uint8_t>(len_bytes);
      pos += 1 + len_bytes + len;
      noteEmitted(pkt);
      on(static_cast<const MqttPacket&>(pkt));
      if (len > 0) releaseHead();
    }
    return pos;
  }

  // Bytes were lost (TCP gap): drop any partial packet and resynchronise.
  void onGap();

  bool resyncing() const { return resync_; }

  // The commonest whole packets (PINGREQ, PINGRESP, PUBACK, PUBLISH), inline:
  // true with pkt as parseWhole() would fill it; false means "ask parseWhole()".
  static bool parseCommon(uint8_t first, const uint8_t* body, uint32_t len, MqttPacket& pkt) {
    if (first == 0xC0 || first == 0xD0) {  // PINGREQ, PINGRESP: no body at any level
      if (len != 0) return false;
    } else if (first == 0x40) {  // PUBACK: a packet id alone is sound at every level
      if (len != 2) return false;
      pkt.has_packet_id = true;
      pkt.packet_id = loadBe16(body);
    } else if ((first >> 4) == 3) {  // PUBLISH: topic name, packet id from QoS 1
      const auto qos = static_cast<uint8_t>((first >> 1) & 0x03);
      if (qos == 3 || len < 2) return false;
      const uint32_t topic_end = 2u + loadBe16(body);
      if (topic_end + (qos > 0 ? 2u : 0u) > len) return false;
      pkt.qos = qos;
      if (qos > 0) {
        pkt.has_packet_id = true;
        pkt.packet_id = loadBe16(body + topic_end);
      }
    } else {
      return false;
    }
    pkt.type = static_cast<PacketType>(first >> 4);
    pkt.flags = first & 0x0F;
    pkt.remaining_length = len;
    return true;
  }
  // A whole packet (type byte, remaining length len, body in place) that is
  // sound and within limits: parsed into pkt. Pure; false sends it the general way.
  static bool parseWhole(uint8_t first, uint8_t level, const uint8_t* body, uint32_t len,
                         const MqttDecoderLimits& limits, MqttPacket& pkt);
  // A remaining length of 2 to 4 bytes, all within [q, q + avail), as the
  // general path reads it (non-minimal encodings included): its value and
  // byte count. False when it is cut short or has a fifth byte.
  static bool wholeLength(const uint8_t* q, size_t avail, uint32_t& len, size_t& count) {
    len = 0;
    for (size_t i = 0; i < 4 && i < avail; ++i) {
      len |= uint32_t{static_cast<uint8_t>(q[i] & 0x7F)} << (7 * i);
      if ((q[i] & 0x80) == 0) {
        count = i + 1;
        return true;
      }
    }
    return false;
  }

 private:
  // Longest packet head (bytes from the start of the body up to the last field
  // parsed) assembled across chunks; a head beyond it is reported as parsed so far.
  static constexpr uint32_t kMaxHead = 4096;

  size_t readLength(const uint8_t* p, size_t n, size_t pos, const MqttDecoderLimits& limits,
                    MqttDecoderCallbacks& cb);
  void onHeader(const MqttDecoderLimits& limits, MqttDecoderCallbacks& cb);
  size_t feedBody(const uint8_t* p, size_t n, size_t pos, MqttDecoderCallbacks& cb);
  size_t resync(const uint8_t* p, size_t n, size_t pos, const MqttDecoderLimits& limits,
                MqttDecoderCallbacks& cb);
  void emit(const MqttPacket& packet, MqttDecoderCallbacks& cb);
  bool fail(ParseError error, MqttDecoderCallbacks& cb);
  void reportResync(MqttDecoderCallbacks& cb);
  bool reserveHead(uint32_t need);
  // What the decoder learns from a packet it is about to hand over (both paths).
  void noteEmitted(const MqttPacket& packet) {
    if (packet.type == PacketType::kConnect && packet.protocol_level != 0) level_ = packet.protocol_level;
    if (trust_ > 0 && --trust_ == 0) resync_reported_ = false;  // the resync episode is over
  }
  void releaseHead() {
    head_.reset();
    head_len_ = 0;
    head_cap_ = 0;
    head_need_ = 0;
  }
  void dropPartial();

  // Internal state; see mqtt_decoder.cpp.
  std::unique_ptr<uint8_t[]> head_;  // straddling packet head, or bytes kept by resync
  uint16_t head_len_ = 0;            // bytes in head_
  uint16_t head_cap_ = 0;
  uint16_t head_need_ = 0;  // head bytes the parser needs before it can go on
  uint32_t skip_ = 0;       // payload bytes still to skip
  uint32_t remaining_ = 0;  // remaining length of the packet being assembled
  uint8_t fixed_ = 0;       // first byte of the packet being assembled
  uint8_t len_bytes_ = 0;   // remaining-length bytes seen so far
  uint8_t state_ = 0;
  uint8_t level_ = 0;
  bool resync_ = false;
  bool resync_reported_ = false;  // this resync episode's kResync was emitted
  uint8_t trust_ = 0;             // packets to decode before resync framing is trusted
  uint8_t pend_len_ = 0;          // while resyncing: undecided bytes kept in head_
};

}  // namespace mqttlive
