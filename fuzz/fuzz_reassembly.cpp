// libFuzzer target: TCP stream reassembly. The input is a script of segments
// (sequence offset, length, captured length, SYN/FIN), peer ACKs and flushes
// over three streams that share one small global budget.
//
// Checks after every step, besides ASan/UBSan:
//  - ReassemblyBudget.used == sum of bufferedBytes() of the streams, and both
//    per-stream and global caps hold;
//  - what the sink saw (data + gap bytes) ends exactly at nextSeq();
//  - every delivered byte is the byte the sender put at that sequence number
//    (segment contents are a fixed function of the sequence number unless the
//    script asks for conflicting retransmissions);
//  - after flush(), nothing is buffered and the budget is back to 0.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "mqttlive/tcp_reassembly.h"

using namespace mqttlive;

namespace {

uint8_t contentAt(uint32_t seq) { return static_cast<uint8_t>((seq * 2654435761u) >> 24); }

struct CheckingSink : ReassemblySink {
  bool started = false;
  uint32_t pos = 0;  // sequence number of the next byte the sink expects
  bool check_content = true;
  Micros last_ts = 0;
  uint64_t delivered = 0;
  void onData(Micros ts, std::span<const uint8_t> bytes) override {
    if (bytes.empty()) std::abort();  // empty deliveries are pointless work
    if (ts < last_ts) std::abort();
    last_ts = ts;
    for (uint8_t b : bytes) {
      if (check_content && b != contentAt(pos)) std::abort();
      ++pos;
    }
    delivered += bytes.size();
  }
  void onGap(Micros ts, uint64_t bytes, GapReason reason) override {
    if (bytes == 0 || bytes > 0x80000000ull) std::abort();
    if (static_cast<int>(reason) >= static_cast<int>(GapReason::kCount)) std::abort();
    if (ts < last_ts) std::abort();
    last_ts = ts;
    pos += static_cast<uint32_t>(bytes);
  }
};

struct Input {
  const uint8_t* p;
  size_t n;
  size_t i = 0;
  bool empty() const { return i >= n; }
  uint8_t u8() { return i < n ? p[i++] : 0; }
  uint16_t u16() { return static_cast<uint16_t>((u8() << 8) | u8()); }
  uint32_t u32() { return (uint32_t{u16()} << 16) | u16(); }
};

constexpr int kStreams = 3;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  ReassemblyBudget budget;
  budget.limit = 256 + in.u16() % 4096;
  const uint32_t flow_limit = 64 + in.u16() % 2048;
  const bool conflicting = (in.u8() & 1) != 0;
  const uint32_t isn = in.u32();

  StreamReassembler streams[kStreams];
  CheckingSink sinks[kStreams];
  ReassemblyStats stats;
  std::vector<uint8_t> payload;
  Micros ts = 0;

  auto check = [&] {
    uint64_t sum = 0;
    for (int s = 0; s < kStreams; ++s) {
      sum += streams[s].bufferedBytes();
      if (streams[s].bufferedBytes() > flow_limit) std::abort();
      if (streams[s].started() && sinks[s].started && sinks[s].pos != streams[s].nextSeq()) std::abort();
    }
    if (sum != budget.used) std::abort();
    if (budget.used > budget.limit) std::abort();
  };

  while (!in.empty()) {
    const uint8_t op = in.u8();
    const int s = (op >> 6) % kStreams;
    StreamReassembler& r = streams[s];
    CheckingSink& sink = sinks[s];
    ts += in.u8();
    switch (op & 7) {
      case 0:
      case 1:
      case 2:
      case 3: {  // a segment
        const uint8_t flags = in.u8();
        // Mostly near the initial sequence; sometimes anywhere in sequence space.
        const uint32_t off = (flags & 0x80) ? in.u32() : in.u16() % 8192;
        uint32_t len = in.u16() % 3000;
        const bool syn = (flags & 1) != 0;
        const bool fin = (flags & 2) != 0;
        uint32_t captured = len;
        if (flags & 4) captured = len == 0 ? 0 : in.u16() % (len + 1);  // snaplen cut
        const uint32_t seq = isn + off;
        const uint32_t first = syn ? seq + 1 : seq;
        payload.resize(captured);
        for (uint32_t k = 0; k < captured; ++k) payload[k] = contentAt(first + k);
        if (conflicting && (flags & 8)) {
          for (auto& b : payload) b = static_cast<uint8_t>(b ^ 0x5a);
          sink.check_content = false;  // the first copy delivered wins; not checkable here
        }
        if (!r.started()) {
          sink.started = true;
          sink.pos = first;
        }
        // A heap copy of exactly the captured bytes: any overread is an ASan report.
        std::vector<uint8_t> copy(payload);
        r.onSegment(ts, seq, syn, fin, std::span<const uint8_t>(copy.data(), copy.size()), len, sink, budget,
                    flow_limit, stats);
        break;
      }
      case 4:
      case 5: {  // the peer acknowledges
        const uint32_t ack = isn + ((op & 8) ? in.u32() : in.u16() % 8192);
        r.onPeerAck(ts, ack, sink, budget);
        break;
      }
      case 6: {  // end of stream
        r.flush(ts, sink, budget);
        if (r.bufferedBytes() != 0) std::abort();
        break;
      }
      default:
        break;
    }
    check();
  }
  for (int s = 0; s < kStreams; ++s) streams[s].flush(ts, sinks[s], budget);
  check();
  if (budget.used != 0) std::abort();
  return 0;
}
