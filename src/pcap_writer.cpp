#include "mqttlive/pcap_writer.h"

#include "mqttlive/packet_decoder.h"

namespace mqttlive {

namespace {
void put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}
void put32(std::vector<uint8_t>& v, uint32_t x) {
  put16(v, static_cast<uint16_t>(x >> 16));
  put16(v, static_cast<uint16_t>(x));
}
void putLe32(std::vector<uint8_t>& v, uint32_t x) {
  for (int i = 0; i < 4; ++i) v.push_back(static_cast<uint8_t>(x >> (8 * i)));
}
void putLe16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x));
  v.push_back(static_cast<uint8_t>(x >> 8));
}
uint16_t checksum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += static_cast<uint32_t>(p[i] << 8 | p[i + 1]);
  if (n & 1) sum += static_cast<uint32_t>(p[n - 1] << 8);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}
}  // namespace

PcapWriter::PcapWriter(int link_type) : link_(link_type) {
  putLe32(buf_, 0xa1b2c3d4);
  putLe16(buf_, 2);
  putLe16(buf_, 4);
  putLe32(buf_, 0);
  putLe32(buf_, 0);
  putLe32(buf_, 262144);
  putLe32(buf_, static_cast<uint32_t>(link_type));
}

std::vector<uint8_t> PcapWriter::buildFrame(int link_type, const Endpoint& src, const Endpoint& dst, uint32_t seq,
                                            uint32_t ack, uint8_t flags, const std::vector<uint8_t>& payload) {
  std::vector<uint8_t> f;
  const bool v4 = src.ip.v4;
  if (link_type == dlt::kEthernet) {
    const uint8_t mac[12] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
    f.insert(f.end(), mac, mac + 12);
    put16(f, v4 ? 0x0800 : 0x86dd);
  }
  std::vector<uint8_t> tcp;
  put16(tcp, src.port);
  put16(tcp, dst.port);
  put32(tcp, seq);
  put32(tcp, (flags & tcpflag::kAck) ? ack : 0);
  tcp.push_back(5 << 4);
  tcp.push_back(flags);
  put16(tcp, 65535);
  put16(tcp, 0);  // checksum below
  put16(tcp, 0);
  tcp.insert(tcp.end(), payload.begin(), payload.end());
  // Pseudo-header checksum so tshark does not flag the synthetic frames.
  std::vector<uint8_t> pseudo;
  if (v4) {
    pseudo.insert(pseudo.end(), src.ip.bytes + 12, src.ip.bytes + 16);
    pseudo.insert(pseudo.end(), dst.ip.bytes + 12, dst.ip.bytes + 16);
    pseudo.push_back(0);
    pseudo.push_back(6);
    put16(pseudo, static_cast<uint16_t>(tcp.size()));
  } else {
    pseudo.insert(pseudo.end(), src.ip.bytes, src.ip.bytes + 16);
    pseudo.insert(pseudo.end(), dst.ip.bytes, dst.ip.bytes + 16);
    put32(pseudo, static_cast<uint32_t>(tcp.size()));
    put32(pseudo, 6);
  }
  pseudo.insert(pseudo.end(), tcp.begin(), tcp.end());
  uint16_t cs = checksum(pseudo.data(), pseudo.size());
  tcp[16] = static_cast<uint8_t>(cs >> 8);
  tcp[17] = static_cast<uint8_t>(cs);
  if (v4) {
    size_t ip = f.size();
    f.push_back(0x45);
    f.push_back(0);
    put16(f, static_cast<uint16_t>(20 + tcp.size()));
    put16(f, 0);
    put16(f, 0x4000);
    f.push_back(64);
    f.push_back(6);
    put16(f, 0);
    f.insert(f.end(), src.ip.bytes + 12, src.ip.bytes + 16);
    f.insert(f.end(), dst.ip.bytes + 12, dst.ip.bytes + 16);
    uint16_t ics = checksum(f.data() + ip, 20);
    f[ip + 10] = static_cast<uint8_t>(ics >> 8);
    f[ip + 11] = static_cast<uint8_t>(ics);
  } else {
    f.push_back(0x60);
    f.push_back(0);
    put16(f, 0);
    put16(f, static_cast<uint16_t>(tcp.size()));
    f.push_back(6);
    f.push_back(64);
    f.insert(f.end(), src.ip.bytes, src.ip.bytes + 16);
    f.insert(f.end(), dst.ip.bytes, dst.ip.bytes + 16);
  }
  f.insert(f.end(), tcp.begin(), tcp.end());
  return f;
}

void PcapWriter::addRaw(Micros ts, const std::vector<uint8_t>& frame, uint32_t orig_len) {
  putLe32(buf_, static_cast<uint32_t>(ts / kMicrosPerSecond));
  putLe32(buf_, static_cast<uint32_t>(ts % kMicrosPerSecond));
  putLe32(buf_, static_cast<uint32_t>(frame.size()));
  putLe32(buf_, orig_len != 0 ? orig_len : static_cast<uint32_t>(frame.size()));
  buf_.insert(buf_.end(), frame.begin(), frame.end());
  ++frames_;
}

void PcapWriter::addTcp(Micros ts, const Endpoint& src, const Endpoint& dst, uint32_t seq, uint32_t ack,
                        uint8_t flags, const std::vector<uint8_t>& payload, uint32_t snaplen) {
  std::vector<uint8_t> f = buildFrame(link_, src, dst, seq, ack, flags, payload);
  auto orig = static_cast<uint32_t>(f.size());
  if (f.size() > snaplen) f.resize(snaplen);
  addRaw(ts, f, orig);
}

bool PcapWriter::save(const std::string& path) const {
  std::FILE* fp = std::fopen(path.c_str(), "wb");
  if (fp == nullptr) return false;
  bool ok = std::fwrite(buf_.data(), 1, buf_.size(), fp) == buf_.size();
  return std::fclose(fp) == 0 && ok;
}

TcpConversation::TcpConversation(PcapWriter& w, Endpoint client, Endpoint broker, uint32_t client_isn,
                                 uint32_t broker_isn)
    : w_(w), c_(client), b_(broker), cseq_(client_isn), bseq_(broker_isn) {}

void TcpConversation::handshake(Micros ts) {
  w_.addTcp(ts, c_, b_, cseq_, 0, tcpflag::kSyn, {});
  ++cseq_;
  w_.addTcp(ts + 50, b_, c_, bseq_, cseq_, tcpflag::kSyn | tcpflag::kAck, {});
  ++bseq_;
  w_.addTcp(ts + 100, c_, b_, cseq_, bseq_, tcpflag::kAck, {});
}

void TcpConversation::clientNoAck(Micros ts, const std::vector<uint8_t>& bytes) {
  w_.addTcp(ts, c_, b_, cseq_, bseq_, tcpflag::kPsh | tcpflag::kAck, bytes);
  cseq_ += static_cast<uint32_t>(bytes.size());
}
void TcpConversation::client(Micros ts, const std::vector<uint8_t>& bytes) {
  clientNoAck(ts, bytes);
  w_.addTcp(ts + 20, b_, c_, bseq_, cseq_, tcpflag::kAck, {});
}
void TcpConversation::brokerNoAck(Micros ts, const std::vector<uint8_t>& bytes) {
  w_.addTcp(ts, b_, c_, bseq_, cseq_, tcpflag::kPsh | tcpflag::kAck, bytes);
  bseq_ += static_cast<uint32_t>(bytes.size());
}
void TcpConversation::broker(Micros ts, const std::vector<uint8_t>& bytes) {
  brokerNoAck(ts, bytes);
  w_.addTcp(ts + 20, c_, b_, cseq_, bseq_, tcpflag::kAck, {});
}
void TcpConversation::clientFin(Micros ts) {
  w_.addTcp(ts, c_, b_, cseq_, bseq_, tcpflag::kFin | tcpflag::kAck, {});
  ++cseq_;
  w_.addTcp(ts + 20, b_, c_, bseq_, cseq_, tcpflag::kFin | tcpflag::kAck, {});
  ++bseq_;
  w_.addTcp(ts + 40, c_, b_, cseq_, bseq_, tcpflag::kAck, {});
}
void TcpConversation::brokerFin(Micros ts, Reply reply) {
  w_.addTcp(ts, b_, c_, bseq_, cseq_, tcpflag::kFin | tcpflag::kAck, {});
  ++bseq_;
  if (reply == Reply::kAckOnly) {
    w_.addTcp(ts + 20, c_, b_, cseq_, bseq_, tcpflag::kAck, {});
    return;
  }
  if (reply == Reply::kNothing) {
    // The broker retransmits its FIN into the void.
    w_.addTcp(ts + 200000, b_, c_, bseq_ - 1, cseq_, tcpflag::kFin | tcpflag::kAck, {});
    return;
  }
  w_.addTcp(ts + 20, c_, b_, cseq_, bseq_, tcpflag::kFin | tcpflag::kAck, {});
  ++cseq_;
  w_.addTcp(ts + 40, b_, c_, bseq_, cseq_, tcpflag::kAck, {});
}
void TcpConversation::clientRst(Micros ts) { w_.addTcp(ts, c_, b_, cseq_, bseq_, tcpflag::kRst | tcpflag::kAck, {}); }
void TcpConversation::brokerRst(Micros ts) { w_.addTcp(ts, b_, c_, bseq_, cseq_, tcpflag::kRst | tcpflag::kAck, {}); }

}  // namespace mqttlive
