// Stage 4: one direction of a TCP stream to in-order bytes or gap events.
// Time is an argument; the reassembler never reads a clock. Out-of-order data
// is buffered up to a per-direction cap and a shared global budget; past
// either, the hole is declared a gap (named reason) and delivery resumes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "mqttlive/types.h"

namespace mqttlive {

enum class GapReason : uint8_t {
  kNotCaptured = 0,  // later bytes were acknowledged/needed but the hole never filled
  kSnaplen,          // the frame was cut by the capture snaplen
  kFlowBufferFull,   // per-direction out-of-order cap reached
  kGlobalBufferFull, // total out-of-order budget across all flows reached
  kCount
};
const char* toString(GapReason r);

class ReassemblySink {
 public:
  virtual ~ReassemblySink() = default;
  virtual void onData(Micros ts, std::span<const uint8_t> bytes) = 0;
  // `bytes` were skipped (never delivered). Data after the gap follows via onData.
  virtual void onGap(Micros ts, uint64_t bytes, GapReason reason) = 0;
};

// Shared across all streams so that total buffered bytes stay bounded.
struct ReassemblyBudget {
  uint64_t limit = 64ull << 20;
  uint64_t used = 0;
};

struct ReassemblyStats {
  uint64_t duplicate_bytes = 0;   // retransmissions of bytes already delivered
  uint64_t overlap_bytes = 0;     // partially new segments, old part trimmed
  uint64_t out_of_order_segments = 0;
};

class StreamReassembler {
 public:
  StreamReassembler() = default;
  StreamReassembler(StreamReassembler&&) noexcept = default;
  StreamReassembler& operator=(StreamReassembler&&) noexcept = default;
  ~StreamReassembler();

  // One segment of this direction. `seq` is the TCP sequence number, `data` the
  // captured payload, `wire_len` the payload length on the wire (>= data.size()).
  // SYN consumes one sequence number; the first segment seen sets the initial
  // sequence when no SYN was captured (midstream pickup). Handles 32-bit wrap.
  void onSegment(Micros ts, uint32_t seq, bool syn, bool fin, std::span<const uint8_t> data,
                 uint32_t wire_len, ReassemblySink& sink, ReassemblyBudget& budget,
                 uint32_t flow_limit, ReassemblyStats& stats) {
    // Inline for most segments: the next bytes of an established stream (or a
    // pure ACK), nothing buffered, fully captured, no SYN/FIN. Same result as
    // the general path (process() -> deliver()), minus its bookkeeping.
    if (started_ && !syn && !fin && !pending_ && seq == next_seq_ && wire_len == data.size()) {
      if (!data.empty()) {
        sink.onData(ts, data);
        next_seq_ = seq + wire_len;
      }
      if (fin_pending_ && !fin_seen_) checkFin();
      return;
    }
    segment(ts, seq, syn, fin, data, wire_len, sink, budget, flow_limit, stats);
  }

  // The peer acknowledged `ack`: any hole below it will never be filled by a
  // capture we missed, so flush buffered data past it as a kNotCaptured gap.
  // Called for nearly every segment, and with nothing buffered and no FIN
  // awaited there is nothing to do: that check is inline.
  void onPeerAck(Micros ts, uint32_t ack, ReassemblySink& sink, ReassemblyBudget& budget) {
    if (pending_ || (fin_pending_ && !fin_seen_)) peerAck(ts, ack, sink, budget);
  }

  // End of stream (close, eviction, end of capture): deliver what is buffered,
  // holes as gaps, and release the buffer.
  void flush(Micros ts, ReassemblySink& sink, ReassemblyBudget& budget);

  // The engine's established-flow path (engine.cpp) does what the inline
  // paths of onSegment()/onPeerAck() do, without the sink calls, when these hold:
  // the segment is the next in order, fully captured, nothing is buffered and
  // no FIN is awaited ...
  bool nextInOrder(uint32_t seq, size_t captured, uint32_t wire_len) const {
    return started_ && !pending_ && !(fin_pending_ && !fin_seen_) && seq == next_seq_ && wire_len == captured;
  }
  // ... and an acknowledgement from the peer would do nothing.
  bool ackIdle() const { return !pending_ && !(fin_pending_ && !fin_seen_); }
  // What onSegment() records for such a segment with data.
  void consumed(uint32_t seq, uint32_t wire_len) { next_seq_ = seq + wire_len; }

  bool started() const { return started_; }
  bool finSeen() const { return fin_seen_; }
  // Next sequence number expected (valid once started()).
  uint32_t nextSeq() const { return next_seq_; }
  uint64_t bufferedBytes() const;

 private:
  // A buffered out-of-order segment. Defined here (not in the .cpp) because the
  // defaulted move operations above need the complete type. Covers sequence
  // space [seq, seq + wire); bytes may be shorter when the snaplen cut it.
  struct Pending {
    uint32_t seq = 0;
    uint32_t wire = 0;
    std::vector<uint8_t> bytes;
  };
  struct Piece;
  void segment(Micros ts, uint32_t seq, bool syn, bool fin, std::span<const uint8_t> data, uint32_t wire_len,
               ReassemblySink& sink, ReassemblyBudget& budget, uint32_t flow_limit, ReassemblyStats& stats);
  void process(Micros ts, Piece p, ReassemblySink& sink, ReassemblyBudget& budget, uint32_t flow_limit,
               ReassemblyStats& stats);
  void deliver(Micros ts, const Piece& p, ReassemblySink& sink);
  void deliverContiguous(Micros ts, ReassemblySink& sink, ReassemblyBudget& budget, ReassemblyStats* stats);
  void gapToFirstPending(Micros ts, ReassemblySink& sink, GapReason reason);
  void checkFin();
  void peerAck(Micros ts, uint32_t ack, ReassemblySink& sink, ReassemblyBudget& budget);

  uint32_t next_seq_ = 0;
  uint32_t fin_seq_ = 0;
  uint32_t buffered_ = 0;  // sum of pending bytes; <= flow_limit, so 32 bits suffice
  bool started_ = false;
  bool fin_seen_ = false;
  bool fin_pending_ = false;  // a FIN was captured at fin_seq_, not necessarily reached yet
  // Sorted by sequence, non-overlapping. Allocated only while segments are
  // out of order; null in steady state.
  std::unique_ptr<std::vector<Pending>> pending_;
};

}  // namespace mqttlive
