// Names used in events, logs and metric labels. Kept apart from the decoder so
// tools can name things without linking the parser.
#include "mqttlive/mqtt_decoder.h"
#include "mqttlive/mqtt_packet.h"

namespace mqttlive {

const char* packetTypeName(PacketType t) {
  static constexpr const char* kNames[kPacketTypeCount] = {
      "RESERVED",  "CONNECT", "CONNACK",     "PUBLISH",  "PUBACK",  "PUBREC",   "PUBREL",     "PUBCOMP",
      "SUBSCRIBE", "SUBACK",  "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"};
  const auto i = static_cast<unsigned>(t);
  // A PacketType built from an out-of-range integer must not index past the table.
  return i < kPacketTypeCount ? kNames[i] : "RESERVED";
}

const char* protocolName(uint8_t level) {
  switch (level) {
    case kMqtt31:
      return "3.1";
    case kMqtt311:
      return "3.1.1";
    case kMqtt5:
      return "5.0";
    default:
      return nullptr;
  }
}

const char* toString(ParseError e) {
  switch (e) {
    case ParseError::kReservedType:
      return "reserved_type";
    case ParseError::kBadFixedHeaderFlags:
      return "bad_fixed_header_flags";
    case ParseError::kInvalidQos:
      return "invalid_qos";
    case ParseError::kBadRemainingLength:
      return "bad_remaining_length";
    case ParseError::kPacketTooLarge:
      return "packet_too_large";
    case ParseError::kBadProtocolName:
      return "bad_protocol_name";
    case ParseError::kBadProtocolLevel:
      return "bad_protocol_level";
    case ParseError::kMalformedConnect:
      return "malformed_connect";
    case ParseError::kMalformedConnack:
      return "malformed_connack";
    case ParseError::kMalformedProperties:
      return "malformed_properties";
    case ParseError::kMalformedPacket:
      return "malformed_packet";
    case ParseError::kResync:
      return "resync";
    case ParseError::kCount:
      break;
  }
  return "unknown";
}

}  // namespace mqttlive
