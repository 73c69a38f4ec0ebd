// What the MQTT decoder emits: one decoded control packet. String views point
// into decoder-owned or caller-owned memory and are valid only during the
// callback. Payloads (PUBLISH application data, will message, password) are
// never exposed: the password in particular never leaves the decoder.
#pragma once

#include <cstdint>
#include <string_view>

namespace mqttlive {

enum class PacketType : uint8_t {
  kReserved = 0,
  kConnect = 1,
  kConnack = 2,
  kPublish = 3,
  kPuback = 4,
  kPubrec = 5,
  kPubrel = 6,
  kPubcomp = 7,
  kSubscribe = 8,
  kSuback = 9,
  kUnsubscribe = 10,
  kUnsuback = 11,
  kPingreq = 12,
  kPingresp = 13,
  kDisconnect = 14,
  kAuth = 15,
};
constexpr int kPacketTypeCount = 16;
// Spec name: "CONNECT", ..., "AUTH"; "RESERVED" for 0.
const char* packetTypeName(PacketType t);

// MQTT protocol levels as carried in CONNECT.
constexpr uint8_t kMqtt31 = 3, kMqtt311 = 4, kMqtt5 = 5;
// "3.1", "3.1.1", "5.0", or nullptr when unknown.
const char* protocolName(uint8_t level);

struct MqttPacket {
  PacketType type = PacketType::kReserved;
  uint8_t flags = 0;              // low nibble of the fixed header
  uint32_t remaining_length = 0;

  // CONNECT
  uint8_t protocol_level = 0;     // 3, 4, 5
  bool clean_start = false;
  bool will_flag = false;
  bool username_flag = false;
  bool password_flag = false;     // presence only; the password is skipped
  uint16_t keepalive = 0;
  std::string_view client_id;     // may be empty (broker assigns one)

  // CONNACK (reason_code also serves DISCONNECT/AUTH/PUBACK... in v5)
  bool session_present = false;
  uint8_t reason_code = 0;        // CONNACK return/reason code; DISCONNECT reason (0 if absent)
  bool has_server_keepalive = false;
  uint16_t server_keepalive = 0;
  std::string_view assigned_client_id;  // empty if absent

  // v5 Session Expiry Interval (CONNECT, CONNACK, DISCONNECT)
  bool has_session_expiry = false;
  uint32_t session_expiry = 0;

  // PUBLISH / acks / SUBSCRIBE...: packet identifier when the type carries one
  uint8_t qos = 0;                // PUBLISH only
  bool has_packet_id = false;
  uint16_t packet_id = 0;
};

}  // namespace mqttlive
