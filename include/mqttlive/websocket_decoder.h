// Stage 5a (websocket listeners): one direction of MQTT over WebSocket
// (RFC 6455, MQTT 5.0 section 6). First the HTTP/1.1 upgrade (the client's
// GET with "Upgrade: websocket", the broker's "101 Switching Protocols"), then
// WebSocket frames. Emits the unmasked payload of binary data frames, which is
// the MQTT byte stream, to a callback; the engine feeds it to the MqttDecoder.
//
// Incremental like the other stages: fed arbitrary chunks, consumes every
// byte, never allocates. Header lines are matched through a small fixed line
// buffer (only the start of a line matters); masked payload is unmasked through
// a fixed stack buffer. Errors are named and counted; framing that cannot be
// trusted (a TCP gap, a midstream pickup, a reserved opcode) is searched for
// again rather than guessed.
#pragma once

#include <cstdint>
#include <span>

namespace mqttlive {

enum class WsError : uint8_t {
  kBadUpgrade = 0,     // not a WebSocket upgrade: request line, no "Upgrade: websocket", status != 101
  kHeadersTooLarge,    // upgrade headers longer than WebSocketLimits::max_header_bytes
  kNotMqtt,            // the client's Sec-WebSocket-Protocol does not offer mqtt (decoding goes on)
  kBadFrame,           // RSV bits, reserved opcode, bad control frame, masking the wrong way,
                       // continuation out of place, text data frame (MQTT uses binary frames)
  kFrameTooLarge,      // data frame longer than WebSocketLimits::max_frame_size: skipped
  kCompressed,         // RSV1 (permessage-deflate): payload cannot be read, skipped
  kResync,             // bytes discarded while searching for a frame header (gap, midstream)
  kCount
};
// "ws_bad_upgrade", "ws_headers_too_large", "ws_not_mqtt", "ws_bad_frame",
// "ws_frame_too_large", "ws_compressed", "ws_resync".
const char* toString(WsError e);

enum class WsOpcode : uint8_t {
  kContinuation = 0,
  kText = 1,
  kBinary = 2,
  kClose = 8,
  kPing = 9,
  kPong = 10,
};

struct WebSocketLimits {
  uint32_t max_header_bytes = 8192;     // HTTP upgrade request/response, status line included
  uint64_t max_frame_size = 16u << 20;  // data frame payload; larger ones are skipped
};

class WebSocketCallbacks {
 public:
  virtual ~WebSocketCallbacks() = default;
  // Unmasked payload of binary data frames, in stream order (MQTT bytes).
  virtual void onWsPayload(std::span<const uint8_t> bytes) = 0;
  // Payload bytes of this direction will never be delivered (skipped frame,
  // resynchronisation): the MQTT stream has a hole.
  virtual void onWsPayloadLost() {}
  // This direction's upgrade headers are complete and valid.
  virtual void onWsUpgraded() {}
  // A control frame's header was read (ping, pong, close). Pings and pongs are
  // not MQTT activity; a Close frame is the WebSocket-level close intent.
  virtual void onWsControl(WsOpcode /*op*/) {}
  virtual void onWsError(WsError e) = 0;
};

class WebSocketDecoder {
 public:
  // from_client: this decoder reads the client's side (request, masked frames).
  explicit WebSocketDecoder(bool from_client = true) : from_client_(from_client) {}

  // The connection's start was not captured: look for frame headers (or an
  // HTTP request/status line, should the stream still begin with one).
  void startMidstream();
  void feed(std::span<const uint8_t> bytes, const WebSocketLimits& limits, WebSocketCallbacks& cb);
  // Bytes were lost (TCP gap): drop the current frame, search for the next header.
  void onGap();

  bool upgraded() const { return state_ >= kFrameHeader && state_ != kFailed; }
  bool failed() const { return state_ == kFailed; }
  bool closeSeen() const { return close_seen_; }

 private:
  enum State : uint8_t { kHttp = 0, kFrameHeader, kPayload, kResyncing, kFailed };
  static constexpr uint32_t kLineMax = 64;  // bytes of each header line that are looked at

  size_t feedHttp(const uint8_t* p, size_t n, size_t pos, const WebSocketLimits& limits, WebSocketCallbacks& cb);
  void endOfLine(WebSocketCallbacks& cb);
  void endOfHeaders(WebSocketCallbacks& cb);
  size_t feedHeader(const uint8_t* p, size_t n, size_t pos, const WebSocketLimits& limits, WebSocketCallbacks& cb);
  void onFrameHeader(const WebSocketLimits& limits, WebSocketCallbacks& cb);
  size_t feedPayload(const uint8_t* p, size_t n, size_t pos, WebSocketCallbacks& cb);
  size_t resync(const uint8_t* p, size_t n, size_t pos, const WebSocketLimits& limits, WebSocketCallbacks& cb);
  void loseFraming(WebSocketCallbacks& cb);
  enum class Candidate : uint8_t { kReject, kNeedMore, kAccept };
  Candidate evaluate(const WebSocketLimits& limits) const;
  bool plausibleMqtt(const uint8_t* b, size_t k, uint64_t len, bool fin) const;
  void acceptCandidate(const WebSocketLimits& limits, WebSocketCallbacks& cb);

  // --- HTTP upgrade ---
  uint32_t header_bytes_ = 0;  // bytes of the upgrade read so far
  uint16_t line_len_ = 0;      // bytes of the current line kept in line_ (<= kLineMax)
  bool first_line_ = true;
  bool line_ok_ = false;       // request line / status line accepted
  bool upgrade_header_ = false;
  bool mqtt_protocol_ = false;
  char line_[kLineMax] = {};

  // --- frames ---
  // Payload bytes a resync candidate is judged by (an MQTT fixed header).
  static constexpr size_t kPeek = 5;
  uint8_t hdr_[14 + kPeek] = {};  // frame header; while searching, also the peeked payload
  uint8_t hdr_len_ = 0;
  uint8_t hdr_need_ = 2;
  uint8_t mask_[4] = {};
  uint8_t mask_pos_ = 0;
  bool masked_ = false;
  bool deliver_ = false;        // current frame's payload is MQTT bytes
  bool in_message_ = false;     // a fragmented data message is open
  bool message_binary_ = false;
  bool message_compressed_ = false;
  bool close_seen_ = false;
  bool resync_reported_ = false;
  bool http_check_ = false;     // midstream: the stream may still begin with the upgrade
  bool from_resync_ = false;    // the header being read was found by searching
  bool from_client_;
  State state_ = kHttp;
  uint64_t payload_left_ = 0;
};

}  // namespace mqttlive
