// MQTT encoder: byte-exact packets. The expected bytes were checked against
// Wireshark's MQTT dissector (no expert warnings) and the spec's examples, so
// the decoder round trips do not merely agree with themselves.
#include "mqttlive/mqtt_encoder.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace mqttlive {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes hex(const std::string& h) {
  Bytes out;
  for (size_t i = 0; i + 1 < h.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}

TEST(MqttEncoder, VarIntBoundaries) {
  // Spec 1.5.5 table of Variable Byte Integer sizes.
  const std::pair<uint32_t, std::string> cases[] = {
      {0, "00"},         {127, "7f"},         {128, "8001"},         {16383, "ff7f"},
      {16384, "808001"}, {2097151, "ffff7f"}, {2097152, "80808001"}, {268435455, "ffffff7f"}};
  for (const auto& [value, expected] : cases) {
    Bytes out;
    appendVarInt(out, value);
    EXPECT_EQ(out, hex(expected)) << value;
  }
}

TEST(MqttEncoder, ConnectEveryLevel) {
  ConnectSpec s;
  s.client_id = "a";
  s.protocol_level = kMqtt311;
  EXPECT_EQ(encodeConnect(s), hex("100d00044d5154540402003c000161"));
  s.protocol_level = kMqtt31;
  EXPECT_EQ(encodeConnect(s), hex("100f00064d514973647003"
                                  "02003c000161"));
  s.protocol_level = kMqtt5;
  EXPECT_EQ(encodeConnect(s), hex("100e00044d5154540502003c00000161"));
}

TEST(MqttEncoder, ConnectWithWillUserPasswordAndSessionExpiry) {
  ConnectSpec s;
  s.protocol_level = kMqtt5;
  s.client_id = "cid5";
  s.keepalive = 42;
  s.will = true;
  s.username = "u";
  s.password = "s3cr3t-pw";
  s.has_session_expiry = true;
  s.session_expiry = 99;
  EXPECT_EQ(encodeConnect(s), hex("103600044d51545405c6002a0511000000630004636964350000"
                                  "0a77696c6c2f746f706963000362796500017500097333637233742d7077"));
  s.protocol_level = kMqtt311;  // no properties anywhere
  EXPECT_EQ(encodeConnect(s), hex("102f00044d51545404c6002a00046369643500"
                                  "0a77696c6c2f746f706963000362796500017500097333637233742d7077"));
}

TEST(MqttEncoder, Connack) {
  ConnackSpec s;
  s.session_present = true;
  EXPECT_EQ(encodeConnack(s), hex("20020100"));
  s.protocol_level = kMqtt5;
  s.has_server_keepalive = true;
  s.server_keepalive = 17;
  s.assigned_client_id = "assigned";
  EXPECT_EQ(encodeConnack(s), hex("201101000e13001112000861737369676e6564"));
  s.has_server_keepalive = false;
  s.assigned_client_id.clear();
  s.reason_code = 0x86;
  EXPECT_EQ(encodeConnack(s), hex("2003018600"));
}

TEST(MqttEncoder, Publish) {
  EXPECT_EQ(encodePublish(kMqtt311, "a/b", 1, 7, {'h', 'i'}, true), hex("33090003612f6200076869"));
  EXPECT_EQ(encodePublish(kMqtt5, "a/b", 1, 7, {'h', 'i'}, true), hex("330a0003612f620007006869"));
  EXPECT_EQ(encodePublish(kMqtt311, "t", 0, 0, {}), hex("3003000174"));
  EXPECT_EQ(encodePublish(kMqtt311, "t", 2, 1, {}, false, true), hex("3c050001740001"));
  const Bytes big = encodePublish(kMqtt311, "t", 0, 0, Bytes(200, 0));
  EXPECT_EQ(Bytes(big.begin(), big.begin() + 3), hex("30cb01"));  // 203 = 0xcb 0x01
  EXPECT_EQ(big.size(), 3u + 203u);
}

TEST(MqttEncoder, Acks) {
  EXPECT_EQ(encodeAck(PacketType::kPuback, kMqtt311, 7), hex("40020007"));
  EXPECT_EQ(encodeAck(PacketType::kPuback, kMqtt5, 7), hex("40020007"));
  EXPECT_EQ(encodeAck(PacketType::kPuback, kMqtt5, 7, 0x10), hex("400400071000"));
  EXPECT_EQ(encodeAck(PacketType::kPubrec, kMqtt311, 8), hex("50020008"));
  EXPECT_EQ(encodeAck(PacketType::kPubrel, kMqtt31, 8), hex("62020008"));
  EXPECT_EQ(encodeAck(PacketType::kPubcomp, kMqtt311, 8), hex("70020008"));
  EXPECT_EQ(encodeAck(PacketType::kUnsuback, kMqtt311, 10), hex("b002000a"));
  EXPECT_EQ(encodeAck(PacketType::kUnsuback, kMqtt5, 10), hex("b004000a0000"));
}

TEST(MqttEncoder, SubscribeSubackUnsubscribe) {
  EXPECT_EQ(encodeSubscribe(kMqtt311, 9, {"s/#", "t"}, 1), hex("820c00090003732f230100017401"));
  EXPECT_EQ(encodeSubscribe(kMqtt5, 9, {"s/#", "t"}, 1), hex("820d0009000003732f230100017401"));
  EXPECT_EQ(encodeSuback(kMqtt311, 9, {1, 0}), hex("900400090100"));
  EXPECT_EQ(encodeSuback(kMqtt5, 9, {1, 0}), hex("90050009000100"));
  EXPECT_EQ(encodeUnsubscribe(kMqtt311, 10, {"s/#"}), hex("a207000a0003732f23"));
  EXPECT_EQ(encodeUnsubscribe(kMqtt5, 10, {"s/#"}), hex("a208000a000003732f23"));
}

TEST(MqttEncoder, PingDisconnectAuth) {
  EXPECT_EQ(encodePingreq(), hex("c000"));
  EXPECT_EQ(encodePingresp(), hex("d000"));
  EXPECT_EQ(encodeDisconnect(kMqtt311), hex("e000"));
  EXPECT_EQ(encodeDisconnect(kMqtt311, 0x04), hex("e000"));  // no reason codes before v5
  EXPECT_EQ(encodeDisconnect(kMqtt5), hex("e000"));
  EXPECT_EQ(encodeDisconnect(kMqtt5, 0x04), hex("e0020400"));
  EXPECT_EQ(encodeAuth(0x18), hex("f0021800"));
}

}  // namespace
}  // namespace mqttlive
