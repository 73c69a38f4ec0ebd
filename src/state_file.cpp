#include "mqttlive/state_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "mqttlive/engine.h"
#include "mqttlive/tracker.h"

namespace mqttlive {

// Layout, all integers little-endian:
//   0  magic "MQLVSTAT"
//   8  u32 version
//   12 u32 CRC-32 (IEEE) of every byte from offset 16 to the end
//   16 i64 saved_at (Micros)
//   24 u32 record count
//   28 records, each:
//        endpoint client, endpoint broker, endpoint client_real  (u8 v4, 16 bytes, u16 port)
//        u16 flags (bit order below), u8 protocol_level, u8 keepalive_source,
//        u8 state, u8 transport, u8 broker_disconnect_reason,
//        u16 keepalive_requested, u16 keepalive, u32 gaps,
//        i64 opened_at, connected_at, last_activity, deadline,
//        u16 client id length, client id bytes
namespace {

constexpr char kMagic[8] = {'M', 'Q', 'L', 'V', 'S', 'T', 'A', 'T'};
constexpr size_t kHeaderSize = 28;
constexpr size_t kEndpointSize = 1 + 16 + 2;
constexpr size_t kMinRecordSize = 3 * kEndpointSize + 2 + 5 + 4 + 4 + 32 + 2;

enum Flag : uint16_t {
  kClientIdKnown = 1 << 0,
  kMidstream = 1 << 1,
  kKeepaliveRequestedKnown = 1 << 2,
  kKeepaliveKnown = 1 << 3,
  kCleanStart = 1 << 4,
  kWill = 1 << 5,
  kUsernamePresent = 1 << 6,
  kConnected = 1 << 7,
  kClientDisconnect = 1 << 8,
  kBrokerDisconnect = 1 << 9,
  kTakenOver = 1 << 10,
  kClientRealKnown = 1 << 11,
  kAllFlags = (1 << 12) - 1,
};

uint32_t crc32(const uint8_t* p, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

struct Writer {
  std::string out;
  void u8(uint8_t v) { out.push_back(static_cast<char>(v)); }
  void u16(uint16_t v) {
    u8(static_cast<uint8_t>(v));
    u8(static_cast<uint8_t>(v >> 8));
  }
  void u32(uint32_t v) {
    u16(static_cast<uint16_t>(v));
    u16(static_cast<uint16_t>(v >> 16));
  }
  void i64(int64_t v) {
    const auto u = static_cast<uint64_t>(v);
    u32(static_cast<uint32_t>(u));
    u32(static_cast<uint32_t>(u >> 32));
  }
  void endpoint(const Endpoint& e) {
    u8(e.ip.v4 ? 1 : 0);
    out.append(reinterpret_cast<const char*>(e.ip.bytes), 16);
    u16(e.port);
  }
};

struct Reader {
  const uint8_t* p;
  size_t n;
  size_t off = 0;
  bool ok = true;
  bool has(size_t k) {
    if (!ok || n - off < k) ok = false;
    return ok;
  }
  uint8_t u8() { return has(1) ? p[off++] : 0; }
  uint16_t u16() {
    const uint16_t lo = u8();
    return static_cast<uint16_t>(lo | (u8() << 8));
  }
  uint32_t u32() {
    const uint32_t lo = u16();
    return lo | (uint32_t{u16()} << 16);
  }
  int64_t i64() {
    const uint64_t lo = u32();
    return static_cast<int64_t>(lo | (uint64_t{u32()} << 32));
  }
  bool endpoint(Endpoint& e) {
    const uint8_t v4 = u8();
    if (!has(16)) return false;
    std::memcpy(e.ip.bytes, p + off, 16);
    off += 16;
    e.ip.v4 = v4 == 1;
    e.port = u16();
    return ok && v4 <= 1;
  }
};

}  // namespace

std::string serializeState(const SavedState& state) {
  Writer w;
  w.out.append(kMagic, sizeof kMagic);
  w.u32(kStateFileVersion);
  w.u32(0);  // checksum, filled in below
  w.i64(state.saved_at);
  w.u32(static_cast<uint32_t>(state.connections.size()));
  for (const ConnectionInfo& c : state.connections) {
    w.endpoint(c.client);
    w.endpoint(c.broker);
    w.endpoint(c.client_real);
    uint16_t flags = 0;
    auto set = [&](bool on, Flag f) {
      if (on) flags = static_cast<uint16_t>(flags | f);
    };
    set(c.client_id_known, kClientIdKnown);
    set(c.midstream, kMidstream);
    set(c.keepalive_requested_known, kKeepaliveRequestedKnown);
    set(c.keepalive_known, kKeepaliveKnown);
    set(c.clean_start, kCleanStart);
    set(c.will, kWill);
    set(c.username_present, kUsernamePresent);
    set(c.connected, kConnected);
    set(c.client_disconnect, kClientDisconnect);
    set(c.broker_disconnect, kBrokerDisconnect);
    set(c.taken_over, kTakenOver);
    set(c.client_real_known, kClientRealKnown);
    w.u16(flags);
    w.u8(c.protocol_level);
    w.u8(static_cast<uint8_t>(c.keepalive_source));
    w.u8(static_cast<uint8_t>(c.state));
    w.u8(static_cast<uint8_t>(c.transport));
    w.u8(c.broker_disconnect_reason);
    w.u16(c.keepalive_requested);
    w.u16(c.keepalive);
    w.u32(c.gaps);
    w.i64(c.opened_at);
    w.i64(c.connected_at);
    w.i64(c.last_activity);
    w.i64(c.deadline);
    // MQTT client ids are at most 65535 bytes; the tracker never holds more.
    const size_t id_len = std::min<size_t>(c.client_id.size(), 0xFFFF);
    w.u16(static_cast<uint16_t>(id_len));
    w.out.append(c.client_id.data(), id_len);
  }
  const auto* bytes = reinterpret_cast<const uint8_t*>(w.out.data());
  const uint32_t crc = crc32(bytes + 16, w.out.size() - 16);
  for (int i = 0; i < 4; ++i) w.out[12 + i] = static_cast<char>(crc >> (8 * i));
  return w.out;
}

bool parseState(const std::string& bytes, SavedState& out, std::string& error) {
  out = SavedState{};
  if (bytes.empty()) {
    error = "empty file";
    return false;
  }
  Reader r{reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    error = "bad magic";
    return false;
  }
  r.off = sizeof kMagic;
  const uint32_t version = r.u32();
  if (!r.ok) {
    error = "truncated";
    return false;
  }
  if (version != kStateFileVersion) {
    error = "unsupported version " + std::to_string(version);
    return false;
  }
  const uint32_t crc = r.u32();
  if (!r.ok || bytes.size() < kHeaderSize) {
    error = "truncated";
    return false;
  }
  const Micros saved_at = r.i64();
  const uint32_t count = r.u32();
  // A cut file usually fails the checksum too; say "truncated" when the
  // records cannot even fit, which is the likelier story.
  if (count > (bytes.size() - kHeaderSize) / kMinRecordSize) {
    error = "truncated";
    return false;
  }
  // Structure first (a cut file is "truncated"), then the checksum, then the
  // values: nothing of a damaged file is ever applied.
  std::vector<ConnectionInfo> conns;
  conns.reserve(count);
  std::string problem;
  for (uint32_t i = 0; i < count && r.ok; ++i) {
    ConnectionInfo c;
    auto bad = [&](const char* what) {
      if (problem.empty()) problem = "corrupt record " + std::to_string(i) + ": " + what;
    };
    if (!r.endpoint(c.client) || !r.endpoint(c.broker) || !r.endpoint(c.client_real)) {
      if (!r.ok) break;
      bad("address family");
    }
    const uint16_t flags = r.u16();
    c.protocol_level = r.u8();
    const uint8_t source = r.u8();
    const uint8_t state = r.u8();
    const uint8_t transport = r.u8();
    c.broker_disconnect_reason = r.u8();
    c.keepalive_requested = r.u16();
    c.keepalive = r.u16();
    c.gaps = r.u32();
    c.opened_at = r.i64();
    c.connected_at = r.i64();
    c.last_activity = r.i64();
    c.deadline = r.i64();
    const uint16_t id_len = r.u16();
    if (!r.has(id_len)) break;
    c.client_id.assign(bytes.data() + r.off, id_len);
    r.off += id_len;
    if ((flags & ~kAllFlags) != 0) bad("unknown flags");
    if (c.protocol_level != 0 && c.protocol_level != kMqtt31 && c.protocol_level != kMqtt311 &&
        c.protocol_level != kMqtt5)
      bad("protocol level");
    if (source > static_cast<uint8_t>(KeepaliveSource::kConfigured)) bad("keepalive source");
    if (state >= static_cast<uint8_t>(ConnState::kCount)) bad("state");
    if (transport >= static_cast<uint8_t>(Transport::kCount)) bad("transport");
    if (c.client.port == 0 || c.broker.port == 0) bad("port 0");
    c.client_id_known = flags & kClientIdKnown;
    c.midstream = flags & kMidstream;
    c.keepalive_requested_known = flags & kKeepaliveRequestedKnown;
    c.keepalive_known = flags & kKeepaliveKnown;
    c.clean_start = flags & kCleanStart;
    c.will = flags & kWill;
    c.username_present = flags & kUsernamePresent;
    c.connected = flags & kConnected;
    c.client_disconnect = flags & kClientDisconnect;
    c.broker_disconnect = flags & kBrokerDisconnect;
    c.taken_over = flags & kTakenOver;
    c.client_real_known = flags & kClientRealKnown;
    c.keepalive_source = static_cast<KeepaliveSource>(source);
    c.state = static_cast<ConnState>(state);
    c.transport = static_cast<Transport>(transport);
    conns.push_back(std::move(c));
  }
  if (!r.ok) {
    error = "truncated";
    return false;
  }
  if (crc32(r.p + 16, bytes.size() - 16) != crc) {
    error = "checksum mismatch";
    return false;
  }
  if (r.off != bytes.size()) {
    error = "corrupt: " + std::to_string(bytes.size() - r.off) + " bytes after the last record";
    return false;
  }
  if (!problem.empty()) {
    error = problem;
    return false;
  }
  out.saved_at = saved_at;
  out.connections = std::move(conns);
  return true;
}

SavedState snapshotState(const SessionTracker& tracker, Micros now) {
  SavedState s;
  s.saved_at = now;
  tracker.forEachOpen([&](const ConnectionInfo& c) {
    if (c.state != ConnState::kClosing) s.connections.push_back(c);
  });
  return s;
}

bool saveStateFile(const std::string& path, const SavedState& state, std::string& error) {
  const std::string bytes = serializeState(state);
  const std::string tmp = path + ".tmp";
  auto fail = [&](const std::string& what) {
    error = "cannot write state file " + path + ": " + what + ": " + std::strerror(errno);
    return false;
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail("open " + tmp);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int saved = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      errno = saved;
      return fail("write " + tmp);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int saved = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    errno = saved;
    return fail("fsync " + tmp);
  }
  if (::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return fail("close " + tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp.c_str());
    errno = saved;
    return fail("rename");
  }
  // The rename itself is durable only once the directory is synced.
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return true;
}

bool loadStateFile(const std::string& path, Micros now, Micros max_age, SavedState& out, std::string& error,
                   bool* missing) {
  if (missing != nullptr) *missing = false;
  out = SavedState{};
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (missing != nullptr) *missing = errno == ENOENT;
    error = std::string("cannot read: ") + std::strerror(errno);
    return false;
  }
  struct stat st {};
  // Far more than any real table (~100 bytes per connection); refuses to
  // read a wrong path such as a device or a huge unrelated file.
  constexpr off_t kMaxBytes = off_t{1} << 31;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > kMaxBytes) {
    ::close(fd);
    error = "not a regular state file";
    return false;
  }
  std::string bytes;
  bytes.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  bytes.resize(done);
  SavedState parsed;
  if (!parseState(bytes, parsed, error)) return false;
  const Micros age = now - parsed.saved_at;
  if (age > max_age) {
    error = "stale: saved " + std::to_string(age / kMicrosPerSecond) + " s ago, more than state.max_age_seconds (" +
            std::to_string(max_age / kMicrosPerSecond) + ")";
    return false;
  }
  if (age < -60 * kMicrosPerSecond) {
    error = "saved " + std::to_string(-age / kMicrosPerSecond) + " s in the future (clock stepped back?)";
    return false;
  }
  out = std::move(parsed);
  return true;
}

size_t restoreState(Engine& engine, const SavedState& state, Micros now) {
  size_t n = 0;
  for (const ConnectionInfo& c : state.connections) n += engine.restore(c, now) ? 1 : 0;
  return n;
}

}  // namespace mqttlive
