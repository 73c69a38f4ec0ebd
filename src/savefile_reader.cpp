#include "mqttlive/savefile_reader.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace mqttlive {

SavefileReader::SavefileReader(int fd, uint64_t offset, Format format, size_t buffer_bytes)
    : fd_(fd),
      format_(format),
      cap_(std::max(buffer_bytes, kMinBuffer)),
      buf_(new uint8_t[cap_]),
      base_(offset) {}

void SavefileReader::refill() {
  std::memmove(buf_.get(), buf_.get() + pos_, have_ - pos_);
  have_ -= pos_;
  base_ += pos_;
  pos_ = 0;
  while (!eof_ && have_ < cap_) {
    const ssize_t n = ::pread(fd_, buf_.get() + have_, cap_ - have_, static_cast<off_t>(base_ + have_));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      // libpcap reads the same bytes again and reports the error its way.
      state_ = State::kHandOver;
      reason_ = HandOver::kReadError;
      return;
    }
    if (n == 0) eof_ = true;
    have_ += static_cast<size_t>(n);
  }
  if (wholeRecordAt(0)) return;
  if (have_ == 0) {
    state_ = State::kEnd;
    return;
  }
  state_ = State::kHandOver;
  // Either longer than the buffer (the file grew since it was sized) or
  // than max_caplen, or cut off by the end of the file.
  const bool long_record = !eof_ || (have_ >= kRecordHeader && caplen(buf_.get()) > format_.max_caplen);
  reason_ = long_record ? HandOver::kLongRecord : HandOver::kCutRecord;
}

}  // namespace mqttlive
