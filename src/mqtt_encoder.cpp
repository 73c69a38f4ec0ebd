// Packet builder for tests, synthetic captures and benchmarks. Not on the data
// path, so plain vectors and clarity win over speed.
#include "mqttlive/mqtt_encoder.h"

#include <string_view>

namespace mqttlive {
namespace {

// v5 property identifiers the encoder can emit.
constexpr uint8_t kPropSessionExpiry = 0x11;
constexpr uint8_t kPropAssignedClientId = 0x12;
constexpr uint8_t kPropServerKeepAlive = 0x13;

void put8(std::vector<uint8_t>& out, uint8_t v) { out.push_back(v); }

void put16(std::vector<uint8_t>& out, uint16_t v) {
  out.push_back(static_cast<uint8_t>(v >> 8));
  out.push_back(static_cast<uint8_t>(v & 0xFF));
}

void put32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>((v >> shift) & 0xFF));
}

// UTF-8 string / binary data: two-byte length prefix. Longer inputs are cut at
// 65535 bytes so the result is always a well-formed field.
void putString(std::vector<uint8_t>& out, std::string_view s) {
  const size_t n = s.size() > 0xFFFF ? 0xFFFF : s.size();
  put16(out, static_cast<uint16_t>(n));
  out.insert(out.end(), s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
}

// Property block: variable byte length followed by the properties.
void putProperties(std::vector<uint8_t>& out, const std::vector<uint8_t>& props) {
  appendVarInt(out, static_cast<uint32_t>(props.size()));
  out.insert(out.end(), props.begin(), props.end());
}

std::vector<uint8_t> frame(uint8_t first_byte, const std::vector<uint8_t>& body) {
  std::vector<uint8_t> out;
  out.reserve(body.size() + 5);
  out.push_back(first_byte);
  appendVarInt(out, static_cast<uint32_t>(body.size()));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

uint8_t firstByte(PacketType type, uint8_t flags) {
  return static_cast<uint8_t>((static_cast<uint8_t>(type) << 4) | (flags & 0x0F));
}

}  // namespace

void appendVarInt(std::vector<uint8_t>& out, uint32_t value) {
  do {
    uint8_t b = static_cast<uint8_t>(value & 0x7F);
    value >>= 7;
    if (value != 0) b = static_cast<uint8_t>(b | 0x80);
    out.push_back(b);
  } while (value != 0);
}

std::vector<uint8_t> encodeConnect(const ConnectSpec& s) {
  const bool v5 = s.protocol_level == kMqtt5;
  std::vector<uint8_t> body;
  putString(body, s.protocol_level == kMqtt31 ? "MQIsdp" : "MQTT");
  put8(body, s.protocol_level);
  uint8_t flags = 0;
  if (s.clean_start) flags |= 0x02;
  if (s.will) flags |= 0x04;
  if (!s.password.empty()) flags |= 0x40;
  if (!s.username.empty()) flags |= 0x80;
  put8(body, flags);
  put16(body, s.keepalive);
  if (v5) {
    std::vector<uint8_t> props;
    if (s.has_session_expiry) {
      put8(props, kPropSessionExpiry);
      put32(props, s.session_expiry);
    }
    putProperties(body, props);
  }
  putString(body, s.client_id);
  if (s.will) {
    if (v5) putProperties(body, {});  // will properties
    putString(body, s.will_topic);
    putString(body, s.will_payload);
  }
  if (!s.username.empty()) putString(body, s.username);
  if (!s.password.empty()) putString(body, s.password);
  return frame(firstByte(PacketType::kConnect, 0), body);
}

std::vector<uint8_t> encodeConnack(const ConnackSpec& s) {
  std::vector<uint8_t> body;
  put8(body, s.session_present ? 1 : 0);
  put8(body, s.reason_code);
  if (s.protocol_level == kMqtt5) {
    std::vector<uint8_t> props;
    if (s.has_server_keepalive) {
      put8(props, kPropServerKeepAlive);
      put16(props, s.server_keepalive);
    }
    if (!s.assigned_client_id.empty()) {
      put8(props, kPropAssignedClientId);
      putString(props, s.assigned_client_id);
    }
    putProperties(body, props);
  }
  return frame(firstByte(PacketType::kConnack, 0), body);
}

std::vector<uint8_t> encodePublish(uint8_t level, const std::string& topic, uint8_t qos, uint16_t packet_id,
                                   const std::vector<uint8_t>& payload, bool retain, bool dup) {
  std::vector<uint8_t> body;
  putString(body, topic);
  if (qos > 0) put16(body, packet_id);
  if (level == kMqtt5) putProperties(body, {});
  body.insert(body.end(), payload.begin(), payload.end());
  const uint8_t flags = static_cast<uint8_t>((dup ? 0x08 : 0) | ((qos & 0x03) << 1) | (retain ? 0x01 : 0));
  return frame(firstByte(PacketType::kPublish, flags), body);
}

std::vector<uint8_t> encodeAck(PacketType type, uint8_t level, uint16_t packet_id, uint8_t reason_code) {
  std::vector<uint8_t> body;
  put16(body, packet_id);
  if (level == kMqtt5) {
    if (type == PacketType::kUnsuback) {
      // v5 UNSUBACK: properties, then one reason code per topic filter.
      putProperties(body, {});
      put8(body, reason_code);
    } else if (reason_code != 0) {
      // Success without properties may be sent as the bare packet id (as most clients do).
      put8(body, reason_code);
      putProperties(body, {});
    }
  }
  return frame(firstByte(type, type == PacketType::kPubrel ? 0x02 : 0x00), body);
}

std::vector<uint8_t> encodeSubscribe(uint8_t level, uint16_t packet_id,
                                     const std::vector<std::string>& topics, uint8_t qos) {
  std::vector<uint8_t> body;
  put16(body, packet_id);
  if (level == kMqtt5) putProperties(body, {});
  for (const auto& t : topics) {
    putString(body, t);
    put8(body, static_cast<uint8_t>(qos & 0x03));
  }
  return frame(firstByte(PacketType::kSubscribe, 0x02), body);
}

std::vector<uint8_t> encodeSuback(uint8_t level, uint16_t packet_id, const std::vector<uint8_t>& codes) {
  std::vector<uint8_t> body;
  put16(body, packet_id);
  if (level == kMqtt5) putProperties(body, {});
  body.insert(body.end(), codes.begin(), codes.end());
  return frame(firstByte(PacketType::kSuback, 0), body);
}

std::vector<uint8_t> encodeUnsubscribe(uint8_t level, uint16_t packet_id,
                                       const std::vector<std::string>& topics) {
  std::vector<uint8_t> body;
  put16(body, packet_id);
  if (level == kMqtt5) putProperties(body, {});
  for (const auto& t : topics) putString(body, t);
  return frame(firstByte(PacketType::kUnsubscribe, 0x02), body);
}

std::vector<uint8_t> encodePingreq() { return frame(firstByte(PacketType::kPingreq, 0), {}); }

std::vector<uint8_t> encodePingresp() { return frame(firstByte(PacketType::kPingresp, 0), {}); }

std::vector<uint8_t> encodeDisconnect(uint8_t level, uint8_t reason_code) {
  std::vector<uint8_t> body;
  // v5 "normal disconnection" without properties is the bare two bytes, as clients send it.
  if (level == kMqtt5 && reason_code != 0) {
    put8(body, reason_code);
    putProperties(body, {});
  }
  return frame(firstByte(PacketType::kDisconnect, 0), body);
}

std::vector<uint8_t> encodeAuth(uint8_t reason_code) {
  std::vector<uint8_t> body;
  put8(body, reason_code);
  putProperties(body, {});
  return frame(firstByte(PacketType::kAuth, 0), body);
}

}  // namespace mqttlive
