// Writes classic pcap files of synthetic TCP conversations. Used by the tests
// (each close reason, takeover, midstream, reordering) and by the benchmark
// capture generator; never on the data path.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "mqttlive/types.h"

namespace mqttlive {

class PcapWriter {
 public:
  // link type: dlt::kEthernet (Ethernet II, no VLAN) or dlt::kRawIp.
  explicit PcapWriter(int link_type = 1);
  // One TCP segment as a frame (IPv4 or IPv6 by the endpoints' family).
  void addTcp(Micros ts, const Endpoint& src, const Endpoint& dst, uint32_t seq, uint32_t ack, uint8_t flags,
              const std::vector<uint8_t>& payload, uint32_t snaplen = 65535);
  void addRaw(Micros ts, const std::vector<uint8_t>& frame, uint32_t orig_len = 0);
  bool save(const std::string& path) const;  // false on I/O error
  const std::vector<uint8_t>& bytes() const { return buf_; }
  size_t frames() const { return frames_; }
  // Builds the frame addTcp would write (for tests that feed the engine directly).
  static std::vector<uint8_t> buildFrame(int link_type, const Endpoint& src, const Endpoint& dst, uint32_t seq,
                                         uint32_t ack, uint8_t flags, const std::vector<uint8_t>& payload);

 private:
  int link_;
  std::vector<uint8_t> buf_;
  size_t frames_ = 0;
};

// A scripted TCP connection between a client and a broker that keeps both
// sides' sequence numbers, so tests read like the conversation they model.
class TcpConversation {
 public:
  TcpConversation(PcapWriter& w, Endpoint client, Endpoint broker, uint32_t client_isn = 1000,
                  uint32_t broker_isn = 5000);
  void handshake(Micros ts);                       // SYN, SYN/ACK, ACK
  void client(Micros ts, const std::vector<uint8_t>& bytes);  // data (PSH/ACK), broker's ACK follows
  void broker(Micros ts, const std::vector<uint8_t>& bytes);  // data, client's ACK follows
  void clientNoAck(Micros ts, const std::vector<uint8_t>& bytes);  // data the broker never ACKs
  void brokerNoAck(Micros ts, const std::vector<uint8_t>& bytes);  // data the client never ACKs (vanished)
  void clientFin(Micros ts);
  // How the client answers the broker's FIN: closes too, only its kernel ACKs
  // (hung application), or nothing at all (vanished host).
  enum class Reply { kFin, kAckOnly, kNothing };
  void brokerFin(Micros ts, Reply reply = Reply::kFin);
  void clientRst(Micros ts);
  void brokerRst(Micros ts);
  uint32_t clientSeq() const { return cseq_; }
  uint32_t brokerSeq() const { return bseq_; }

 private:
  PcapWriter& w_;
  Endpoint c_, b_;
  uint32_t cseq_, bseq_;
};

}  // namespace mqttlive
