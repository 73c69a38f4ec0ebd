// libFuzzer target: the offline reader against libpcap. The input is written
// to a memory file and read twice through PcapCapture, once with the fast
// savefile reader (handing over to libpcap where it must) and once with
// libpcap alone; frames (time and bytes), the way the read ends and the error
// message must be the same. Any difference aborts. Dispatch sizes vary with
// the input so that batches end everywhere.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "mqttlive/capture.h"

using namespace mqttlive;

namespace {

struct Outcome {
  bool opened = false;
  std::vector<Micros> times;
  std::vector<uint8_t> bytes;  // all frames, each preceded by its length
  int end = 0;
  std::string error;
  bool operator==(const Outcome& o) const {
    return opened == o.opened && times == o.times && bytes == o.bytes && end == o.end && error == o.error;
  }
};

Outcome readAll(const std::string& path, OfflineReader reader, int max) {
  Outcome o;
  std::string err;
  auto cap = PcapCapture::openOffline(path, err, reader);
  o.opened = cap != nullptr;
  if (!cap) return o;
  for (int calls = 0; calls < 200000; ++calls) {
    const int n = cap->dispatch(max, [&](Micros ts, std::span<const uint8_t> f) {
      o.times.push_back(ts);
      const auto len = static_cast<uint32_t>(f.size());
      o.bytes.insert(o.bytes.end(), reinterpret_cast<const uint8_t*>(&len),
                     reinterpret_cast<const uint8_t*>(&len) + 4);
      o.bytes.insert(o.bytes.end(), f.begin(), f.end());
    });
    if (n < 0) {
      o.end = n;
      break;
    }
  }
  if (o.end == 0) std::abort();  // never ended
  if (o.end == -1) o.error = cap->lastError();
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const int fd = memfd_create("savefile", 0);
  if (fd < 0) return 0;
  size_t done = 0;
  while (done < size) {
    const ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  const int max = 1 + (size > 30 ? data[size - 1] % 64 : 0);
  const Outcome fast = readAll(path, OfflineReader::kAuto, max);
  const Outcome lib = readAll(path, OfflineReader::kLibpcap, 4096);
  close(fd);
  if (!(fast == lib)) std::abort();
  return 0;
}
