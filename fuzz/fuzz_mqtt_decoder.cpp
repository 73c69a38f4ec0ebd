// libFuzzer target: the MQTT decoder pair of one connection (client and broker
// direction), fed in arbitrary chunks, with gaps, at every protocol level, in
// normal and midstream (resync) mode.
//
// Input layout (fuzz/corpus_gen writes seeds in it from real captures):
//   byte 0: bits 0-1 protocol level index {0 (unknown), 3, 4, 5}
//           bit 2    start both decoders midstream
//           bit 3    small max_packet_size (64) instead of the default
//           bit 4    level fixed on both decoders (else the broker side learns
//                    it from the client's CONNECT, as the engine does)
//   then records: tag byte, optional 2-byte length, bytes
//           tag bit 7: 0 = client -> broker, 1 = broker -> client
//           tag bit 6: a TCP gap precedes this chunk (decoder.onGap())
//           tag bits 0-5: chunk length; 63 = a big-endian u16 length follows
//   A record whose length runs past the input takes what is left.
//
// Checks besides ASan/UBSan: every string_view in an emitted packet is
// readable (touched byte by byte), packet fields are consistent with the type,
// and (fixed level, not midstream, no gaps) when neither run reported an error,
// the packet types seen are the same as when each direction is fed whole.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "mqttlive/mqtt_decoder.h"

using namespace mqttlive;

namespace {

constexpr uint8_t kLevels[4] = {0, kMqtt31, kMqtt311, kMqtt5};

volatile uint8_t g_sink;

void touch(std::string_view v) {
  uint8_t x = 0;
  for (char c : v) x = static_cast<uint8_t>(x ^ static_cast<uint8_t>(c));
  g_sink = x;
}

struct Recorder : MqttDecoderCallbacks {
  std::vector<PacketType> types;
  size_t errors = 0;
  MqttDecoder* peer = nullptr;  // broker decoder, told the level on CONNECT
  bool learn = false;
  void onPacket(const MqttPacket& p) override {
    if (p.type == PacketType::kReserved) std::abort();
    if (p.type == PacketType::kPublish && p.qos > 2) std::abort();
    if (p.has_packet_id && p.type == PacketType::kPingreq) std::abort();
    if (p.type == PacketType::kConnect && p.protocol_level != kMqtt31 && p.protocol_level != kMqtt311 &&
        p.protocol_level != kMqtt5)
      std::abort();
    touch(p.client_id);
    touch(p.assigned_client_id);
    types.push_back(p.type);
    if (learn && peer != nullptr && p.type == PacketType::kConnect) peer->setProtocolLevel(p.protocol_level);
  }
  void onError(ParseError e) override {
    if (static_cast<int>(e) >= static_cast<int>(ParseError::kCount)) std::abort();
    if (toString(e) == nullptr) std::abort();
    ++errors;
  }
};

struct Chunk {
  bool broker;
  bool gap;
  const uint8_t* p;
  size_t n;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t cfg = data[0];
  const uint8_t level = kLevels[cfg & 3];
  const bool midstream = (cfg & 4) != 0;
  MqttDecoderLimits limits;
  if (cfg & 8) limits.max_packet_size = 64;
  const bool fixed = (cfg & 16) != 0;

  std::vector<Chunk> chunks;
  size_t pos = 1;
  while (pos < size) {
    const uint8_t tag = data[pos++];
    size_t n = tag & 0x3F;
    if (n == 63) {
      if (pos + 2 > size) break;
      n = (size_t{data[pos]} << 8) | data[pos + 1];
      pos += 2;
    }
    if (n > size - pos) n = size - pos;
    chunks.push_back(Chunk{(tag & 0x80) != 0, (tag & 0x40) != 0, data + pos, n});
    pos += n;
  }

  MqttDecoder dec[2];
  Recorder rec[2];
  rec[0].peer = &dec[1];
  rec[0].learn = !fixed;
  for (auto& d : dec) {
    d.setProtocolLevel(level);
    if (midstream) d.startMidstream();
  }
  bool any_gap = false;
  for (const Chunk& c : chunks) {
    const int side = c.broker ? 1 : 0;
    if (c.gap) {
      dec[side].onGap();
      any_gap = true;
    }
    // Each chunk is fed from its own heap copy so ASan sees any read past its end.
    std::vector<uint8_t> copy(c.p, c.p + c.n);
    dec[side].feed(std::span<const uint8_t>(copy.data(), copy.size()), limits, rec[side]);
  }

  if (fixed && !midstream && !any_gap) {
    // Differential: the same bytes, each direction in one piece.
    for (int side = 0; side < 2; ++side) {
      std::vector<uint8_t> whole;
      for (const Chunk& c : chunks)
        if ((c.broker ? 1 : 0) == side) whole.insert(whole.end(), c.p, c.p + c.n);
      MqttDecoder d;
      d.setProtocolLevel(level);
      Recorder r;
      d.feed(std::span<const uint8_t>(whole.data(), whole.size()), limits, r);
      if (r.errors == 0 && rec[side].errors == 0 && r.types != rec[side].types) std::abort();
    }
  }
  return 0;
}
