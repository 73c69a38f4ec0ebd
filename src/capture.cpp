#include "mqttlive/capture.h"

#include <pcap/pcap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>

#include "mqttlive/packet_decoder.h"

namespace mqttlive {

PcapCapture::~PcapCapture() {
  if (p_ != nullptr) pcap_close(p_);
}

static_assert(sizeof(PcapHeaderView) == sizeof(pcap_pkthdr) &&
                  offsetof(PcapHeaderView, tv_sec) == offsetof(pcap_pkthdr, ts.tv_sec) &&
                  offsetof(PcapHeaderView, tv_usec) == offsetof(pcap_pkthdr, ts.tv_usec) &&
                  offsetof(PcapHeaderView, caplen) == offsetof(pcap_pkthdr, caplen) &&
                  offsetof(PcapHeaderView, len) == offsetof(pcap_pkthdr, len) &&
                  sizeof(PcapHeaderView::tv_sec) == sizeof(pcap_pkthdr::ts.tv_sec) &&
                  sizeof(PcapHeaderView::tv_usec) == sizeof(pcap_pkthdr::ts.tv_usec),
              "PcapHeaderView must mirror struct pcap_pkthdr");

namespace {

// A reader for the records of `p`'s file when libpcap would hand them over
// untouched: a classic pcap file of version 2.4 (earlier ones may have caplen
// and len swapped) on a link whose frames libpcap does not rewrite when the
// byte order differs (it does for Linux cooked headers, USB and NFLOG).
std::unique_ptr<SavefileReader> fastReader(pcap_t* p, const std::string& path) {
  std::FILE* f = pcap_file(p);
  if (f == nullptr || path == "-") return nullptr;
  const int fd = fileno(f);
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return nullptr;
  uint32_t magic = 0;
  if (pread(fd, &magic, sizeof magic, 0) != sizeof magic) return nullptr;
  SavefileReader::Format format;
  switch (magic) {
    case 0xa1b2c3d4:
      break;
    case 0xa1b23c4d:
      format.nano = true;
      break;
    case 0xd4c3b2a1:
      format.swapped = true;
      break;
    case 0x4d3cb2a1:
      format.swapped = format.nano = true;
      break;
    default:
      return nullptr;  // pcapng and the rest: libpcap
  }
  if (pcap_major_version(p) != 2 || pcap_minor_version(p) < 4) return nullptr;
  switch (pcap_datalink(p)) {
    case dlt::kEthernet:
    case dlt::kNull:
    case dlt::kRaw:
    case dlt::kRawAlt:
    case dlt::kLoop:
    case dlt::kIpv4:
    case dlt::kIpv6:
      break;
    case dlt::kLinuxSll:
    case dlt::kLinuxSll2:
      if (format.swapped) return nullptr;
      break;
    default:
      return nullptr;
  }
  // Longer records than the file's snapshot length (or than any link's
  // usual maximum, 256 KiB) are libpcap's to judge.
  constexpr uint32_t kMaxSnaplen = 262144;
  const int snapshot = pcap_snapshot(p);
  if (snapshot <= 0) return nullptr;
  format.max_caplen = std::min(static_cast<uint32_t>(snapshot), kMaxSnaplen);
  // No bigger than the file: a short capture needs no 1 MiB.
  constexpr uint64_t kFileHeader = 24;
  const auto buffer = std::min<uint64_t>(static_cast<uint64_t>(st.st_size), SavefileReader::kDefaultBuffer);
  return std::make_unique<SavefileReader>(fd, kFileHeader, format, static_cast<size_t>(buffer));
}

}  // namespace

std::unique_ptr<PcapCapture> PcapCapture::openOffline(const std::string& path, std::string& error,
                                                      OfflineReader reader) {
  char err[PCAP_ERRBUF_SIZE] = {};
  // Ask for nanosecond precision so pcapng/nanosecond files keep theirs; we round to microseconds.
  pcap_t* p = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, err);
  if (p == nullptr) {
    error = "cannot read capture " + path + ": " + err;
    return nullptr;
  }
  std::unique_ptr<PcapCapture> cap(new PcapCapture(p, path, true));
  if (reader == OfflineReader::kAuto) cap->fast_ = fastReader(p, path);
  return cap;
}

bool PcapCapture::handOver() {
  // libpcap's savefile reader reads records one after another from its FILE:
  // placed at the record, it goes on as if it had read the ones before.
  if (fseeko(pcap_file(p_), static_cast<off_t>(fast_->handOverOffset()), SEEK_SET) != 0) {
    error_ = "cannot seek in " + name_ + " to the record after packet " + std::to_string(fast_->records());
    return false;
  }
  return true;
}

std::unique_ptr<PcapCapture> PcapCapture::openLive(const LiveCaptureOptions& o, std::string& error) {
  char err[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p = pcap_create(o.interface.c_str(), err);
  if (p == nullptr) {
    error = "cannot open interface " + o.interface + ": " + err;
    return nullptr;
  }
  pcap_set_snaplen(p, o.snaplen);
  pcap_set_promisc(p, 0);
  pcap_set_timeout(p, o.timeout_ms);
  pcap_set_buffer_size(p, o.buffer_bytes);
  pcap_set_immediate_mode(p, o.immediate ? 1 : 0);
  pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_MICRO);
  int rc = pcap_activate(p);
  if (rc < 0) {
    error = "cannot capture on " + o.interface + ": " + pcap_geterr(p);
    pcap_close(p);
    return nullptr;
  }
  if (!o.bpf.empty()) {
    bpf_program prog{};
    if (pcap_compile(p, &prog, o.bpf.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0 || pcap_setfilter(p, &prog) != 0) {
      error = "bad capture filter '" + o.bpf + "' on " + o.interface + ": " + pcap_geterr(p);
      pcap_freecode(&prog);
      pcap_close(p);
      return nullptr;
    }
    pcap_freecode(&prog);
  }
  pcap_setnonblock(p, 1, err);
  return std::unique_ptr<PcapCapture>(new PcapCapture(p, o.interface, false));
}

int PcapCapture::linkType() const { return pcap_datalink(p_); }

int PcapCapture::dispatchRaw(int max, void (*cb)(unsigned char*, const void*, const unsigned char*), void* user) {
  int n = pcap_dispatch(p_, max, reinterpret_cast<pcap_handler>(cb), static_cast<unsigned char*>(user));
  if (n == PCAP_ERROR_BREAK) return 0;
  if (n == 0 && offline_) return -2;  // end of file
  if (n == PCAP_ERROR) return -1;
  return n;
}

std::string PcapCapture::lastError() const { return error_.empty() ? pcap_geterr(p_) : error_; }

bool PcapCapture::stats(CaptureCounters& out) const {
  pcap_stat st{};
  if (pcap_stats(p_, &st) != 0) return false;
  out.received = st.ps_recv;
  out.dropped = st.ps_drop;
  out.if_dropped = st.ps_ifdrop;
  return true;
}

int PcapCapture::fd() const { return pcap_get_selectable_fd(p_); }

void PcapCapture::breakLoop() { pcap_breakloop(p_); }

}  // namespace mqttlive
