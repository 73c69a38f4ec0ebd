// The fast savefile reader against its oracle, libpcap: every file read both
// ways must give the same frames, times, end and error message.
#include "mqttlive/savefile_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "mqttlive/capture.h"
#include "mqttlive/packet_decoder.h"

namespace mqttlive {
namespace {

struct Record {
  uint32_t sec = 1700000000;
  uint32_t frac = 0;
  uint32_t caplen = 0;  // bytes written: data.size() unless set
  uint32_t len = 0;
  std::vector<uint8_t> data;
};

struct FileSpec {
  bool swapped = false;
  bool nano = false;
  uint32_t snaplen = 65535;
  uint32_t link = dlt::kEthernet;
  uint16_t major = 2, minor = 4;
};

void put32(std::vector<uint8_t>& out, uint32_t v, bool big_endian) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (big_endian ? 24 - 8 * i : 8 * i)));
}
void put16(std::vector<uint8_t>& out, uint16_t v, bool big_endian) {
  out.push_back(static_cast<uint8_t>(big_endian ? v >> 8 : v));
  out.push_back(static_cast<uint8_t>(big_endian ? v : v >> 8));
}

// This machine is little-endian: a swapped file is a big-endian one.
std::vector<uint8_t> pcapFile(const FileSpec& spec, const std::vector<Record>& records) {
  std::vector<uint8_t> out;
  put32(out, spec.nano ? 0xa1b23c4d : 0xa1b2c3d4, spec.swapped);
  put16(out, spec.major, spec.swapped);
  put16(out, spec.minor, spec.swapped);
  put32(out, 0, spec.swapped);
  put32(out, 0, spec.swapped);
  put32(out, spec.snaplen, spec.swapped);
  put32(out, spec.link, spec.swapped);
  for (const Record& r : records) {
    put32(out, r.sec, spec.swapped);
    put32(out, r.frac, spec.swapped);
    put32(out, r.caplen != 0 ? r.caplen : static_cast<uint32_t>(r.data.size()), spec.swapped);
    put32(out, r.len != 0 ? r.len : static_cast<uint32_t>(r.data.size()), spec.swapped);
    out.insert(out.end(), r.data.begin(), r.data.end());
  }
  return out;
}

Record record(std::mt19937& rng, size_t max_len) {
  Record r;
  r.sec = 1700000000 + static_cast<uint32_t>(rng() % 1000);
  r.frac = static_cast<uint32_t>(rng() % 1000000);
  r.data.resize(rng() % (max_len + 1));
  for (auto& b : r.data) b = static_cast<uint8_t>(rng());
  return r;
}

std::vector<Record> randomRecords(uint32_t seed, int n, size_t max_len) {
  std::mt19937 rng(seed);
  std::vector<Record> recs;
  for (int i = 0; i < n; ++i) recs.push_back(record(rng, max_len));
  return recs;
}

class TempFile {
 public:
  explicit TempFile(const std::vector<uint8_t>& bytes) {
    char name[] = "/tmp/mqttlive-savefile-XXXXXX";
    const int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    if (!bytes.empty()) EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    close(fd);
    path_ = name;
  }
  ~TempFile() {
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  // Opened for reading once, closed with the file.
  int fd() {
    if (fd_ < 0) fd_ = open(path_.c_str(), O_RDONLY);
    return fd_;
  }

 private:
  std::string path_;
  int fd_ = -1;
};

struct ReadOutcome {
  bool opened = false;
  std::string open_error;
  std::vector<std::pair<Micros, std::vector<uint8_t>>> frames;
  int end = 0;  // -2 end of file, -1 error
  std::string error;
  uint64_t fast = 0;  // records the fast reader handed out
  SavefileReader::HandOver reason = SavefileReader::HandOver::kNone;
  bool started_fast = false;

  bool operator==(const ReadOutcome& o) const {
    return opened == o.opened && open_error == o.open_error && frames == o.frames && end == o.end &&
           error == o.error;
  }
};

ReadOutcome readAll(const std::string& path, OfflineReader reader) {
  ReadOutcome o;
  auto cap = PcapCapture::openOffline(path, o.open_error, reader);
  o.opened = cap != nullptr;
  if (!cap) return o;
  o.started_fast = cap->framesStayValid();
  for (int calls = 0; calls < 1000000; ++calls) {
    const int n = cap->dispatch(7, [&](Micros ts, std::span<const uint8_t> f) {
      o.frames.emplace_back(ts, std::vector<uint8_t>(f.begin(), f.end()));
    });
    if (n < 0) {
      o.end = n;
      break;
    }
  }
  if (o.end == -1) o.error = cap->lastError();
  o.fast = cap->fastRecords();
  o.reason = cap->handOverReason();
  return o;
}

std::string describe(const ReadOutcome& o) {
  return "opened=" + std::to_string(o.opened) + " '" + o.open_error +
         "' frames=" + std::to_string(o.frames.size()) + " end=" + std::to_string(o.end) + " error='" +
         o.error + "' fast=" + std::to_string(o.fast);
}

// Reads `bytes` both ways, expects the same outcome, returns the fast one.
ReadOutcome expectSameAsLibpcap(const std::vector<uint8_t>& bytes, const std::string& what) {
  TempFile f(bytes);
  const ReadOutcome fast = readAll(f.path(), OfflineReader::kAuto);
  const ReadOutcome lib = readAll(f.path(), OfflineReader::kLibpcap);
  EXPECT_EQ(lib.fast, 0u) << what;
  EXPECT_TRUE(fast == lib) << what << "\n fast:    " << describe(fast) << "\n libpcap: " << describe(lib);
  for (size_t i = 0; i < std::min(fast.frames.size(), lib.frames.size()); ++i) {
    if (fast.frames[i] == lib.frames[i]) continue;
    ADD_FAILURE() << what << ": first difference at frame " << i << ": ts " << fast.frames[i].first << " vs "
                  << lib.frames[i].first << ", " << fast.frames[i].second.size() << " vs "
                  << lib.frames[i].second.size() << " bytes";
    break;
  }
  return fast;
}

TEST(SavefileReader, SameAsLibpcapInEveryByteOrderAndPrecision) {
  std::mt19937 rng(7);
  for (bool swapped : {false, true}) {
    for (bool nano : {false, true}) {
      std::vector<Record> recs;
      for (int i = 0; i < 300; ++i) recs.push_back(record(rng, 200));
      recs[0].data.clear();      // an empty record
      recs[1].sec = 0x80000001;  // libpcap reads seconds as signed 32 bits
      recs[2].frac = nano ? 999999999 : 999999;
      recs[3].frac = 0xfffffff0;  // nonsense fraction, signed as well
      recs[4].len = 60000;        // cut by the snapshot length
      recs[5].len = 3;            // caplen > len: handed over as it is
      const std::string what =
          std::string(swapped ? "big-endian" : "little-endian") + (nano ? " nano" : " micro");
      const ReadOutcome o = expectSameAsLibpcap(pcapFile({swapped, nano}, recs), what);
      EXPECT_TRUE(o.started_fast) << what;
      EXPECT_EQ(o.fast, recs.size()) << what;
      EXPECT_EQ(o.reason, SavefileReader::HandOver::kNone) << what;
      EXPECT_EQ(o.end, -2) << what;
      ASSERT_EQ(o.frames.size(), recs.size()) << what;
      // libpcap reads a native file's seconds as signed, a swapped file's as unsigned.
      const Micros sec = swapped ? Micros{0x80000001} : Micros{static_cast<int32_t>(0x80000001)};
      const Micros frac = Micros{recs[1].frac} / (nano ? 1000 : 1);
      EXPECT_EQ(o.frames[1].first, sec * kMicrosPerSecond + frac) << what;
    }
  }
}

// The reader on its own, with its smallest buffer: records cut by
// every refill boundary, frames still in place after their dispatch().
TEST(SavefileReader, RecordsAcrossRefillsStayInPlaceUntilTheNextDispatch) {
  std::mt19937 rng(11);
  const auto recs = randomRecords(11, 2000, 60);
  const auto bytes = pcapFile({}, recs);
  TempFile f(bytes);
  ASSERT_GE(f.fd(), 0);
  SavefileReader reader(f.fd(), 24, {false, false, 60}, SavefileReader::kMinBuffer);
  size_t next = 0;
  int calls = 0;
  while (reader.state() == SavefileReader::State::kReading && ++calls < 100000) {
    std::vector<std::pair<Micros, std::span<const uint8_t>>> got;
    const int n =
        reader.dispatch(1 + static_cast<int>(rng() % 7),
                        [&](Micros ts, std::span<const uint8_t> frame) { got.emplace_back(ts, frame); });
    ASSERT_EQ(static_cast<size_t>(n), got.size());
    for (const auto& [ts, frame] : got) {  // read after dispatch() returned
      ASSERT_LT(next, recs.size());
      EXPECT_EQ(ts, Micros{recs[next].sec} * kMicrosPerSecond + recs[next].frac) << "record " << next;
      EXPECT_TRUE(std::equal(frame.begin(), frame.end(), recs[next].data.begin(), recs[next].data.end()))
          << "record " << next;
      ++next;
    }
  }
  EXPECT_EQ(next, recs.size());
  EXPECT_EQ(reader.state(), SavefileReader::State::kEnd);
  EXPECT_EQ(reader.records(), recs.size());
  EXPECT_EQ(reader.handOverOffset(), bytes.size());
}

TEST(SavefileReader, ARecordLongerThanTheBufferIsLeftToLibpcap) {
  auto recs = randomRecords(13, 30, 100);
  recs[20].data.assign(SavefileReader::kMinBuffer + 100, 0x5a);
  TempFile f(pcapFile({}, recs));
  ASSERT_GE(f.fd(), 0);
  SavefileReader reader(f.fd(), 24, {false, false, 65535}, SavefileReader::kMinBuffer);
  uint64_t offset = 24;
  for (int i = 0; i < 20; ++i) offset += 16 + recs[static_cast<size_t>(i)].data.size();
  int got = 0;
  while (reader.state() == SavefileReader::State::kReading) got += reader.dispatch(64, [](Micros, auto) {});
  EXPECT_EQ(got, 20);
  EXPECT_EQ(reader.state(), SavefileReader::State::kHandOver);
  EXPECT_EQ(reader.handOverReason(), SavefileReader::HandOver::kLongRecord);
  EXPECT_EQ(reader.handOverOffset(), offset);
}

TEST(SavefileReader, RecordsLongerThanTheSnapshotAreLeftToLibpcap) {
  auto recs = randomRecords(3, 40, 90);
  recs[25].data.assign(150, 0xab);  // snapshot 100: libpcap's own rules apply from here
  const ReadOutcome o = expectSameAsLibpcap(pcapFile({.snaplen = 100}, recs), "long record");
  EXPECT_EQ(o.fast, 25u);
  EXPECT_EQ(o.reason, SavefileReader::HandOver::kLongRecord);
  EXPECT_GE(o.frames.size(), 25u);

  // A caplen no buffer could hold (a damaged header): libpcap's error.
  recs[25] = Record{};
  recs[25].caplen = 0x7fffffff;
  const ReadOutcome bad = expectSameAsLibpcap(pcapFile({}, recs), "absurd caplen");
  EXPECT_EQ(bad.fast, 25u);
  EXPECT_EQ(bad.reason, SavefileReader::HandOver::kLongRecord);
  EXPECT_EQ(bad.end, -1);
  EXPECT_FALSE(bad.error.empty());
}

TEST(SavefileReader, CutFilesEndAsLibpcapEndsThem) {
  auto recs = randomRecords(5, 12, 40);
  const auto bytes = pcapFile({}, recs);
  std::vector<size_t> starts{24};
  for (const Record& r : recs) starts.push_back(starts.back() + 16 + r.data.size());
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    const std::vector<uint8_t> part(bytes.begin(), bytes.begin() + static_cast<long>(cut));
    const ReadOutcome o = expectSameAsLibpcap(part, "cut at " + std::to_string(cut));
    if (cut < 24) continue;  // no file header: libpcap refuses to open it, both ways
    const bool on_boundary = std::find(starts.begin(), starts.end(), cut) != starts.end();
    EXPECT_EQ(o.end, on_boundary ? -2 : -1) << "cut at " << cut;
    EXPECT_EQ(o.reason, on_boundary ? SavefileReader::HandOver::kNone : SavefileReader::HandOver::kCutRecord)
        << "cut at " << cut;
  }
}

TEST(SavefileReader, FormatsItDoesNotJudgeGoToLibpcapWhole) {
  auto recs = randomRecords(9, 20, 80);
  // libpcap rewrites cooked headers of the other byte order, and reads old
  // versions with caplen and len possibly swapped.
  for (const FileSpec& spec :
       {FileSpec{.swapped = true, .link = dlt::kLinuxSll}, FileSpec{.swapped = true, .link = dlt::kLinuxSll2},
        FileSpec{.minor = 3}, FileSpec{.link = 147 /* user 0: no decoder */}}) {
    const ReadOutcome o = expectSameAsLibpcap(pcapFile(spec, recs), "link " + std::to_string(spec.link));
    EXPECT_FALSE(o.started_fast) << "link " << spec.link << " minor " << spec.minor;
    EXPECT_EQ(o.fast, 0u);
    EXPECT_EQ(o.frames.size(), recs.size());
  }
  const ReadOutcome sll = expectSameAsLibpcap(pcapFile({.link = dlt::kLinuxSll}, recs), "native SLL");
  EXPECT_TRUE(sll.started_fast);
}

TEST(SavefileReader, SharedCapturesSameAsLibpcap) {
  namespace fs = std::filesystem;
  int files = 0, read_fast = 0;
  for (const auto& entry : fs::directory_iterator(MQTTLIVE_CAPTURES_DIR)) {
    const std::string ext = entry.path().extension().string();
    if (ext != ".pcap" && ext != ".pcapng") continue;
    const std::string name = entry.path().filename().string();
    const ReadOutcome fast = readAll(entry.path().string(), OfflineReader::kAuto);
    const ReadOutcome lib = readAll(entry.path().string(), OfflineReader::kLibpcap);
    EXPECT_TRUE(fast == lib) << name << "\n fast:    " << describe(fast) << "\n libpcap: " << describe(lib);
    // Some .pcap files are pcapng inside (nDPI's).
    std::ifstream in(entry.path(), std::ios::binary);
    uint8_t magic[4] = {};
    in.read(reinterpret_cast<char*>(magic), 4);
    EXPECT_EQ(fast.started_fast, magic[0] == 0xd4 && magic[1] == 0xc3) << name;
    if (fast.started_fast && fast.fast == fast.frames.size()) ++read_fast;
    ++files;
  }
  EXPECT_GT(files, 40);
  EXPECT_GT(read_fast, 40);
}

}  // namespace
}  // namespace mqttlive
