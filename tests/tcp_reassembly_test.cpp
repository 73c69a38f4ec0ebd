#include "mqttlive/tcp_reassembly.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace mqttlive {
namespace {

using Bytes = std::vector<uint8_t>;

struct Event {
  bool gap = false;
  uint64_t gap_bytes = 0;
  GapReason reason = GapReason::kCount;
  std::string data;
  Micros ts = 0;
  const uint8_t* ptr = nullptr;
};

// Records every callback and also lays the stream out by position so that
// tests can check delivered bytes against the original at the right offset.
class RecordingSink : public ReassemblySink {
 public:
  explicit RecordingSink(const Bytes* original = nullptr) : original_(original) {}

  void onData(Micros ts, std::span<const uint8_t> bytes) override {
    ASSERT_FALSE(bytes.empty()) << "empty onData";
    Event e;
    e.data.assign(bytes.begin(), bytes.end());
    e.ts = ts;
    e.ptr = bytes.data();
    events.push_back(e);
    if (original_ != nullptr) {
      ASSERT_LE(pos + bytes.size(), original_->size());
      for (size_t i = 0; i < bytes.size(); ++i)
        ASSERT_EQ(bytes[i], (*original_)[pos + i]) << "at stream offset " << pos + i;
    }
    data += e.data;
    pos += bytes.size();
  }
  void onGap(Micros ts, uint64_t bytes, GapReason reason) override {
    ASSERT_GT(bytes, 0u) << "empty gap";
    Event e;
    e.gap = true;
    e.gap_bytes = bytes;
    e.reason = reason;
    e.ts = ts;
    events.push_back(e);
    pos += bytes;
    gap_bytes += bytes;
  }

  std::vector<Event> gaps() const {
    std::vector<Event> g;
    for (const Event& e : events)
      if (e.gap) g.push_back(e);
    return g;
  }

  std::vector<Event> events;
  std::string data;
  uint64_t pos = 0;
  uint64_t gap_bytes = 0;

 private:
  const Bytes* original_;
};

Bytes makeStream(size_t n, uint32_t seed = 1) {
  std::mt19937 rng(seed);
  Bytes b(n);
  for (uint8_t& c : b) c = static_cast<uint8_t>(rng());
  return b;
}

std::string str(const Bytes& b, size_t from, size_t len) {
  return std::string(b.begin() + static_cast<ptrdiff_t>(from),
                     b.begin() + static_cast<ptrdiff_t>(from + len));
}

// One direction plus everything it needs, with helpers that speak in stream
// offsets (relative to the byte after the SYN).
struct Harness {
  explicit Harness(uint32_t isn_in, const Bytes* original = nullptr, uint32_t flow_limit_in = 1u << 20)
      : isn(isn_in), sink(original), flow_limit(flow_limit_in) {}

  uint32_t seqAt(size_t offset) const { return isn + 1 + static_cast<uint32_t>(offset); }
  void syn(Micros ts = 0) { r.onSegment(ts, isn, true, false, {}, 0, sink, budget, flow_limit, stats); }
  void seg(const Bytes& stream, size_t off, size_t len, Micros ts = 0, bool fin = false) {
    std::span<const uint8_t> d(stream.data() + off, len);
    r.onSegment(ts, seqAt(off), false, fin, d, static_cast<uint32_t>(len), sink, budget, flow_limit, stats);
  }
  // Segment whose capture kept only `captured` of `len` bytes.
  void cutSeg(const Bytes& stream, size_t off, size_t len, size_t captured) {
    std::span<const uint8_t> d(stream.data() + off, captured);
    r.onSegment(0, seqAt(off), false, false, d, static_cast<uint32_t>(len), sink, budget, flow_limit, stats);
  }
  void ackTo(size_t offset, Micros ts = 0) { r.onPeerAck(ts, seqAt(offset), sink, budget); }
  void flush(Micros ts = 0) { r.flush(ts, sink, budget); }

  uint32_t isn;
  StreamReassembler r;
  RecordingSink sink;
  ReassemblyBudget budget;
  ReassemblyStats stats;
  uint32_t flow_limit;
};

TEST(TcpReassembly, GapReasonNames) {
  EXPECT_STREQ(toString(GapReason::kNotCaptured), "not_captured");
  EXPECT_STREQ(toString(GapReason::kSnaplen), "snaplen");
  EXPECT_STREQ(toString(GapReason::kFlowBufferFull), "flow_buffer_full");
  EXPECT_STREQ(toString(GapReason::kGlobalBufferFull), "global_buffer_full");
}

TEST(TcpReassembly, InOrderDeliversWithoutCopy) {
  Bytes s = makeStream(300);
  Harness h(1000, &s);
  EXPECT_FALSE(h.r.started());
  h.syn();
  EXPECT_TRUE(h.r.started());
  EXPECT_EQ(h.r.nextSeq(), 1001u);
  for (size_t off = 0; off < 300; off += 100) {
    h.seg(s, off, 100, static_cast<Micros>(off));
    ASSERT_FALSE(h.sink.events.empty());
    // Straight from the caller's buffer: nothing was copied or buffered.
    EXPECT_EQ(h.sink.events.back().ptr, s.data() + off);
    EXPECT_EQ(h.sink.events.back().ts, static_cast<Micros>(off));
    EXPECT_EQ(h.r.bufferedBytes(), 0u);
  }
  EXPECT_EQ(h.sink.events.size(), 3u);
  EXPECT_EQ(h.sink.data, str(s, 0, 300));
  EXPECT_EQ(h.r.nextSeq(), 1301u);
  EXPECT_EQ(h.stats.out_of_order_segments, 0u);
  EXPECT_EQ(h.budget.used, 0u);
}

TEST(TcpReassembly, MidstreamPickupStartsAtFirstSegment) {
  Bytes s = makeStream(50);
  Harness h(5000, &s);
  h.seg(s, 0, 20);
  EXPECT_TRUE(h.r.started());
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(20));
  h.seg(s, 20, 30);
  EXPECT_EQ(h.sink.data, str(s, 0, 50));
}

TEST(TcpReassembly, FullyReversedOrder) {
  Bytes s = makeStream(1000);
  Harness h(77, &s);
  h.syn();
  for (int i = 9; i >= 0; --i) h.seg(s, static_cast<size_t>(i) * 100, 100, 10 - i);
  EXPECT_EQ(h.sink.data, str(s, 0, 1000));
  EXPECT_TRUE(h.sink.gaps().empty());
  EXPECT_EQ(h.stats.out_of_order_segments, 9u);
  EXPECT_EQ(h.r.bufferedBytes(), 0u);
  EXPECT_EQ(h.budget.used, 0u);
  // Buffered data goes out with the time it became deliverable.
  for (const Event& e : h.sink.events) EXPECT_EQ(e.ts, 10);
}

TEST(TcpReassembly, RandomPermutationWithDuplicatesAndOverlaps) {
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    std::mt19937 rng(seed);
    const size_t n = 200 + rng() % 3000;
    Bytes s = makeStream(n, seed);
    // ISNs near the wrap on some seeds.
    const uint32_t isn =
        seed % 3 == 0 ? 0xffffffffu - static_cast<uint32_t>(rng() % 2000) : static_cast<uint32_t>(rng());
    struct Range {
      size_t off, len;
    };
    std::vector<Range> ranges;
    // A tiling that covers everything, plus random extra ranges that overlap it.
    for (size_t off = 0; off < n;) {
      size_t len = std::min<size_t>(n - off, 1 + rng() % 200);
      ranges.push_back({off, len});
      off += len;
    }
    const size_t extra = rng() % 40;
    for (size_t i = 0; i < extra; ++i) {
      size_t off = rng() % n;
      size_t len = std::min<size_t>(n - off, 1 + rng() % 300);
      ranges.push_back({off, len});
    }
    std::shuffle(ranges.begin(), ranges.end(), rng);
    Harness h(isn, &s);
    h.syn();
    for (const Range& r : ranges) {
      h.seg(s, r.off, r.len);
      ASSERT_EQ(h.budget.used, h.r.bufferedBytes()) << "seed " << seed;
    }
    ASSERT_EQ(h.sink.data.size(), n) << "seed " << seed;
    ASSERT_EQ(h.sink.data, str(s, 0, n)) << "seed " << seed;
    EXPECT_TRUE(h.sink.gaps().empty()) << "seed " << seed;
    EXPECT_EQ(h.r.bufferedBytes(), 0u);
    EXPECT_EQ(h.budget.used, 0u);
    EXPECT_EQ(h.r.nextSeq(), h.seqAt(n));
    // Every byte that was not delivered fresh is accounted as a duplicate or an overlap.
    uint64_t fed = 0;
    for (const Range& r : ranges) fed += r.len;
    EXPECT_EQ(fed, n + h.stats.duplicate_bytes + h.stats.overlap_bytes) << "seed " << seed;
  }
}

TEST(TcpReassembly, SequenceWraparound) {
  Bytes s = makeStream(200);
  Harness h(0xffffffa0u, &s);  // data spans the 2^32 boundary
  h.syn();
  h.seg(s, 0, 50);
  h.seg(s, 150, 50);  // buffered, past the wrap
  h.seg(s, 100, 50);  // buffered, straddles the wrap
  h.seg(s, 40, 70);   // overlaps both sides
  EXPECT_EQ(h.sink.data, str(s, 0, 200));
  EXPECT_EQ(h.r.nextSeq(), 0xffffffa0u + 1 + 200);
  EXPECT_LT(h.r.nextSeq(), 0x100u);
  // Retransmission from before the wrap is recognized as old.
  h.seg(s, 0, 100);
  EXPECT_EQ(h.sink.data.size(), 200u);
  EXPECT_EQ(h.stats.duplicate_bytes, 100u);
}

TEST(TcpReassembly, DuplicateAndOverlapStats) {
  Bytes s = makeStream(100);
  Harness h(0, &s);
  h.syn();
  h.seg(s, 0, 40);
  h.seg(s, 10, 20);  // entirely old
  EXPECT_EQ(h.stats.duplicate_bytes, 20u);
  h.seg(s, 30, 30);  // 10 old, 20 new
  EXPECT_EQ(h.stats.overlap_bytes, 10u);
  EXPECT_EQ(h.sink.data, str(s, 0, 60));
  EXPECT_EQ(h.sink.events.back().ptr, s.data() + 40);  // trimmed, still not copied
}

TEST(TcpReassembly, OverlapsAmongBufferedSegments) {
  Bytes s = makeStream(100);
  Harness h(0, &s);
  h.syn();
  h.seg(s, 0, 10);
  h.seg(s, 30, 20);  // [30,50)
  h.seg(s, 40, 30);  // [40,70): 10 overlap, 20 new
  h.seg(s, 20, 60);  // [20,80): fills around both
  h.seg(s, 35, 10);  // entirely buffered already
  EXPECT_EQ(h.r.bufferedBytes(), 60u);
  EXPECT_EQ(h.budget.used, 60u);
  EXPECT_EQ(h.stats.duplicate_bytes, 10u);
  h.seg(s, 10, 15);  // [10,25) fills the hole and overlaps the buffer
  EXPECT_EQ(h.sink.data, str(s, 0, 80));
  EXPECT_EQ(h.budget.used, 0u);
  EXPECT_TRUE(h.sink.gaps().empty());
}

TEST(TcpReassembly, PeerAckDeclaresHoleBeforeBufferedData) {
  Bytes s = makeStream(300);
  Harness h(100, &s);
  h.syn();
  h.seg(s, 0, 100);
  h.seg(s, 150, 50);
  h.seg(s, 250, 50);
  // An ack that does not pass next_seq changes nothing.
  h.ackTo(100);
  h.ackTo(50);
  EXPECT_TRUE(h.sink.gaps().empty());
  h.ackTo(120, 9);
  auto gaps = h.sink.gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].gap_bytes, 50u);
  EXPECT_EQ(gaps[0].reason, GapReason::kNotCaptured);
  EXPECT_EQ(gaps[0].ts, 9);
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(200));
  EXPECT_EQ(h.r.bufferedBytes(), 50u);
  // An ack past the second hole gives that one up as well.
  h.ackTo(300);
  gaps = h.sink.gaps();
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_EQ(gaps[1].gap_bytes, 50u);
  EXPECT_EQ(h.sink.pos, 300u);
  EXPECT_EQ(h.budget.used, 0u);
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(300));
}

TEST(TcpReassembly, PeerAckWithNothingBufferedWaits) {
  Bytes s = makeStream(200);
  Harness h(100, &s);
  h.syn();
  h.seg(s, 0, 50);
  h.ackTo(200);  // data may still arrive later in the capture
  EXPECT_TRUE(h.sink.gaps().empty());
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(50));
  h.seg(s, 50, 150);
  EXPECT_EQ(h.sink.data, str(s, 0, 200));
}

TEST(TcpReassembly, PeerAckBeforeStartIsIgnored) {
  Harness h(100);
  h.ackTo(500);
  EXPECT_FALSE(h.r.started());
  EXPECT_TRUE(h.sink.events.empty());
}

TEST(TcpReassembly, FlushDeliversWithGapsAndReleases) {
  Bytes s = makeStream(400);
  Harness h(42, &s);
  h.syn();
  h.seg(s, 0, 100);
  h.seg(s, 300, 100);
  h.seg(s, 150, 50);
  EXPECT_EQ(h.budget.used, 150u);
  h.flush(5);
  auto gaps = h.sink.gaps();
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_EQ(gaps[0].gap_bytes, 50u);
  EXPECT_EQ(gaps[1].gap_bytes, 100u);
  for (const Event& g : gaps) EXPECT_EQ(g.reason, GapReason::kNotCaptured);
  EXPECT_EQ(h.sink.pos, 400u);
  EXPECT_EQ(h.budget.used, 0u);
  EXPECT_EQ(h.r.bufferedBytes(), 0u);
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(400));
  // Flushing again is a no-op.
  size_t before = h.sink.events.size();
  h.flush();
  EXPECT_EQ(h.sink.events.size(), before);
}

TEST(TcpReassembly, SnaplenInOrder) {
  Bytes s = makeStream(200);
  Harness h(1, &s);
  h.syn();
  h.cutSeg(s, 0, 100, 60);
  ASSERT_EQ(h.sink.events.size(), 2u);
  EXPECT_EQ(h.sink.events[0].data, str(s, 0, 60));
  EXPECT_TRUE(h.sink.events[1].gap);
  EXPECT_EQ(h.sink.events[1].gap_bytes, 40u);
  EXPECT_EQ(h.sink.events[1].reason, GapReason::kSnaplen);
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(100));
  h.seg(s, 100, 100);
  EXPECT_EQ(h.sink.pos, 200u);
  // A header-only capture is all gap.
  h.cutSeg(s, 0, 0, 0);  // old, ignored
  Bytes t = makeStream(300);
  Harness k(1, &t);
  k.syn();
  k.cutSeg(t, 0, 100, 0);
  ASSERT_EQ(k.sink.events.size(), 1u);
  EXPECT_EQ(k.sink.events[0].reason, GapReason::kSnaplen);
}

TEST(TcpReassembly, SnaplenOnBufferedAndOverlappingSegments) {
  Bytes s = makeStream(300);
  Harness h(1, &s);
  h.syn();
  h.cutSeg(s, 100, 100, 30);  // buffered: 30 captured, 70 missing
  EXPECT_EQ(h.r.bufferedBytes(), 30u);
  h.seg(s, 0, 100);
  ASSERT_EQ(h.sink.gaps().size(), 1u);
  EXPECT_EQ(h.sink.gaps()[0].gap_bytes, 70u);
  EXPECT_EQ(h.sink.gaps()[0].reason, GapReason::kSnaplen);
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(200));
  EXPECT_EQ(h.budget.used, 0u);
  // Old segment whose captured part is all old but whose missing tail reaches new data.
  h.cutSeg(s, 150, 100, 20);
  ASSERT_EQ(h.sink.gaps().size(), 2u);
  EXPECT_EQ(h.sink.gaps()[1].gap_bytes, 50u);
  EXPECT_EQ(h.sink.pos, 250u);
}

TEST(TcpReassembly, FlowLimitDeclaresGapAndResumes) {
  Bytes s = makeStream(600);
  Harness h(9, &s, /*flow_limit=*/100);
  h.syn();
  h.seg(s, 0, 100);
  h.seg(s, 200, 50);  // hole [100,200)
  h.seg(s, 250, 50);  // contiguous with the buffered one; buffer now full (100)
  EXPECT_EQ(h.r.bufferedBytes(), 100u);
  h.seg(s, 400, 30);  // does not fit: give up [100,200), deliver [200,300), then buffer
  auto gaps = h.sink.gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].gap_bytes, 100u);
  EXPECT_EQ(gaps[0].reason, GapReason::kFlowBufferFull);
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(300));
  EXPECT_EQ(h.r.bufferedBytes(), 30u);
  EXPECT_EQ(h.budget.used, 30u);
  h.flush();
  gaps = h.sink.gaps();
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_EQ(gaps[1].reason, GapReason::kNotCaptured);
  EXPECT_EQ(gaps[1].gap_bytes, 100u);
  EXPECT_EQ(h.sink.pos, 430u);
  EXPECT_EQ(h.budget.used, 0u);
}

TEST(TcpReassembly, FlowLimitMakingRoomCanMakeSegmentInOrder) {
  Bytes s = makeStream(400);
  Harness h(9, &s, 100);
  h.syn();
  h.seg(s, 100, 100);  // hole [0,100), buffer full
  h.seg(s, 150, 150);  // overlaps the buffer; 100 new bytes do not fit
  auto gaps = h.sink.gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].reason, GapReason::kFlowBufferFull);
  EXPECT_EQ(gaps[0].gap_bytes, 100u);
  // After the first buffered segment went out, the new one was in order.
  EXPECT_EQ(h.sink.pos, 300u);
  EXPECT_EQ(h.budget.used, 0u);
  EXPECT_EQ(h.stats.overlap_bytes, 50u);
}

TEST(TcpReassembly, SegmentLargerThanFlowLimitGoesThroughAfterGap) {
  Bytes s = makeStream(500);
  Harness h(9, &s, 100);
  h.syn();
  h.seg(s, 0, 10);
  h.seg(s, 200, 300);
  auto gaps = h.sink.gaps();
  ASSERT_EQ(gaps.size(), 1u);
  EXPECT_EQ(gaps[0].gap_bytes, 190u);
  EXPECT_EQ(gaps[0].reason, GapReason::kFlowBufferFull);
  EXPECT_EQ(h.sink.events.back().ptr, s.data() + 200);  // not copied
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(500));
  EXPECT_EQ(h.budget.used, 0u);
  EXPECT_EQ(h.r.bufferedBytes(), 0u);
  // The late hole data is now old.
  h.seg(s, 10, 190);
  EXPECT_EQ(h.stats.duplicate_bytes, 190u);
}

TEST(TcpReassembly, GlobalBudgetSharedAcrossStreams) {
  Bytes s = makeStream(1000);
  ReassemblyBudget budget;
  budget.limit = 100;
  ReassemblyStats stats;
  RecordingSink sink_a(&s), sink_b(&s);
  StreamReassembler a, b;
  auto feed = [&](StreamReassembler& r, RecordingSink& sink, size_t off, size_t len) {
    r.onSegment(0, 1000 + static_cast<uint32_t>(off), false, false,
                std::span<const uint8_t>(s.data() + off, len), static_cast<uint32_t>(len), sink, budget,
                1u << 20, stats);
  };
  feed(a, sink_a, 0, 10);
  feed(b, sink_b, 0, 10);
  feed(a, sink_a, 50, 80);  // a holds 80 of the 100
  EXPECT_EQ(budget.used, 80u);
  feed(b, sink_b, 30, 10);  // fits: 90
  EXPECT_EQ(budget.used, 90u);
  // b wants 30 more: it gives up its own hole first (reason: global), then the new
  // segment still does not fit with nothing of b's left, so it goes through after a gap.
  feed(b, sink_b, 100, 30);
  auto gaps = sink_b.gaps();
  ASSERT_EQ(gaps.size(), 2u);
  EXPECT_EQ(gaps[0].reason, GapReason::kGlobalBufferFull);
  EXPECT_EQ(gaps[0].gap_bytes, 20u);
  EXPECT_EQ(gaps[1].reason, GapReason::kGlobalBufferFull);
  EXPECT_EQ(gaps[1].gap_bytes, 60u);
  EXPECT_EQ(sink_b.pos, 130u);
  EXPECT_EQ(b.bufferedBytes(), 0u);
  EXPECT_EQ(budget.used, 80u);
  EXPECT_TRUE(sink_a.gaps().empty());  // a's buffer is untouched
  a.flush(0, sink_a, budget);
  b.flush(0, sink_b, budget);
  EXPECT_EQ(budget.used, 0u);
  EXPECT_EQ(sink_a.pos, 130u);
}

TEST(TcpReassembly, ZeroLengthSegmentsDoNothing) {
  Bytes s = makeStream(100);
  Harness h(500, &s);
  h.syn();
  h.seg(s, 0, 10);
  h.seg(s, 10, 0);  // pure ACK at next_seq
  h.seg(s, 50, 0);  // pure ACK ahead (should not happen, harmless)
  h.seg(s, 5, 0);   // behind
  EXPECT_EQ(h.sink.events.size(), 1u);
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(10));
  EXPECT_EQ(h.stats.out_of_order_segments, 0u);
  EXPECT_EQ(h.stats.duplicate_bytes, 0u);
  EXPECT_EQ(h.r.bufferedBytes(), 0u);
  // A pure ACK is a valid midstream start.
  Harness m(700);
  m.seg(s, 0, 0);
  EXPECT_TRUE(m.r.started());
  EXPECT_EQ(m.r.nextSeq(), m.seqAt(0));
}

TEST(TcpReassembly, SynHandling) {
  Bytes s = makeStream(100);
  Harness h(0xfffffffeu, &s);
  // SYN carrying data (TCP Fast Open): the data starts after the SYN.
  h.r.onSegment(0, h.isn, true, false, std::span<const uint8_t>(s.data(), 10), 10, h.sink, h.budget,
                h.flow_limit, h.stats);
  EXPECT_EQ(h.sink.data, str(s, 0, 10));
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(10));
  // Retransmitted SYN and a SYN with another ISN on the started stream: ignored.
  h.syn();
  h.r.onSegment(0, 12345, true, false, std::span<const uint8_t>(s.data(), 10), 10, h.sink, h.budget,
                h.flow_limit, h.stats);
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(10));
  EXPECT_EQ(h.sink.events.size(), 1u);
  EXPECT_EQ(h.r.bufferedBytes(), 0u);
  h.seg(s, 10, 90);
  EXPECT_EQ(h.sink.data, str(s, 0, 100));
}

TEST(TcpReassembly, FinInOrder) {
  Bytes s = makeStream(100);
  Harness h(10, &s);
  h.syn();
  h.seg(s, 0, 60);
  EXPECT_FALSE(h.r.finSeen());
  h.seg(s, 60, 40, 0, /*fin=*/true);
  EXPECT_TRUE(h.r.finSeen());
  // nextSeq() stops at the FIN; the peer's ack of the FIN is one more.
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(100));
  h.ackTo(101);
  EXPECT_TRUE(h.sink.gaps().empty());
  // FIN retransmission: nothing new.
  h.seg(s, 60, 40, 0, true);
  h.r.onSegment(0, h.seqAt(100), false, true, {}, 0, h.sink, h.budget, h.flow_limit, h.stats);
  EXPECT_EQ(h.sink.data, str(s, 0, 100));
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(100));
  EXPECT_TRUE(h.sink.gaps().empty());
}

TEST(TcpReassembly, FinOutOfOrderWaitsForTheHole) {
  Bytes s = makeStream(100);
  Harness h(10, &s);
  h.syn();
  h.seg(s, 0, 30);
  h.seg(s, 60, 40, 0, true);  // FIN with data, ahead of a hole
  EXPECT_FALSE(h.r.finSeen());
  h.r.onSegment(0, h.seqAt(100), false, true, {}, 0, h.sink, h.budget, h.flow_limit,
                h.stats);  // bare FIN retx
  EXPECT_FALSE(h.r.finSeen());
  h.seg(s, 30, 30);
  EXPECT_TRUE(h.r.finSeen());
  EXPECT_EQ(h.sink.data, str(s, 0, 100));
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(100));
}

TEST(TcpReassembly, FlushDeclaresMissingBytesBeforeCapturedFin) {
  Bytes s = makeStream(100);
  Harness h(10, &s);
  h.syn();
  h.seg(s, 0, 30);
  h.r.onSegment(0, h.seqAt(100), false, true, {}, 0, h.sink, h.budget, h.flow_limit, h.stats);  // bare FIN
  EXPECT_FALSE(h.r.finSeen());
  h.ackTo(100);  // nothing buffered: no gap yet
  EXPECT_TRUE(h.sink.gaps().empty());
  h.flush();
  ASSERT_EQ(h.sink.gaps().size(), 1u);
  EXPECT_EQ(h.sink.gaps()[0].gap_bytes, 70u);
  EXPECT_EQ(h.sink.gaps()[0].reason, GapReason::kNotCaptured);
  EXPECT_TRUE(h.r.finSeen());
  EXPECT_EQ(h.r.nextSeq(), h.seqAt(100));
}

// Bytes after a FIN are bogus, but must not break ordering or the budget.
TEST(TcpReassembly, DataAfterFinStaysConsistent) {
  Bytes s = makeStream(100);
  Harness h(10, &s);
  h.syn();
  h.seg(s, 50, 50);                  // buffered, starts exactly at the FIN
  h.seg(s, 0, 50, 0, /*fin=*/true);  // FIN at offset 50
  EXPECT_TRUE(h.r.finSeen());
  EXPECT_EQ(h.sink.pos, 100u);
  EXPECT_EQ(h.budget.used, 0u);
  h.flush();
  EXPECT_EQ(h.sink.pos, 100u);
}

TEST(TcpReassembly, FarFutureSegmentIsNotBuffered) {
  Bytes s = makeStream(100);
  Harness h(10, &s);
  h.syn();
  h.r.onSegment(0, h.seqAt(0) + 0x7fffffc0u, false, false, std::span<const uint8_t>(s.data(), 100), 100,
                h.sink, h.budget, h.flow_limit, h.stats);
  EXPECT_EQ(h.r.bufferedBytes(), 0u);
  EXPECT_TRUE(h.sink.events.empty());
}

TEST(TcpReassembly, MoveKeepsState) {
  Bytes s = makeStream(100);
  Harness h(10, &s);
  h.syn();
  h.seg(s, 50, 50);
  StreamReassembler moved = std::move(h.r);
  EXPECT_EQ(moved.bufferedBytes(), 50u);
  moved.onSegment(0, h.seqAt(0), false, false, std::span<const uint8_t>(s.data(), 50), 50, h.sink, h.budget,
                  h.flow_limit, h.stats);
  EXPECT_EQ(h.sink.data, str(s, 0, 100));
  EXPECT_EQ(h.budget.used, 0u);
}

// Many streams, random limits, random loss, snaplen cuts, acks and
// retransmissions: positions always line up with the original, the shared
// budget always equals what the streams hold, and flush drains it to zero.
TEST(TcpReassembly, RandomStressKeepsBudgetAndPositionsExact) {
  uint64_t reasons[static_cast<int>(GapReason::kCount)] = {};
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    std::mt19937 rng(seed * 7919);
    constexpr int kStreams = 4;
    ReassemblyBudget budget;
    budget.limit = 200 + rng() % 3000;
    ReassemblyStats stats;
    std::vector<Bytes> data;
    std::vector<std::unique_ptr<RecordingSink>> sinks;
    std::vector<StreamReassembler> rs(kStreams);
    std::vector<uint32_t> isn;
    std::vector<std::vector<std::pair<size_t, size_t>>> segs(kStreams);
    const uint32_t flow_limit = static_cast<uint32_t>(50 + rng() % 2000);
    for (int i = 0; i < kStreams; ++i) {
      data.push_back(makeStream(2000 + rng() % 4000, seed * 100 + static_cast<uint32_t>(i)));
      isn.push_back(static_cast<uint32_t>(rng()));
      for (size_t off = 0; off < data[i].size();) {
        size_t len = std::min<size_t>(data[i].size() - off, 1 + rng() % 400);
        if (rng() % 10 != 0) segs[i].push_back({off, len});  // 10% never captured
        if (rng() % 8 == 0) segs[i].push_back({off, len});   // retransmission
        off += len;
      }
      std::shuffle(segs[i].begin(), segs[i].end(), rng);
    }
    for (int i = 0; i < kStreams; ++i) {
      sinks.push_back(std::make_unique<RecordingSink>(&data[i]));
      rs[i].onSegment(0, isn[i], true, false, {}, 0, *sinks[i], budget, flow_limit, stats);
    }
    std::vector<size_t> next(kStreams, 0);
    for (bool any = true; any;) {
      any = false;
      for (int i = 0; i < kStreams; ++i) {
        if (next[i] >= segs[i].size()) continue;
        any = true;
        auto [off, len] = segs[i][next[i]++];
        size_t captured = rng() % 12 == 0 ? rng() % (len + 1) : len;
        rs[i].onSegment(1, isn[i] + 1 + static_cast<uint32_t>(off), false, false,
                        std::span<const uint8_t>(data[i].data() + off, captured), static_cast<uint32_t>(len),
                        *sinks[i], budget, flow_limit, stats);
        if (rng() % 6 == 0) {
          rs[i].onPeerAck(1, isn[i] + 1 + static_cast<uint32_t>(rng() % data[i].size()), *sinks[i], budget);
        }
        uint64_t held = 0;
        for (const auto& r : rs) held += r.bufferedBytes();
        ASSERT_EQ(budget.used, held) << "seed " << seed;
        ASSERT_LE(budget.used, budget.limit);
        ASSERT_LE(rs[i].bufferedBytes(), flow_limit);
        if (HasFatalFailure()) return;
      }
    }
    for (int i = 0; i < kStreams; ++i) {
      rs[i].flush(2, *sinks[i], budget);
      if (HasFatalFailure()) return;
      // Everything up to the furthest captured byte is either data or gap.
      size_t end = 0;
      for (auto [off, len] : segs[i]) end = std::max(end, off + len);
      EXPECT_EQ(sinks[i]->pos, end) << "seed " << seed;
      EXPECT_EQ(rs[i].nextSeq(), isn[i] + 1 + static_cast<uint32_t>(end));
    }
    EXPECT_EQ(budget.used, 0u);
    for (const auto& sink : sinks)
      for (const Event& g : sink->gaps()) ++reasons[static_cast<int>(g.reason)];
  }
  // The mix above must actually exercise every way a gap can arise.
  for (int r = 0; r < static_cast<int>(GapReason::kCount); ++r)
    EXPECT_GT(reasons[r], 0u) << toString(static_cast<GapReason>(r));
}

}  // namespace
}  // namespace mqttlive
