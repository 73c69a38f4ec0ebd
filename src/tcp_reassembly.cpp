#include "mqttlive/tcp_reassembly.h"

#include <algorithm>
#include <limits>

namespace mqttlive {

// Semantics the engine relies on:
//  - Data is delivered with the timestamp of the call that made it contiguous
//    (what a receiving application would observe), so `ts` never goes backwards.
//  - When retransmissions disagree, the copy delivered first wins: in-order
//    bytes go out as they arrive, buffered copies of bytes already delivered
//    are dropped, and among buffered segments the first received is kept.
//  - A FIN is recorded when captured and finSeen() turns true only once every
//    byte before it was delivered or declared a gap; nextSeq() then equals the
//    FIN's sequence number (the FIN itself is not counted, so the peer's ack of
//    it is nextSeq() + 1). flush() declares bytes missing before a captured FIN
//    as a kNotCaptured gap.
//  - A SYN on an already started stream is ignored entirely (retransmitted SYN
//    or a reused port; the engine decides about new connections).
//  - Sinks must not call back into, move or destroy this reassembler from
//    onData/onGap: delivery may still be walking the pending buffer.
//  - Buffered bytes are only returned to the budget by delivery or flush();
//    destroy or overwrite a reassembler only after flush().

namespace {

// Signed distance a - b in sequence space; correct across the 2^32 wrap as
// long as the two are within 2^31 of each other, which a TCP window ensures.
inline int32_t seqDiff(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b); }

}  // namespace

const char* toString(GapReason r) {
  switch (r) {
    case GapReason::kNotCaptured:
      return "not_captured";
    case GapReason::kSnaplen:
      return "snaplen";
    case GapReason::kFlowBufferFull:
      return "flow_buffer_full";
    case GapReason::kGlobalBufferFull:
      return "global_buffer_full";
    case GapReason::kCount:
      break;
  }
  return "unknown";
}

// A view of sequence space [seq, seq + wire) of which the first data.size()
// bytes were captured.
struct StreamReassembler::Piece {
  uint32_t seq = 0;
  uint32_t wire = 0;
  std::span<const uint8_t> data;

  // Precondition: n < wire.
  void trimFront(uint32_t n) {
    data = data.subspan(std::min<size_t>(n, data.size()));
    seq += n;
    wire -= n;
  }
};

StreamReassembler::~StreamReassembler() = default;

uint64_t StreamReassembler::bufferedBytes() const { return buffered_; }

void StreamReassembler::segment(Micros ts, uint32_t seq, bool syn, bool fin, std::span<const uint8_t> data,
                                uint32_t wire_len, ReassemblySink& sink, ReassemblyBudget& budget,
                                uint32_t flow_limit, ReassemblyStats& stats) {
  if (!started_) {
    started_ = true;
    next_seq_ = syn ? seq + 1 : seq;
  } else if (syn) {
    return;
  }
  Piece p;
  p.seq = syn ? seq + 1 : seq;
  p.data = data;
  // The decoder guarantees wire_len >= data.size(); if a caller does not, the
  // captured bytes are the better witness.
  p.wire = std::max(wire_len, static_cast<uint32_t>(data.size()));
  if (fin) {
    fin_pending_ = true;
    fin_seq_ = p.seq + p.wire;
  }
  if (p.wire > 0) process(ts, p, sink, budget, flow_limit, stats);
  checkFin();
}

void StreamReassembler::process(Micros ts, Piece p, ReassemblySink& sink, ReassemblyBudget& budget,
                                uint32_t flow_limit, ReassemblyStats& stats) {
  // Each pass either finishes or delivers at least one buffered segment, so
  // the loop runs at most (buffered segments + 1) times.
  for (;;) {
    const int32_t off = seqDiff(p.seq, next_seq_);
    if (off <= 0) {
      const uint32_t behind = next_seq_ - p.seq;
      if (behind >= p.wire) {
        stats.duplicate_bytes += p.wire;
        return;
      }
      if (behind > 0) {
        stats.overlap_bytes += behind;
        p.trimFront(behind);
      }
      deliver(ts, p, sink);
      deliverContiguous(ts, sink, budget, &stats);
      return;
    }
    // More than 2^31 ahead cannot be in any TCP window and would break the
    // ordering of the buffer; it is not data of this stream.
    if (static_cast<int64_t>(off) + p.wire > std::numeric_limits<int32_t>::max()) return;

    // Walk the parts of p not already buffered (keep-first among buffered
    // data). Offsets are relative to next_seq_, where every buffered segment
    // lies strictly ahead, so plain unsigned order is sequence order.
    const std::span<const Pending> segs =
        pending_ ? std::span<const Pending>(*pending_) : std::span<const Pending>();
    const uint64_t a = static_cast<uint32_t>(off);
    const uint64_t b = a + p.wire;
    auto rel = [this](uint32_t s) -> uint64_t { return s - next_seq_; };
    const size_t first =
        static_cast<size_t>(std::partition_point(segs.begin(), segs.end(),
                                                 [&](const Pending& s) { return rel(s.seq) + s.wire <= a; }) -
                            segs.begin());
    uint64_t new_wire = 0;
    uint64_t new_bytes = 0;
    const uint64_t captured = p.data.size();
    for (uint64_t cur = a, i = first; cur < b;) {
      if (i < segs.size() && rel(segs[i].seq) <= cur) {
        cur = std::max(cur, rel(segs[i].seq) + segs[i].wire);
        ++i;
        continue;
      }
      const uint64_t stop = i < segs.size() ? std::min(rel(segs[i].seq), b) : b;
      new_wire += stop - cur;
      new_bytes += std::min(stop - a, captured) - std::min(cur - a, captured);
      cur = stop;
    }
    if (new_wire == 0) {
      stats.duplicate_bytes += p.wire;
      return;
    }

    const bool flow_full = buffered_ + new_bytes > flow_limit;
    const bool global_full = budget.used + new_bytes > budget.limit;
    if (flow_full || global_full) {
      const GapReason reason = flow_full ? GapReason::kFlowBufferFull : GapReason::kGlobalBufferFull;
      if (pending_) {
        // Make room by giving up on the oldest hole, then look at p again:
        // it may now be in order or overlap what was just delivered.
        gapToFirstPending(ts, sink, reason);
        deliverContiguous(ts, sink, budget, &stats);
        continue;
      }
      // Nothing of ours to give up: p alone does not fit, so it skips the hole.
      sink.onGap(ts, static_cast<uint32_t>(off), reason);
      next_seq_ = p.seq;
      deliver(ts, p, sink);
      return;
    }

    if (!pending_) pending_ = std::make_unique<std::vector<Pending>>();
    std::vector<Pending>& store = *pending_;
    // Same walk as above; each insertion lands at index i and the walk steps
    // past it, so the indices of the remaining entries stay right.
    uint64_t cur = a;
    size_t i = first;
    while (cur < b) {
      if (i < store.size() && rel(store[i].seq) <= cur) {
        cur = std::max(cur, rel(store[i].seq) + store[i].wire);
        ++i;
        continue;
      }
      const uint64_t stop = i < store.size() ? std::min(rel(store[i].seq), b) : b;
      const size_t from = static_cast<size_t>(std::min(cur - a, captured));
      const size_t to = static_cast<size_t>(std::min(stop - a, captured));
      Pending seg;
      seg.seq = next_seq_ + static_cast<uint32_t>(cur);
      seg.wire = static_cast<uint32_t>(stop - cur);
      seg.bytes.assign(p.data.begin() + static_cast<ptrdiff_t>(from),
                       p.data.begin() + static_cast<ptrdiff_t>(to));
      store.insert(store.begin() + static_cast<ptrdiff_t>(i), std::move(seg));
      ++i;
      cur = stop;
    }
    buffered_ += static_cast<uint32_t>(new_bytes);
    budget.used += new_bytes;
    stats.overlap_bytes += p.wire - new_wire;
    ++stats.out_of_order_segments;
    return;
  }
}

void StreamReassembler::deliver(Micros ts, const Piece& p, ReassemblySink& sink) {
  if (!p.data.empty()) sink.onData(ts, p.data);
  if (p.wire > p.data.size()) sink.onGap(ts, p.wire - p.data.size(), GapReason::kSnaplen);
  next_seq_ = p.seq + p.wire;
}

void StreamReassembler::deliverContiguous(Micros ts, ReassemblySink& sink, ReassemblyBudget& budget,
                                          ReassemblyStats* stats) {
  if (!pending_) return;
  std::vector<Pending>& segs = *pending_;
  size_t done = 0;
  // Spans handed to the sink point into segs, so nothing is erased until the
  // walk is over.
  while (done < segs.size() && seqDiff(segs[done].seq, next_seq_) <= 0) {
    const Pending& s = segs[done++];
    Piece p;
    p.seq = s.seq;
    p.wire = s.wire;
    p.data = s.bytes;
    const uint32_t behind = next_seq_ - s.seq;
    if (behind >= p.wire) {
      if (stats != nullptr) stats->duplicate_bytes += p.wire;
      continue;
    }
    if (behind > 0) {
      if (stats != nullptr) stats->overlap_bytes += behind;
      p.trimFront(behind);
    }
    deliver(ts, p, sink);
  }
  if (done == 0) return;
  uint64_t released = 0;
  for (size_t i = 0; i < done; ++i) released += segs[i].bytes.size();
  buffered_ -= static_cast<uint32_t>(released);
  budget.used -= released;
  if (done == segs.size()) {
    pending_.reset();
  } else {
    segs.erase(segs.begin(), segs.begin() + static_cast<ptrdiff_t>(done));
  }
}

void StreamReassembler::gapToFirstPending(Micros ts, ReassemblySink& sink, GapReason reason) {
  const uint32_t first = pending_->front().seq;
  // Buffered segments are strictly ahead of next_seq_ between calls; the check
  // only guarantees next_seq_ can never move backwards.
  if (seqDiff(first, next_seq_) > 0) {
    sink.onGap(ts, first - next_seq_, reason);
    next_seq_ = first;
  }
}

void StreamReassembler::checkFin() {
  // next_seq_ deliberately stays at the FIN: stepping over its sequence slot
  // could put bytes buffered after a (bogus) FIN behind next_seq_.
  if (fin_pending_ && !fin_seen_ && seqDiff(next_seq_, fin_seq_) >= 0) fin_seen_ = true;
}

void StreamReassembler::peerAck(Micros ts, uint32_t ack, ReassemblySink& sink, ReassemblyBudget& budget) {
  // With nothing buffered the missing bytes may simply not have reached the
  // capture yet (multi-queue NICs reorder), so only a hole that later
  // captured data already sits behind is given up.
  if (!started_) return;
  while (pending_ && seqDiff(ack, next_seq_) > 0) {
    gapToFirstPending(ts, sink, GapReason::kNotCaptured);
    deliverContiguous(ts, sink, budget, nullptr);
  }
  checkFin();
}

void StreamReassembler::flush(Micros ts, ReassemblySink& sink, ReassemblyBudget& budget) {
  while (pending_) {
    gapToFirstPending(ts, sink, GapReason::kNotCaptured);
    deliverContiguous(ts, sink, budget, nullptr);
  }
  if (started_ && fin_pending_ && !fin_seen_ && seqDiff(fin_seq_, next_seq_) > 0) {
    sink.onGap(ts, fin_seq_ - next_seq_, GapReason::kNotCaptured);
    next_seq_ = fin_seq_;
  }
  checkFin();
}

}  // namespace mqttlive
