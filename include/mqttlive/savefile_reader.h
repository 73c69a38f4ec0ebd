// Stage 1, offline: the records of a classic pcap savefile, read in large
// blocks and handed out in place.
//
// libpcap's savefile reader costs ~50 ns a packet on this machine: two stdio
// reads per record into its own buffer, which then has to be copied again for
// the engine's look-ahead (libpcap reuses it for the next record). This reader
// fills a 1 MiB buffer with pread() and hands out frames that stay where they
// are until the next dispatch(), 13-23 ns a packet all told
// (docs/performance.md, round 7).
//
// It reads only what it can judge exactly as libpcap would: PcapCapture lets
// libpcap open the file (header checks, link type, snapshot length, precision)
// and uses this reader only for records of a format it knows; at the first
// record it would have to judge differently (longer than the snapshot, cut
// off by the end of the file, a read error) it stops, and libpcap reads the
// rest of the file from that record on, with its own checks and messages.
// pread() leaves the file offset alone, so libpcap's stream is unaffected.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>

#include "mqttlive/types.h"

namespace mqttlive {

class SavefileReader {
 public:
  struct Format {
    bool swapped = false;     // written on a machine of the other byte order
    bool nano = false;        // nanosecond timestamps
    uint32_t max_caplen = 0;  // longer records are left to libpcap
  };
  enum class State : uint8_t {
    kReading,
    kEnd,       // every record was handed out
    kHandOver,  // stopped at a record for libpcap: handOverOffset()
  };
  enum class HandOver : uint8_t { kNone, kLongRecord, kCutRecord, kReadError };

  static constexpr size_t kRecordHeader = 16;
  static constexpr size_t kDefaultBuffer = 1 << 20;
  static constexpr size_t kMinBuffer = 4096;

  // Reads `fd` (not owned) with pread from `offset`, where the first record
  // starts. Records longer than the buffer are left to libpcap too.
  SavefileReader(int fd, uint64_t offset, Format format, size_t buffer_bytes = kDefaultBuffer);

  // Calls fn(Micros ts, std::span<const uint8_t> frame) for up to `max`
  // records. The frames stay valid until the next call. Returns the number of
  // records handed out; 0 once state() is no longer kReading.
  template <class Fn>
  int dispatch(int max, Fn&& fn);

  State state() const { return state_; }
  HandOver handOverReason() const { return reason_; }
  // File offset of the first record not handed out.
  uint64_t handOverOffset() const { return base_ + pos_; }
  uint64_t records() const { return records_; }

 private:
  // Moves what is left to the front and reads more; decides kEnd/kHandOver
  // when no whole record can follow.
  void refill();
  bool wholeRecordAt(size_t pos) const {
    return have_ - pos >= kRecordHeader && have_ - pos - kRecordHeader >= caplen(buf_.get() + pos);
  }
  uint32_t field(const uint8_t* p) const {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return format_.swapped ? __builtin_bswap32(v) : v;
  }
  uint32_t caplen(const uint8_t* rec) const { return field(rec + 8); }
  // As libpcap hands it over: seconds and fraction read as signed 32-bit
  // values, or unsigned ones from a file of the other byte order (its byte
  // swap yields unsigned values); nanoseconds truncated to microseconds.
  Micros time(const uint8_t* rec) const {
    const uint32_t s = field(rec), f = field(rec + 4);
    const Micros sec = format_.swapped ? Micros{s} : Micros{static_cast<int32_t>(s)};
    const Micros frac = format_.swapped ? Micros{f} : Micros{static_cast<int32_t>(f)};
    return sec * kMicrosPerSecond + (format_.nano ? frac / 1000 : frac);
  }

  int fd_;
  Format format_;
  size_t cap_;
  std::unique_ptr<uint8_t[]> buf_;
  size_t have_ = 0;  // bytes in buf_
  size_t pos_ = 0;   // next record in buf_
  uint64_t base_;    // file offset of buf_[0]
  uint64_t records_ = 0;
  bool eof_ = false;
  State state_ = State::kReading;
  HandOver reason_ = HandOver::kNone;
};

template <class Fn>
int SavefileReader::dispatch(int max, Fn&& fn) {
  if (state_ != State::kReading) return 0;
  if (!wholeRecordAt(pos_)) {
    refill();
    if (state_ != State::kReading) return 0;
  }
  int n = 0;
  while (n < max && wholeRecordAt(pos_)) {
    const uint8_t* rec = buf_.get() + pos_;
    const uint32_t len = caplen(rec);
    if (len > format_.max_caplen) {
      state_ = State::kHandOver;
      reason_ = HandOver::kLongRecord;
      break;
    }
    fn(time(rec), std::span<const uint8_t>(rec + kRecordHeader, len));
    pos_ += kRecordHeader + len;
    ++n;
  }
  records_ += static_cast<uint64_t>(n);
  return n;
}

}  // namespace mqttlive
