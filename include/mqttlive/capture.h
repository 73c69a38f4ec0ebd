// Stage 1: capture, live or from a file. A thin RAII wrapper around libpcap;
// the records of classic pcap files are read by SavefileReader (faster, and
// checked against libpcap). The loop that feeds the engine lives in the
// runners (offline_runner.h, live_runner.h).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "mqttlive/savefile_reader.h"
#include "mqttlive/types.h"

struct pcap;

namespace mqttlive {

struct LiveCaptureOptions {
  std::string interface = "any";
  int snaplen = 262144;
  // libpcap's 2 MiB default drops packets under load; TPACKET_V3 ring size.
  int buffer_bytes = 64 << 20;
  int timeout_ms = 50;     // batch reads: wake at most this late when traffic is light
  bool immediate = false;
  std::string bpf;         // filter expression
};

struct CaptureCounters {
  uint64_t received = 0;   // ps_recv
  uint64_t dropped = 0;    // ps_drop: kernel buffer full
  uint64_t if_dropped = 0; // ps_ifdrop: interface/driver
};

// How an offline file is read: kAuto reads classic pcap records itself
// (savefile_reader.h) and leaves everything else to libpcap; kLibpcap is
// libpcap throughout (the reference the fast reader is tested against).
enum class OfflineReader : uint8_t { kAuto, kLibpcap };

class PcapCapture {
 public:
  ~PcapCapture();
  PcapCapture(const PcapCapture&) = delete;
  PcapCapture& operator=(const PcapCapture&) = delete;

  // nullptr on failure with `error` set (a message naming the file/interface).
  static std::unique_ptr<PcapCapture> openOffline(const std::string& path, std::string& error,
                                                  OfflineReader reader = OfflineReader::kAuto);
  static std::unique_ptr<PcapCapture> openLive(const LiveCaptureOptions& opts, std::string& error);

  int linkType() const;
  // Calls fn(Micros ts, std::span<const uint8_t> frame) for up to `max`
  // packets. Returns packets handled, 0 on timeout (offline: when the reader
  // changed, call again), -1 error (see lastError()), -2 at end of file.
  template <class Fn>
  int dispatch(int max, Fn&& fn);
  // True when the frames of the next dispatch() stay valid until the one
  // after it (read in place); otherwise each is valid only during fn.
  bool framesStayValid() const {
    return fast_ != nullptr && fast_->state() != SavefileReader::State::kHandOver;
  }
  std::string lastError() const;
  // Records read by the fast reader before it handed the file to libpcap, and
  // why (kNone while it reads or when it read the whole file).
  uint64_t fastRecords() const { return fast_ != nullptr ? fast_->records() : 0; }
  SavefileReader::HandOver handOverReason() const {
    return fast_ != nullptr ? fast_->handOverReason() : SavefileReader::HandOver::kNone;
  }
  bool stats(CaptureCounters& out) const;
  // Selectable fd for poll(); -1 offline.
  int fd() const;
  void breakLoop();
  const std::string& name() const { return name_; }

 private:
  PcapCapture(pcap* p, std::string name, bool offline) : p_(p), name_(std::move(name)), nano_(offline), offline_(offline) {}
  int dispatchRaw(int max, void (*cb)(unsigned char*, const void*, const unsigned char*), void* user);
  // libpcap reads on from the record the fast reader stopped at.
  bool handOver();
  pcap* p_;
  std::unique_ptr<SavefileReader> fast_;  // until it hands over, the reader of records
  std::string error_;  // ours, when libpcap has none to give
  std::string name_;
  bool nano_;     // offline files are opened with nanosecond precision
  bool offline_;
  template <class Fn>
  struct Thunk {
    Fn* fn;
    bool nano;
  };
};

// struct pcap_pkthdr as libpcap hands it over (its ABI: a timeval, then caplen
// and len), so that this header need not include pcap.h and the per-packet
// accessors below stay inline. capture.cpp checks the layout against pcap.h.
struct PcapHeaderView {
  long tv_sec;
  long tv_usec;  // nanoseconds for nanosecond-precision files
  uint32_t caplen;
  uint32_t len;
};
// The header's timestamp in Micros. pcapng's 64-bit timestamps can say
// anything: seconds are clamped to +-2^40 (35,000 years), so that neither this
// nor the time arithmetic downstream can overflow.
inline Micros pcapTime(const void* pkthdr, bool nano) {
  const auto* h = static_cast<const PcapHeaderView*>(pkthdr);
  constexpr long kMaxSeconds = 1L << 40;
  const long sec = h->tv_sec < -kMaxSeconds  ? -kMaxSeconds
                   : h->tv_sec > kMaxSeconds ? kMaxSeconds
                                             : h->tv_sec;
  const Micros sub = nano ? h->tv_usec / 1000 : h->tv_usec;
  return static_cast<Micros>(sec) * kMicrosPerSecond + sub;
}
inline uint32_t pcapCaplen(const void* pkthdr) { return static_cast<const PcapHeaderView*>(pkthdr)->caplen; }

template <class Fn>
int PcapCapture::dispatch(int max, Fn&& fn) {
  if (framesStayValid()) {
    const int n = fast_->dispatch(max, fn);
    switch (fast_->state()) {
      case SavefileReader::State::kReading:
        return n;
      case SavefileReader::State::kEnd:  // found before a record of this call
        return -2;
      case SavefileReader::State::kHandOver:
        // libpcap reads from the next call on (0 frames here is not the
        // end: call again); the frames of this call stay in the reader's buffer.
        return handOver() ? n : -1;
    }
  }
  if (!error_.empty()) return -1;  // libpcap could not be placed at the record
  Thunk<std::remove_reference_t<Fn>> t{&fn, nano_};
  return dispatchRaw(
      max,
      [](unsigned char* user, const void* hdr, const unsigned char* bytes) {
        auto* th = reinterpret_cast<Thunk<std::remove_reference_t<Fn>>*>(user);
        (*th->fn)(pcapTime(hdr, th->nano), std::span<const uint8_t>(bytes, pcapCaplen(hdr)));
      },
      &t);
}

}  // namespace mqttlive
