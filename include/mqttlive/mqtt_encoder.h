// Builds MQTT control packets as bytes. Used by tests (round trips), by the
// synthetic capture writer and by the benchmark generator; never on the data path.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mqttlive/mqtt_packet.h"

namespace mqttlive {

struct ConnectSpec {
  uint8_t protocol_level = kMqtt311;
  std::string client_id;
  uint16_t keepalive = 60;
  bool clean_start = true;
  bool will = false;
  std::string will_topic = "will/topic";
  std::string will_payload = "bye";
  std::string username;          // empty = absent
  std::string password;          // empty = absent
  bool has_session_expiry = false;
  uint32_t session_expiry = 0;
};

struct ConnackSpec {
  uint8_t protocol_level = kMqtt311;
  bool session_present = false;
  uint8_t reason_code = 0;
  bool has_server_keepalive = false;
  uint16_t server_keepalive = 0;
  std::string assigned_client_id;  // empty = absent
};

std::vector<uint8_t> encodeConnect(const ConnectSpec& s);
std::vector<uint8_t> encodeConnack(const ConnackSpec& s);
std::vector<uint8_t> encodePublish(uint8_t level, const std::string& topic, uint8_t qos, uint16_t packet_id,
                                   const std::vector<uint8_t>& payload, bool retain = false, bool dup = false);
// PUBACK/PUBREC/PUBREL/PUBCOMP/UNSUBACK-style "packet id (+ v5 reason)" packets.
std::vector<uint8_t> encodeAck(PacketType type, uint8_t level, uint16_t packet_id, uint8_t reason_code = 0);
std::vector<uint8_t> encodeSubscribe(uint8_t level, uint16_t packet_id, const std::vector<std::string>& topics,
                                     uint8_t qos = 0);
std::vector<uint8_t> encodeSuback(uint8_t level, uint16_t packet_id, const std::vector<uint8_t>& codes);
std::vector<uint8_t> encodeUnsubscribe(uint8_t level, uint16_t packet_id, const std::vector<std::string>& topics);
std::vector<uint8_t> encodePingreq();
std::vector<uint8_t> encodePingresp();
// v5 with reason code (and optional session expiry); v3 ignores the arguments.
std::vector<uint8_t> encodeDisconnect(uint8_t level, uint8_t reason_code = 0);
std::vector<uint8_t> encodeAuth(uint8_t reason_code = 0);
// Variable byte integer as used by Remaining Length and property lengths.
void appendVarInt(std::vector<uint8_t>& out, uint32_t value);

}  // namespace mqttlive
