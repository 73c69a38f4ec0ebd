// Incremental MQTT 3.1 / 3.1.1 / 5.0 decoder.
//
// Framing is a small state machine over the fixed header (type byte, then up
// to four Remaining Length bytes). Once the header is known the body is parsed
// in place when the fields we need lie inside the current chunk; otherwise just
// those leading bytes (the "head") are copied into a lazily allocated buffer and
// parsing is retried as more bytes arrive. Everything after the last needed
// field is skipped by count, never buffered: a 256 MB PUBLISH costs a counter.
//
// Body parsers are pure functions of (bytes available, remaining length, level)
// and report one of: done, need N head bytes, or a named error. The same parsers
// judge candidate headers while resynchronising, which is what makes the search
// selective on real traffic.
//
// Resync (after a gap, a midstream start or a bad Remaining Length): each byte
// position is tried as a fixed header. A candidate must have a valid type and
// flags, a shortest-form length within the limit, a body the parsers accept as
// far as it is present, plus a few resync-only checks (topic text, known reason
// codes, v5 property blocks). If the packet ends inside the chunk the next
// header must look valid too; ending exactly at the chunk end is accepted (TCP
// segments often do). With too few body bytes to judge, the decision waits for
// the next chunk. Packets found this way stay on probation: an error in the
// first one (two on weaker evidence) means the guess was wrong and the search
// resumes silently. Discarded bytes cost one kResync per episode.
#include "mqttlive/mqtt_decoder.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <new>
#include <string_view>

namespace mqttlive {
namespace {

constexpr uint8_t kStateFixed = 0;   // expecting the type byte
constexpr uint8_t kStateLength = 1;  // reading Remaining Length bytes
constexpr uint8_t kStateBody = 2;    // header done, the head is being parsed

// Marks "no error" where a ParseError is returned.
constexpr ParseError kNoError = ParseError::kCount;

// v5 property identifiers the decoder reads.
constexpr uint8_t kPropSessionExpiry = 0x11;
constexpr uint8_t kPropAssignedClientId = 0x12;
constexpr uint8_t kPropServerKeepAlive = 0x13;

// Body bytes a resync candidate is judged on at most: plenty to tell a header
// from payload, and it bounds the work per byte searched on hostile input.
constexpr uint32_t kCandidateParseCap = 512;

// Gives empty bodies a valid address so no pointer arithmetic touches nullptr.
constexpr uint8_t kEmpty[1] = {0};

enum class Step : uint8_t { kDone, kNeedMore, kError };

struct BodyResult {
  Step step = Step::kDone;
  ParseError error = kNoError;
  uint32_t need = 0;  // with kNeedMore: body bytes that must be available to go on
};

constexpr BodyResult kParsed{};

BodyResult failWith(ParseError e) { return {Step::kError, e, 0}; }

std::string_view asView(const uint8_t* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

// Bounds-checked cursor over a packet body of which only a prefix may be
// present. Reading past the remaining length is malformed; reading past the
// present bytes (but inside the packet) asks for more. The first failure sticks.
class Reader {
 public:
  Reader(const uint8_t* p, uint32_t avail, uint32_t total) : p_(p), avail_(avail), total_(total) {}

  Step step() const { return step_; }
  uint32_t need() const { return need_; }
  uint32_t total() const { return total_; }
  uint32_t left() const { return total_ - off_; }

  bool u8(uint8_t& v) {
    if (!has(1)) return false;
    v = p_[off_++];
    return true;
  }
  bool u16(uint16_t& v) {
    if (!has(2)) return false;
    v = loadBe16(p_ + off_);
    off_ += 2;
    return true;
  }
  // Variable Byte Integer; a fourth byte with the continuation bit is malformed.
  bool varint(uint32_t& v) {
    v = 0;
    for (int i = 0; i < 4; ++i) {
      uint8_t b = 0;
      if (!u8(b)) return false;
      v |= uint32_t{static_cast<uint8_t>(b & 0x7F)} << (7 * i);
      if ((b & 0x80) == 0) return true;
    }
    step_ = Step::kError;
    return false;
  }
  bool bytes(uint32_t n, const uint8_t*& out) {
    if (!has(n)) return false;
    out = p_ + off_;
    off_ += n;
    return true;
  }
  // Steps over bytes whose content does not matter, so they need not be present.
  bool skip(uint32_t n) {
    if (step_ != Step::kDone) return false;
    if (uint64_t{off_} + n > total_) {
      step_ = Step::kError;
      return false;
    }
    off_ += n;
    return true;
  }

 private:
  bool has(uint32_t n) {
    if (step_ != Step::kDone) return false;
    const uint64_t end = uint64_t{off_} + n;
    if (end > total_) {
      step_ = Step::kError;
    } else if (end > avail_) {
      step_ = Step::kNeedMore;
      need_ = static_cast<uint32_t>(end);
    } else {
      return true;
    }
    return false;
  }

  const uint8_t* p_;
  uint32_t avail_;
  uint32_t total_;
  uint32_t off_ = 0;
  uint32_t need_ = 0;
  Step step_ = Step::kDone;
};

// The failure of a Reader as a body result: more bytes, or `malformed`.
BodyResult shortOf(const Reader& r, ParseError malformed) {
  if (r.step() == Step::kNeedMore) return {Step::kNeedMore, kNoError, r.need()};
  return failWith(malformed);
}

// Value encodings of the MQTT 5 properties (spec 2.2.2.2). Anything else is
// not a property id, so a walk that meets it has lost its way.
enum class PropKind : uint8_t { kInvalid, kByte, kTwo, kFour, kVarInt, kString, kBinary, kPair };

PropKind propKind(uint8_t id) {
  switch (id) {
    case 0x01:  // Payload Format Indicator
    case 0x17:  // Request Problem Information
    case 0x19:  // Request Response Information
    case 0x24:  // Maximum QoS
    case 0x25:  // Retain Available
    case 0x28:  // Wildcard Subscription Available
    case 0x29:  // Subscription Identifier Available
    case 0x2A:  // Shared Subscription Available
      return PropKind::kByte;
    case 0x13:  // Server Keep Alive
    case 0x21:  // Receive Maximum
    case 0x22:  // Topic Alias Maximum
    case 0x23:  // Topic Alias
      return PropKind::kTwo;
    case 0x02:  // Message Expiry Interval
    case 0x11:  // Session Expiry Interval
    case 0x18:  // Will Delay Interval
    case 0x27:  // Maximum Packet Size
      return PropKind::kFour;
    case 0x0B:  // Subscription Identifier
      return PropKind::kVarInt;
    case 0x03:  // Content Type
    case 0x08:  // Response Topic
    case 0x12:  // Assigned Client Identifier
    case 0x15:  // Authentication Method
    case 0x1A:  // Response Information
    case 0x1C:  // Server Reference
    case 0x1F:  // Reason String
      return PropKind::kString;
    case 0x09:  // Correlation Data
    case 0x16:  // Authentication Data
      return PropKind::kBinary;
    case 0x26:  // User Property
      return PropKind::kPair;
    default:
      return PropKind::kInvalid;
  }
}

// Walks a complete property block. `visit(id, value, len)` sees each property;
// for strings and binary data `value` starts after the length prefix. Returns
// false when an id is unknown or a value runs past the block.
template <typename Visit>
bool walkProperties(const uint8_t* p, uint32_t len, Visit&& visit) {
  uint32_t off = 0;
  while (off < len) {
    // Ids are Variable Byte Integers, but every assigned id fits in one byte;
    // a continuation bit therefore also lands in kInvalid.
    const uint8_t id = p[off++];
    const uint32_t left = len - off;
    const uint8_t* v = p + off;
    uint32_t skip = 0;
    switch (propKind(id)) {
      case PropKind::kInvalid:
        return false;
      case PropKind::kByte:
        skip = 1;
        break;
      case PropKind::kTwo:
        skip = 2;
        break;
      case PropKind::kFour:
        skip = 4;
        break;
      case PropKind::kVarInt: {
        uint32_t i = 0;
        while (i < left && i < 4 && (v[i] & 0x80) != 0) ++i;
        if (i == 4 || i == left) return false;
        skip = i + 1;
        break;
      }
      case PropKind::kString:
      case PropKind::kBinary: {
        if (left < 2) return false;
        const uint32_t n = loadBe16(v);
        if (n > left - 2) return false;
        visit(id, v + 2, n);
        off += 2 + n;
        continue;
      }
      case PropKind::kPair: {
        if (left < 2) return false;
        const uint32_t k = loadBe16(v);
        if (k + 2 > left - 2) return false;
        const uint32_t n = loadBe16(v + 2 + k);
        if (n > left - 4 - k) return false;
        skip = 4 + k + n;
        break;
      }
    }
    if (skip > left) return false;
    visit(id, v, skip);
    off += skip;
  }
  return true;
}

// Reads a property block at the reader's position and passes it to the walker.
template <typename Visit>
BodyResult parseProperties(Reader& r, Visit&& visit) {
  uint32_t len = 0;
  const uint8_t* block = nullptr;
  if (!r.varint(len) || !r.bytes(len, block)) return shortOf(r, ParseError::kMalformedProperties);
  if (!walkProperties(block, len, visit)) return failWith(ParseError::kMalformedProperties);
  return kParsed;
}

// Validates the type byte alone: reserved types and the flags the spec fixes.
ParseError checkFixedHeader(uint8_t first, uint8_t level) {
  const auto type = static_cast<PacketType>(first >> 4);
  const uint8_t flags = first & 0x0F;
  switch (type) {
    case PacketType::kReserved:
      return ParseError::kReservedType;
    case PacketType::kAuth:
      // AUTH is new in 5.0; at an unknown level it may be a v5 session.
      if (level != 0 && level != kMqtt5) return ParseError::kReservedType;
      return flags == 0 ? kNoError : ParseError::kBadFixedHeaderFlags;
    case PacketType::kPublish:
      return ((flags >> 1) & 0x03) == 3 ? ParseError::kInvalidQos : kNoError;
    case PacketType::kPubrel:
    case PacketType::kSubscribe:
    case PacketType::kUnsubscribe:
      return flags == 0x02 ? kNoError : ParseError::kBadFixedHeaderFlags;
    default:
      return flags == 0 ? kNoError : ParseError::kBadFixedHeaderFlags;
  }
}

bool isOldLevel(uint8_t level) { return level == kMqtt31 || level == kMqtt311; }

BodyResult parseConnect(Reader& r, MqttPacket& pkt) {
  uint16_t name_len = 0;
  if (!r.u16(name_len)) return shortOf(r, ParseError::kMalformedConnect);
  // Judged before the name is read so a huge bogus length cannot demand buffering.
  if (name_len != 4 && name_len != 6) return failWith(ParseError::kBadProtocolName);
  const uint8_t* name = nullptr;
  if (!r.bytes(name_len, name)) return shortOf(r, ParseError::kMalformedConnect);
  const std::string_view nm = asView(name, name_len);
  const bool mqisdp = nm == "MQIsdp";
  if (!mqisdp && nm != "MQTT") return failWith(ParseError::kBadProtocolName);

  uint8_t raw_level = 0;
  if (!r.u8(raw_level)) return shortOf(r, ParseError::kMalformedConnect);
  // Mosquitto bridges set the top bit ("try_private") on the level.
  const auto level = static_cast<uint8_t>(raw_level & 0x7F);
  // Same pairing brokers enforce: "MQIsdp" is 3.1 only, "MQTT" is 3.1.1 or 5.0.
  if (mqisdp ? level != kMqtt31 : (level != kMqtt311 && level != kMqtt5)) {
    return failWith(ParseError::kBadProtocolLevel);
  }

  uint8_t flags = 0;
  uint16_t keepalive = 0;
  if (!r.u8(flags) || !r.u16(keepalive)) return shortOf(r, ParseError::kMalformedConnect);
  if ((flags & 0x01) != 0) return failWith(ParseError::kMalformedConnect);  // reserved bit
  pkt.protocol_level = level;
  pkt.clean_start = (flags & 0x02) != 0;
  pkt.will_flag = (flags & 0x04) != 0;
  pkt.password_flag = (flags & 0x40) != 0;
  pkt.username_flag = (flags & 0x80) != 0;
  pkt.keepalive = keepalive;

  if (level == kMqtt5) {
    bool has_expiry = false;
    uint32_t expiry = 0;
    const BodyResult pr = parseProperties(r, [&](uint8_t id, const uint8_t* v, uint32_t) {
      if (id == kPropSessionExpiry) {
        has_expiry = true;
        expiry = loadBe32(v);
      }
    });
    if (pr.step != Step::kDone) return pr;
    pkt.has_session_expiry = has_expiry;
    pkt.session_expiry = expiry;
  }

  // The client id is the last field read: the will, user name and password that
  // follow are never looked at, so they are never part of the buffered head.
  uint16_t id_len = 0;
  const uint8_t* id = nullptr;
  if (!r.u16(id_len) || !r.bytes(id_len, id)) return shortOf(r, ParseError::kMalformedConnect);
  pkt.client_id = asView(id, id_len);
  return kParsed;
}

BodyResult parseConnack(Reader& r, uint8_t level, MqttPacket& pkt) {
  const bool old = isOldLevel(level);
  if (old && r.total() != 2) return failWith(ParseError::kMalformedConnack);
  uint8_t ack_flags = 0;
  uint8_t code = 0;
  if (!r.u8(ack_flags) || !r.u8(code)) return shortOf(r, ParseError::kMalformedConnack);
  // 3.1 left the first byte unused; later levels reserve all bits but Session Present.
  if ((ack_flags & 0xFE) != 0 && level != kMqtt31) return failWith(ParseError::kMalformedConnack);
  pkt.session_present = (ack_flags & 0x01) != 0;
  pkt.reason_code = code;
  // A v5 broker answers a level it refuses in the 3.1.1 format (two bytes), so
  // properties are expected only when there is room for them.
  if (old || r.left() == 0) return kParsed;

  bool has_expiry = false, has_keepalive = false;
  uint32_t expiry = 0;
  uint16_t keepalive = 0;
  std::string_view assigned;
  const BodyResult pr = parseProperties(r, [&](uint8_t id, const uint8_t* v, uint32_t n) {
    switch (id) {
      case kPropSessionExpiry:
        has_expiry = true;
        expiry = loadBe32(v);
        break;
      case kPropServerKeepAlive:
        has_keepalive = true;
        keepalive = loadBe16(v);
        break;
      case kPropAssignedClientId:
        assigned = asView(v, n);
        break;
      default:
        break;
    }
  });
  if (pr.step != Step::kDone) return pr;
  pkt.has_session_expiry = has_expiry;
  pkt.session_expiry = expiry;
  pkt.has_server_keepalive = has_keepalive;
  pkt.server_keepalive = keepalive;
  pkt.assigned_client_id = assigned;
  return kParsed;
}

BodyResult parsePublish(Reader& r, MqttPacket& pkt) {
  pkt.qos = static_cast<uint8_t>((pkt.flags >> 1) & 0x03);
  uint16_t topic_len = 0;
  if (!r.u16(topic_len) || !r.skip(topic_len)) return shortOf(r, ParseError::kMalformedPacket);
  if (pkt.qos == 0) return kParsed;
  uint16_t id = 0;
  if (!r.u16(id)) return shortOf(r, ParseError::kMalformedPacket);
  pkt.has_packet_id = true;
  pkt.packet_id = id;
  return kParsed;
}

// Packets that start with a packet identifier: the PUBLISH acks, SUBSCRIBE,
// SUBACK, UNSUBSCRIBE, UNSUBACK.
BodyResult parseWithPacketId(Reader& r, uint8_t level, MqttPacket& pkt) {
  switch (pkt.type) {
    case PacketType::kSubscribe:
    case PacketType::kSuback:
    case PacketType::kUnsubscribe:
      // At least one topic filter / return code follows the id at every level.
      if (r.total() < 3) return failWith(ParseError::kMalformedPacket);
      break;
    default:
      // Before 5.0 these are exactly the packet id.
      if (isOldLevel(level) && r.total() != 2) return failWith(ParseError::kMalformedPacket);
      break;
  }
  uint16_t id = 0;
  if (!r.u16(id)) return shortOf(r, ParseError::kMalformedPacket);
  pkt.has_packet_id = true;
  pkt.packet_id = id;
  const bool publish_ack = pkt.type == PacketType::kPuback || pkt.type == PacketType::kPubrec ||
                           pkt.type == PacketType::kPubrel || pkt.type == PacketType::kPubcomp;
  // v5 may append a reason code (no code means success); UNSUBACK has properties there instead.
  if (publish_ack && r.left() > 0) {
    uint8_t code = 0;
    if (!r.u8(code)) return shortOf(r, ParseError::kMalformedPacket);
    pkt.reason_code = code;
  }
  return kParsed;
}

BodyResult parseDisconnect(Reader& r, uint8_t level, MqttPacket& pkt) {
  const bool v5 = level == kMqtt5 || (level == 0 && r.total() > 0);
  if (!v5) return r.total() == 0 ? kParsed : failWith(ParseError::kMalformedPacket);
  if (r.left() == 0) return kParsed;  // v5 normal disconnection, reason 0
  uint8_t code = 0;
  if (!r.u8(code)) return shortOf(r, ParseError::kMalformedPacket);
  pkt.reason_code = code;
  if (r.left() == 0) return kParsed;
  bool has_expiry = false;
  uint32_t expiry = 0;
  const BodyResult pr = parseProperties(r, [&](uint8_t id, const uint8_t* v, uint32_t) {
    if (id == kPropSessionExpiry) {
      has_expiry = true;
      expiry = loadBe32(v);
    }
  });
  if (pr.step != Step::kDone) return pr;
  pkt.has_session_expiry = has_expiry;
  pkt.session_expiry = expiry;
  return kParsed;
}

BodyResult parseAuth(Reader& r, MqttPacket& pkt) {
  if (r.left() == 0) return kParsed;  // success, no properties
  uint8_t code = 0;
  if (!r.u8(code)) return shortOf(r, ParseError::kMalformedPacket);
  // Success, Continue authentication, Re-authenticate: the only AUTH reasons.
  if (code != 0x00 && code != 0x18 && code != 0x19) return failWith(ParseError::kMalformedPacket);
  pkt.reason_code = code;
  return kParsed;
}

// Parses the fields we need from a body whose first `avail` of `total` bytes
// are at `body`. Pure: used for real packets and for resync candidates alike.
BodyResult parseBody(uint8_t first, uint8_t level, const uint8_t* body, uint32_t avail, uint32_t total,
                     MqttPacket& pkt) {
  pkt.type = static_cast<PacketType>(first >> 4);
  pkt.flags = first & 0x0F;
  pkt.remaining_length = total;
  Reader r(body, avail, total);
  switch (pkt.type) {
    case PacketType::kConnect:
      return parseConnect(r, pkt);
    case PacketType::kConnack:
      return parseConnack(r, level, pkt);
    case PacketType::kPublish:
      return parsePublish(r, pkt);
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp:
    case PacketType::kSubscribe:
    case PacketType::kSuback:
    case PacketType::kUnsubscribe:
    case PacketType::kUnsuback:
      return parseWithPacketId(r, level, pkt);
    case PacketType::kPingreq:
    case PacketType::kPingresp:
      return total == 0 ? kParsed : failWith(ParseError::kMalformedPacket);
    case PacketType::kDisconnect:
      return parseDisconnect(r, level, pkt);
    case PacketType::kAuth:
      return parseAuth(r, pkt);
    case PacketType::kReserved:
      break;
  }
  return failWith(ParseError::kReservedType);
}

// ---- resynchronisation ------------------------------------------------------

// Bytes of an undecided candidate kept from one chunk to the next while
// resynchronising: a header plus a few body bytes.
constexpr size_t kPendCap = 16;
// Body bytes wanted before a candidate whose packet runs past the chunk is
// taken on trust: a lone type byte and length byte prove nothing.
constexpr size_t kMinEvidence = 8;

// The bytes being searched: bytes kept from the previous chunk, followed by the
// current chunk. `joined` repeats the kept bytes followed by the start of the
// chunk so a candidate that begins in the kept bytes can be parsed contiguously.
struct SearchStream {
  const uint8_t* joined;
  size_t joined_len;
  size_t pend_len;
  const uint8_t* chunk;
  size_t chunk_len;

  size_t size() const { return pend_len + chunk_len; }
  uint8_t at(size_t i) const { return i < pend_len ? joined[i] : chunk[i - pend_len]; }
  // Contiguous bytes starting at stream index i, and how many there are.
  const uint8_t* from(size_t i, size_t& n) const {
    if (i >= pend_len) {
      n = chunk_len - (i - pend_len);
      return chunk + (i - pend_len);
    }
    n = joined_len - i;
    return joined + i;
  }
};

enum class Verdict : uint8_t {
  kReject,
  kIncomplete,  // too little of it is in this chunk to judge: decide with the next
  kWeak,        // plausible, but the packet's end could not be checked
  kConfirmed,   // the packet ends inside the chunk and a plausible header follows
};

// Topic names are text without wildcards; binary payload rarely looks like one.
bool plausibleTopic(const uint8_t* body, uint32_t avail, uint8_t level) {
  if (avail < 2) return true;
  const uint32_t len = loadBe16(body);
  // Only v5 may send an empty topic (with a Topic Alias).
  if (len == 0) return level == kMqtt5;
  const uint32_t present = std::min(len, avail - 2);
  for (uint32_t i = 0; i < present; ++i) {
    const uint8_t c = body[2 + i];
    if (c < 0x20 || c == '+' || c == '#') return false;
  }
  return true;
}

// Judges the property block at `off` as far as it is present: false only when
// it is visibly broken, or when `fills_packet` and it does not end the packet.
bool plausibleProperties(const uint8_t* body, uint32_t avail, uint32_t total, uint32_t off,
                         bool fills_packet) {
  Reader r(body, avail, total);
  uint32_t len = 0;
  const uint8_t* block = nullptr;
  if (!r.skip(off) || !r.varint(len) || !r.bytes(len, block)) return r.step() == Step::kNeedMore;
  if (!walkProperties(block, len, [](uint8_t, const uint8_t*, uint32_t) {})) return false;
  return fills_packet ? r.left() == 0 : r.left() > 0;
}

bool oneOf(uint8_t v, std::initializer_list<uint8_t> set) {
  return std::find(set.begin(), set.end(), v) != set.end();
}

// Checks applied to resync candidates only: values a real peer never sends. On
// an established stream such packets are still reported (they are harmless),
// but while searching they tell payload bytes from a packet boundary.
bool plausibleBody(uint8_t first, uint8_t level, const uint8_t* body, uint32_t avail, uint32_t total) {
  const auto type = static_cast<PacketType>(first >> 4);
  const bool old = isOldLevel(level);
  switch (type) {
    case PacketType::kPublish: {
      if (!plausibleTopic(body, avail, level)) return false;
      if (level != kMqtt5 || avail < 2) return true;
      const uint32_t off = 2u + loadBe16(body) + (((first >> 1) & 0x03) != 0 ? 2u : 0u);
      return plausibleProperties(body, avail, total, off, false);
    }
    case PacketType::kConnack:
      if (avail < 2) return true;
      // 3.1.1 return codes are 0..5; v5 reason codes are 0 or >= 0x80.
      return total == 2 ? (body[1] <= 5 || body[1] >= 0x80) : (body[1] == 0 || body[1] >= 0x80);
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp: {
      if (total < 3 || avail < 3) return true;
      const bool pubrel_comp = type == PacketType::kPubrel || type == PacketType::kPubcomp;
      const bool known = pubrel_comp ? oneOf(body[2], {0x00, 0x92})
                                     : oneOf(body[2], {0x00, 0x10, 0x80, 0x83, 0x87, 0x90, 0x91, 0x97, 0x99});
      return known && (total == 3 || plausibleProperties(body, avail, total, 3, true));
    }
    case PacketType::kSuback:
      if (!old) return true;  // v5 puts properties first
      for (uint32_t i = 2; i < avail; ++i) {
        if (!oneOf(body[i], {0x00, 0x01, 0x02, 0x80})) return false;
      }
      return true;
    case PacketType::kUnsuback:
      return old || total == 2 || plausibleProperties(body, avail, total, 2, false);
    case PacketType::kDisconnect:
      return avail < 1 || body[0] == 0x00 || body[0] == 0x04 || body[0] >= 0x80;
    default:
      return true;
  }
}

Verdict evaluate(const SearchStream& s, size_t at, uint8_t level, uint32_t max_size, bool look_next) {
  const uint8_t first = s.at(at);
  if (checkFixedHeader(first, level) != kNoError) return Verdict::kReject;
  // QoS 0 with DUP set is forbidden; cheap extra selectivity against payload bytes.
  if ((first & 0xF8) == 0x38 && (first & 0x06) == 0) return Verdict::kReject;

  size_t i = at + 1;
  uint32_t remaining = 0;
  uint8_t n = 0;
  for (;;) {
    if (i >= s.size()) return Verdict::kIncomplete;
    const uint8_t b = s.at(i++);
    remaining |= uint32_t{static_cast<uint8_t>(b & 0x7F)} << (7 * n);
    ++n;
    if ((b & 0x80) == 0) {
      // Encoders use the shortest form; a padded length is more likely noise.
      if (n > 1 && b == 0) return Verdict::kReject;
      break;
    }
    if (n == 4) return Verdict::kReject;
  }
  if (remaining > max_size) return Verdict::kReject;

  size_t contiguous = 0;
  const uint8_t* body = s.from(i, contiguous);
  const auto avail =
      static_cast<uint32_t>(std::min<size_t>({remaining, contiguous, size_t{kCandidateParseCap}}));
  MqttPacket scratch;
  if (parseBody(first, level, body, avail, remaining, scratch).step == Step::kError) return Verdict::kReject;
  if (!plausibleBody(first, level, body, avail, remaining)) return Verdict::kReject;

  const size_t in_stream = s.size() - i;
  if (remaining > in_stream) {
    const bool little_evidence = in_stream < std::min<size_t>(remaining, kMinEvidence);
    return little_evidence && s.size() - at <= kPendCap ? Verdict::kIncomplete : Verdict::kWeak;
  }
  // Ends exactly at the chunk end, as TCP segments often do.
  if (remaining == in_stream) return Verdict::kWeak;
  if (look_next && evaluate(s, i + remaining, level, max_size, false) == Verdict::kReject)
    return Verdict::kReject;
  return Verdict::kConfirmed;
}

}  // namespace

MqttDecoder::~MqttDecoder() = default;

void MqttDecoder::feed(std::span<const uint8_t> bytes, const MqttDecoderLimits& limits,
                       MqttDecoderCallbacks& cb) {
  const uint8_t* p = bytes.data();
  const size_t n = bytes.size();
  size_t pos = 0;
  // Every branch consumes at least one byte or changes state toward one that does.
  while (pos < n) {
    // Most packets arrive whole in one segment: parsed in place without the
    // state machine (feedWhole). Anything else, an error included, takes the
    // general path below, which then does exactly what it always did
    // (parseBody is pure).
    if (atBoundary()) {
      pos += feedWhole(p + pos, n - pos, limits, [&cb](const MqttPacket& pkt) { cb.onPacket(pkt); });
      if (pos == n) break;
    }
    if (resync_) {
      pos = resync(p, n, pos, limits, cb);
    } else if (skip_ > 0) {
      const size_t k = std::min<size_t>(skip_, n - pos);
      skip_ -= static_cast<uint32_t>(k);
      pos += k;
    } else if (state_ == kStateFixed) {
      fixed_ = p[pos++];
      remaining_ = 0;
      len_bytes_ = 0;
      state_ = kStateLength;
    } else if (state_ == kStateLength) {
      pos = readLength(p, n, pos, limits, cb);
    } else {
      pos = feedBody(p, n, pos, cb);
    }
  }
}

bool MqttDecoder::parseWhole(uint8_t first, uint8_t level, const uint8_t* body, uint32_t len,
                             const MqttDecoderLimits& limits, MqttPacket& pkt) {
  return checkFixedHeader(first, level) == kNoError && len <= limits.max_packet_size &&
         parseBody(first, level, body, len, len, pkt).step == Step::kDone;
}

size_t MqttDecoder::readLength(const uint8_t* p, size_t n, size_t pos, const MqttDecoderLimits& limits,
                               MqttDecoderCallbacks& cb) {
  while (pos < n) {
    const uint8_t b = p[pos++];
    remaining_ |= uint32_t{static_cast<uint8_t>(b & 0x7F)} << (7 * len_bytes_);
    ++len_bytes_;
    if ((b & 0x80) == 0) {
      onHeader(limits, cb);
      return pos;
    }
    if (len_bytes_ == 4) {
      // Without a length there is no next packet boundary to go to: search for one.
      state_ = kStateFixed;
      if (!fail(ParseError::kBadRemainingLength, cb)) resync_ = true;
      return pos;
    }
  }
  return pos;
}

void MqttDecoder::onHeader(const MqttDecoderLimits& limits, MqttDecoderCallbacks& cb) {
  state_ = kStateFixed;
  ParseError e = checkFixedHeader(fixed_, level_);
  if (e == kNoError && remaining_ > limits.max_packet_size) e = ParseError::kPacketTooLarge;
  if (e != kNoError) {
    // The length is still sound, so framing carries on after the packet.
    skip_ = remaining_;
    fail(e, cb);
    return;
  }
  if (remaining_ == 0) {
    MqttPacket pkt;
    const BodyResult r = parseBody(fixed_, level_, kEmpty, 0, 0, pkt);
    if (r.step == Step::kError) {
      fail(r.error, cb);
    } else {
      emit(pkt, cb);
    }
    return;
  }
  state_ = kStateBody;
  head_len_ = 0;
}

size_t MqttDecoder::feedBody(const uint8_t* p, size_t n, size_t pos, MqttDecoderCallbacks& cb) {
  const uint8_t* body = nullptr;
  uint32_t avail = 0;
  if (head_len_ == 0) {
    // Nothing buffered: parse in place.
    body = p + pos;
    avail = static_cast<uint32_t>(std::min<size_t>(remaining_, n - pos));
  } else {
    const size_t take = std::min<size_t>(size_t{head_need_} - head_len_, n - pos);
    std::memcpy(head_.get() + head_len_, p + pos, take);
    head_len_ = static_cast<uint16_t>(head_len_ + take);
    pos += take;
    if (head_len_ < head_need_) return pos;
    body = head_.get();
    avail = head_len_;
  }

  MqttPacket pkt;
  BodyResult r = parseBody(fixed_, level_, body, avail, remaining_, pkt);
  if (r.step == Step::kNeedMore) {
    // Copy only up to what the parser asked for: that never reaches past the
    // last needed field (for CONNECT, never into the password).
    if (r.need <= kMaxHead && reserveHead(r.need)) {
      if (head_len_ == 0) {
        std::memcpy(head_.get(), body, avail);  // avail < need: the rest of this chunk
        head_len_ = static_cast<uint16_t>(avail);
        pos += avail;
      }
      head_need_ = static_cast<uint16_t>(r.need);
      return pos;
    }
    // The head is longer than we are willing to hold: report what was parsed.
    r.step = Step::kDone;
  }

  const bool in_place = head_len_ == 0;
  if (r.step == Step::kError && trust_ > 0 && in_place) {
    // Framing found by resync was wrong; the body bytes may hold the real boundary.
    fail(r.error, cb);
    return pos;
  }
  if (in_place) pos += avail;
  state_ = kStateFixed;
  skip_ = remaining_ - avail;
  if (r.step == Step::kError) {
    fail(r.error, cb);
  } else {
    emit(pkt, cb);  // views may point into head_: released only afterwards
  }
  releaseHead();
  return pos;
}

size_t MqttDecoder::resync(const uint8_t* p, size_t n, size_t pos, const MqttDecoderLimits& limits,
                           MqttDecoderCallbacks& cb) {
  // Kept bytes live in head_, which has no other use while searching; without
  // them, whatever partial packet there was is abandoned.
  if (pend_len_ == 0) dropPartial();
  const uint8_t* chunk = p + pos;
  const size_t chunk_len = n - pos;
  uint8_t joined[kPendCap + kCandidateParseCap];
  size_t joined_len = 0;
  if (pend_len_ > 0) {
    std::memcpy(joined, head_.get(), pend_len_);
    const size_t k = std::min<size_t>(chunk_len, kCandidateParseCap);
    std::memcpy(joined + pend_len_, chunk, k);
    joined_len = pend_len_ + k;
  }
  const SearchStream s{joined, joined_len, pend_len_, chunk, chunk_len};

  for (size_t at = 0; at < s.size(); ++at) {
    const Verdict v = evaluate(s, at, level_, limits.max_packet_size, true);
    if (v == Verdict::kReject) continue;
    if (at > 0) reportResync(cb);
    if (v == Verdict::kIncomplete) {
      uint8_t keep[kPendCap];
      const size_t k = std::min(s.size() - at, kPendCap);
      for (size_t j = 0; j < k; ++j) keep[j] = s.at(at + j);
      if (!head_) head_.reset(new (std::nothrow) uint8_t[kPendCap]);
      if (head_) std::memcpy(head_.get(), keep, k);
      pend_len_ = head_ ? static_cast<uint8_t>(k) : 0;
      return n;
    }
    // Weak evidence must be borne out by the next packet too.
    resync_ = false;
    trust_ = v == Verdict::kConfirmed ? 1 : 2;
    if (at >= s.pend_len) {
      releaseHead();
      pend_len_ = 0;
      return pos + (at - s.pend_len);
    }
    // The packet began in the kept bytes: replay them through normal framing,
    // then go on with the whole chunk.
    uint8_t replay[kPendCap];
    const size_t k = s.pend_len - at;
    std::memcpy(replay, joined + at, k);
    releaseHead();
    pend_len_ = 0;
    feed(std::span<const uint8_t>(replay, k), limits, cb);
    return pos;
  }
  if (s.size() > 0) reportResync(cb);
  releaseHead();
  pend_len_ = 0;
  return n;
}

void MqttDecoder::emit(const MqttPacket& packet, MqttDecoderCallbacks& cb) {
  noteEmitted(packet);
  cb.onPacket(packet);
}

bool MqttDecoder::fail(ParseError error, MqttDecoderCallbacks& cb) {
  if (trust_ > 0) {
    // Right after a resync an error means the framing guess was wrong, not that
    // the peer misbehaved: keep searching, as part of the same episode.
    trust_ = 0;
    dropPartial();
    resync_ = true;
    reportResync(cb);
    return true;
  }
  cb.onError(error);
  return false;
}

void MqttDecoder::reportResync(MqttDecoderCallbacks& cb) {
  if (resync_reported_) return;
  resync_reported_ = true;
  cb.onError(ParseError::kResync);
}

bool MqttDecoder::reserveHead(uint32_t need) {
  static_assert(kMaxHead <= UINT16_MAX, "head sizes are kept in uint16_t");
  if (need <= head_cap_) return true;
  // Grow geometrically so a head needing several fields reallocates rarely.
  const uint32_t want = std::max({need, uint32_t{64}, uint32_t{head_cap_} * 2u});
  const uint32_t cap = std::min({want, remaining_, kMaxHead});
  std::unique_ptr<uint8_t[]> grown(new (std::nothrow) uint8_t[cap]);
  if (!grown) return false;
  if (head_len_ > 0) std::memcpy(grown.get(), head_.get(), head_len_);
  head_ = std::move(grown);
  head_cap_ = static_cast<uint16_t>(cap);
  return true;
}

void MqttDecoder::dropPartial() {
  releaseHead();
  skip_ = 0;
  remaining_ = 0;
  len_bytes_ = 0;
  state_ = kStateFixed;
}

void MqttDecoder::onGap() {
  dropPartial();
  pend_len_ = 0;
  resync_ = true;
}

}  // namespace mqttlive
