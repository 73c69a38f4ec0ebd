#include "mqttlive/websocket_decoder.h"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace mqttlive {

const char* toString(WsError e) {
  switch (e) {
    case WsError::kBadUpgrade: return "ws_bad_upgrade";
    case WsError::kHeadersTooLarge: return "ws_headers_too_large";
    case WsError::kNotMqtt: return "ws_not_mqtt";
    case WsError::kBadFrame: return "ws_bad_frame";
    case WsError::kFrameTooLarge: return "ws_frame_too_large";
    case WsError::kCompressed: return "ws_compressed";
    case WsError::kResync: return "ws_resync";
    case WsError::kCount: break;
  }
  return "unknown";
}

namespace {

constexpr uint8_t kFin = 0x80;
constexpr uint8_t kRsv1 = 0x40;
constexpr uint8_t kRsv23 = 0x30;
constexpr uint8_t kMaskBit = 0x80;
constexpr uint8_t kMaxControlPayload = 125;
// Unmasked payload is handed on in pieces of at most this many bytes.
constexpr size_t kUnmaskChunk = 512;

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool startsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Comma-separated tokens of a header value; true if one satisfies pred.
template <class Pred>
bool anyToken(std::string_view value, Pred pred) {
  while (!value.empty()) {
    const size_t comma = value.find(',');
    if (pred(trim(value.substr(0, comma)))) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

bool isControl(uint8_t op) { return op >= 8; }
bool knownOpcode(uint8_t op) { return op <= 2 || (op >= 8 && op <= 10); }

}  // namespace

void WebSocketDecoder::startMidstream() {
  state_ = kResyncing;
  hdr_len_ = 0;
  hdr_need_ = 2;
  in_message_ = false;
  resync_reported_ = false;
  http_check_ = true;
}

void WebSocketDecoder::onGap() {
  if (state_ == kFailed) return;
  // Whatever was lost (part of the upgrade, a frame), frames follow it.
  state_ = kResyncing;
  hdr_len_ = 0;
  hdr_need_ = 2;
  in_message_ = false;
  resync_reported_ = false;
  http_check_ = false;
}

void WebSocketDecoder::feed(std::span<const uint8_t> bytes, const WebSocketLimits& limits, WebSocketCallbacks& cb) {
  const uint8_t* p = bytes.data();
  const size_t n = bytes.size();
  size_t pos = 0;
  // Every branch consumes at least one byte or changes state toward one that does.
  while (pos < n) {
    switch (state_) {
      case kHttp: pos = feedHttp(p, n, pos, limits, cb); break;
      case kFrameHeader: pos = feedHeader(p, n, pos, limits, cb); break;
      case kPayload: pos = feedPayload(p, n, pos, cb); break;
      case kResyncing: pos = resync(p, n, pos, limits, cb); break;
      case kFailed: return;  // not WebSocket: nothing here is MQTT
    }
  }
}

// ---- HTTP upgrade ----

size_t WebSocketDecoder::feedHttp(const uint8_t* p, size_t n, size_t pos, const WebSocketLimits& limits,
                                  WebSocketCallbacks& cb) {
  while (pos < n && state_ == kHttp) {
    const auto c = static_cast<char>(p[pos++]);
    if (++header_bytes_ > limits.max_header_bytes) {
      cb.onWsError(WsError::kHeadersTooLarge);
      state_ = kFailed;
      return pos;
    }
    if (c == '\n') {
      endOfLine(cb);
      line_len_ = 0;
    } else if (line_len_ < kLineMax) {
      line_[line_len_++] = c;
    }
  }
  return pos;
}

void WebSocketDecoder::endOfLine(WebSocketCallbacks& cb) {
  std::string_view line(line_, line_len_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (first_line_) {
    first_line_ = false;
    // "GET /mqtt HTTP/1.1" from the client, "HTTP/1.1 101 Switching Protocols" from the broker.
    const bool ok = from_client_ ? startsWith(line, "GET ")
                                 : startsWith(line, "HTTP/1.") && line.size() >= 12 && line.substr(8, 4) == " 101";
    if (!ok) {
      cb.onWsError(WsError::kBadUpgrade);
      state_ = kFailed;
    }
    return;
  }
  if (line.empty()) {
    endOfHeaders(cb);
    return;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return;
  const std::string_view name = trim(line.substr(0, colon));
  const std::string_view value = trim(line.substr(colon + 1));
  if (iequals(name, "upgrade")) {
    upgrade_header_ = upgrade_header_ || anyToken(value, [](std::string_view t) { return iequals(t, "websocket"); });
  } else if (iequals(name, "sec-websocket-protocol")) {
    // "mqtt" (MQTT 3.1.1 and 5.0) or "mqttv3.1".
    mqtt_protocol_ = mqtt_protocol_ || anyToken(value, [](std::string_view t) {
                       return t.size() >= 4 && iequals(t.substr(0, 4), "mqtt");
                     });
  }
}

void WebSocketDecoder::endOfHeaders(WebSocketCallbacks& cb) {
  if (!upgrade_header_) {
    cb.onWsError(WsError::kBadUpgrade);
    state_ = kFailed;
    return;
  }
  // The broker's 101 may leave the subprotocol out; the client must offer it.
  if (from_client_ && !mqtt_protocol_) cb.onWsError(WsError::kNotMqtt);
  state_ = kFrameHeader;
  hdr_len_ = 0;
  hdr_need_ = 2;
  cb.onWsUpgraded();
}

// ---- frames ----

size_t WebSocketDecoder::feedHeader(const uint8_t* p, size_t n, size_t pos, const WebSocketLimits& limits,
                                    WebSocketCallbacks& cb) {
  while (pos < n && hdr_len_ < hdr_need_) {
    hdr_[hdr_len_++] = p[pos++];
    if (hdr_len_ == 2) {
      const uint8_t len7 = hdr_[1] & 0x7f;
      hdr_need_ = static_cast<uint8_t>(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((hdr_[1] & kMaskBit) ? 4 : 0));
    }
  }
  if (hdr_len_ >= 2 && hdr_len_ == hdr_need_) onFrameHeader(limits, cb);
  return pos;
}

void WebSocketDecoder::onFrameHeader(const WebSocketLimits& limits, WebSocketCallbacks& cb) {
  const uint8_t b0 = hdr_[0], b1 = hdr_[1];
  const bool fin = b0 & kFin;
  const uint8_t op = b0 & 0x0f;
  const bool masked = b1 & kMaskBit;
  const uint8_t len7 = b1 & 0x7f;
  uint64_t len = len7;
  size_t off = 2;
  if (len7 == 126) {
    len = (uint64_t{hdr_[2]} << 8) | hdr_[3];
    off = 4;
  } else if (len7 == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | hdr_[2 + i];
    off = 10;
  }
  if (masked) std::memcpy(mask_, hdr_ + off, 4);
  const bool resynced = from_resync_;
  from_resync_ = false;
  hdr_len_ = 0;
  hdr_need_ = 2;

  // Nothing after these can be trusted to be a frame boundary.
  if ((b0 & kRsv23) != 0 || !knownOpcode(op) || (len >> 63) != 0 ||
      (isControl(op) && (b0 & kRsv1) != 0)) {
    cb.onWsError(WsError::kBadFrame);
    loseFraming(cb);
    return;
  }
  if (resynced && len > limits.max_frame_size) {
    // A candidate found by searching that claims a huge frame is noise: keep searching.
    state_ = kResyncing;
    return;
  }
  // Clients mask every frame, brokers none; the framing itself is still sound.
  if (masked != from_client_) cb.onWsError(WsError::kBadFrame);

  masked_ = masked;
  mask_pos_ = 0;
  payload_left_ = len;
  deliver_ = false;
  bool data = false;  // a data frame whose payload belongs to the MQTT stream
  if (isControl(op)) {
    if (!fin || len > kMaxControlPayload) cb.onWsError(WsError::kBadFrame);
    if (op == static_cast<uint8_t>(WsOpcode::kClose)) close_seen_ = true;
    cb.onWsControl(static_cast<WsOpcode>(op));
  } else if (op == static_cast<uint8_t>(WsOpcode::kContinuation)) {
    if (resynced && !in_message_) {
      // Picked up inside a fragmented message: MQTT travels in binary ones.
      in_message_ = true;
      message_binary_ = true;
      message_compressed_ = false;
    }
    if (!in_message_) {
      cb.onWsError(WsError::kBadFrame);
    } else {
      data = true;
      deliver_ = message_binary_ && !message_compressed_;
      if (fin) in_message_ = false;
    }
  } else {
    if (in_message_) cb.onWsError(WsError::kBadFrame);  // the previous message never finished
    data = true;
    in_message_ = !fin;
    message_binary_ = op == static_cast<uint8_t>(WsOpcode::kBinary);
    message_compressed_ = (b0 & kRsv1) != 0;
    if (!message_binary_) cb.onWsError(WsError::kBadFrame);
    if (message_compressed_) cb.onWsError(WsError::kCompressed);
    deliver_ = message_binary_ && !message_compressed_;
  }
  if (data && deliver_ && len > limits.max_frame_size) {
    cb.onWsError(WsError::kFrameTooLarge);
    deliver_ = false;
  }
  if (data && !deliver_ && len > 0) cb.onWsPayloadLost();
  state_ = len > 0 ? kPayload : kFrameHeader;
}

size_t WebSocketDecoder::feedPayload(const uint8_t* p, size_t n, size_t pos, WebSocketCallbacks& cb) {
  const size_t k = static_cast<size_t>(std::min<uint64_t>(payload_left_, n - pos));
  if (deliver_) {
    if (!masked_) {
      cb.onWsPayload({p + pos, k});
    } else {
      uint8_t buf[kUnmaskChunk];
      for (size_t done = 0; done < k;) {
        const size_t m = std::min(kUnmaskChunk, k - done);
        for (size_t i = 0; i < m; ++i) buf[i] = static_cast<uint8_t>(p[pos + done + i] ^ mask_[(mask_pos_ + i) & 3]);
        mask_pos_ = static_cast<uint8_t>((mask_pos_ + m) & 3);
        done += m;
        cb.onWsPayload({buf, m});
      }
    }
  }
  payload_left_ -= k;
  if (payload_left_ == 0) state_ = kFrameHeader;
  return pos + k;
}

void WebSocketDecoder::loseFraming(WebSocketCallbacks& cb) {
  state_ = kResyncing;
  hdr_len_ = 0;
  hdr_need_ = 2;
  in_message_ = false;
  resync_reported_ = false;
  cb.onWsPayloadLost();
}

// Could `b[0..k)`, the first payload bytes of a binary frame of `len` bytes,
// start an MQTT packet this side sends? Checks type, fixed flags and the
// remaining length against the frame length.
bool WebSocketDecoder::plausibleMqtt(const uint8_t* b, size_t k, uint64_t len, bool fin) const {
  if (k == 0) return false;
  const uint8_t type = b[0] >> 4, flags = b[0] & 0x0f;
  uint8_t want_flags = 0;
  switch (type) {
    case 1: case 8: case 10: case 12:  // CONNECT, SUBSCRIBE, UNSUBSCRIBE, PINGREQ
      if (!from_client_) return false;
      want_flags = (type == 8 || type == 10) ? 2 : 0;
      break;
    case 2: case 9: case 11: case 13:  // CONNACK, SUBACK, UNSUBACK, PINGRESP
      if (from_client_) return false;
      break;
    case 3:  // PUBLISH: any flags but QoS 3
      if (((flags >> 1) & 3) == 3) return false;
      want_flags = flags;
      break;
    case 6:  // PUBREL
      want_flags = 2;
      break;
    case 4: case 5: case 7: case 14: case 15:
      break;
    default:
      return false;
  }
  if (flags != want_flags) return false;
  uint64_t remaining = 0;
  size_t i = 1;
  for (;; ++i) {
    if (i >= k || i > 4) return false;  // the length must be complete in what we peeked
    remaining |= uint64_t{static_cast<uint8_t>(b[i] & 0x7f)} << (7 * (i - 1));
    if ((b[i] & 0x80) == 0) break;
  }
  // Searching, a FIN frame must hold exactly one packet (what clients and
  // brokers send); a first fragment must be shorter than its packet.
  return fin ? 1 + i + remaining == len : 1 + i + remaining > len;
}

// Judges the bytes gathered in hdr_ while searching: a frame header with the
// masking bit of this side, a minimal length, and (for data frames) payload
// that is exactly one MQTT packet. Masked noise passes the first checks about
// once in 250 bytes; the MQTT type, flags and length make a false start rare
// (a frame holding several packets, or part of one, is skipped while searching).
WebSocketDecoder::Candidate WebSocketDecoder::evaluate(const WebSocketLimits& limits) const {
  const uint8_t* b = hdr_;
  const uint8_t n = hdr_len_;
  const uint8_t b0 = b[0];
  const bool binary = b0 == 0x82 || b0 == 0x02;  // FIN binary, or the first fragment of one
  const bool close = b0 == 0x88;
  const bool ping_pong = b0 == 0x89 || b0 == 0x8A;
  if (!binary && !close && !ping_pong) return Candidate::kReject;
  if (n < 2) return Candidate::kNeedMore;
  const bool masked = b[1] & kMaskBit;
  if (masked != from_client_) return Candidate::kReject;
  const uint8_t len7 = b[1] & 0x7f;
  if (ping_pong && len7 != 0) return Candidate::kReject;  // searching: only empty pings
  if (close && len7 > kMaxControlPayload) return Candidate::kReject;
  const uint8_t hdr = static_cast<uint8_t>(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (masked ? 4 : 0));
  if (n < hdr) return Candidate::kNeedMore;
  uint64_t len = len7;
  if (len7 == 126) {
    len = (uint64_t{b[2]} << 8) | b[3];
    if (len < 126) return Candidate::kReject;
  } else if (len7 == 127) {
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | b[2 + i];
    if (len <= 0xffff) return Candidate::kReject;
  }
  if (len > limits.max_frame_size) return Candidate::kReject;
  if (ping_pong) return Candidate::kAccept;
  const size_t peek = close ? (len >= 2 ? 2 : 0) : static_cast<size_t>(std::min<uint64_t>(len, kPeek));
  if (binary && len < 2) return Candidate::kReject;  // the shortest MQTT packet is 2 bytes
  if (close && len == 1) return Candidate::kReject;
  if (n < hdr + peek) return Candidate::kNeedMore;
  uint8_t payload[kPeek];
  for (size_t i = 0; i < peek; ++i)
    payload[i] = masked ? static_cast<uint8_t>(b[hdr + i] ^ b[hdr - 4 + (i & 3)]) : b[hdr + i];
  if (close) {
    if (len == 0) return Candidate::kAccept;
    const unsigned code = (unsigned{payload[0]} << 8) | payload[1];
    // Searching, only the protocol's own codes (normal, going away, errors).
    return code >= 1000 && code <= 1011 && code != 1004 && code != 1005 && code != 1006 ? Candidate::kAccept
                                                                                        : Candidate::kReject;
  }
  return plausibleMqtt(payload, peek, len, b0 == 0x82) ? Candidate::kAccept : Candidate::kReject;
}

size_t WebSocketDecoder::resync(const uint8_t* p, size_t n, size_t pos, const WebSocketLimits& limits,
                                WebSocketCallbacks& cb) {
  while (pos < n) {
    if (http_check_) {
      http_check_ = false;
      // Midstream pickup that still caught the upgrade (only the SYN was missed).
      if (p[pos] == (from_client_ ? 'G' : 'H')) {
        state_ = kHttp;
        return pos;
      }
    }
    hdr_[hdr_len_++] = p[pos++];
    for (;;) {
      const Candidate v = evaluate(limits);
      if (v == Candidate::kNeedMore) break;
      if (v == Candidate::kAccept) {
        acceptCandidate(limits, cb);
        return pos;
      }
      // Not a frame start: drop its first byte and look at the rest afresh.
      if (!resync_reported_) {
        resync_reported_ = true;
        cb.onWsError(WsError::kResync);
      }
      std::memmove(hdr_, hdr_ + 1, --hdr_len_);
      if (hdr_len_ == 0) break;
    }
  }
  return pos;
}

void WebSocketDecoder::acceptCandidate(const WebSocketLimits& limits, WebSocketCallbacks& cb) {
  const uint8_t len7 = hdr_[1] & 0x7f;
  const uint8_t hdr = static_cast<uint8_t>(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + ((hdr_[1] & kMaskBit) ? 4 : 0));
  // Payload bytes that were looked at belong to the frame: hand them on after its header.
  uint8_t peeked[kPeek];
  const size_t k = hdr_len_ - hdr;
  std::memcpy(peeked, hdr_ + hdr, k);
  hdr_len_ = hdr;
  hdr_need_ = hdr;
  from_resync_ = true;
  state_ = kFrameHeader;
  onFrameHeader(limits, cb);
  if (k > 0 && state_ == kPayload) feedPayload(peeked, k, 0, cb);
}

}  // namespace mqttlive
