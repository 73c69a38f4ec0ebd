// mqttlive_loadgen: real MQTT load on loopback for bench/live_load.sh.
//
//   mqttlive_loadgen --port PORT [--conns 200] [--seconds 10] [--inflight 4]
//
// Opens K MQTT 3.1.1 connections to 127.0.0.1:PORT (a broker this machine
// runs), CONNECTs each (client id "load-000123", keepalive 60) and then keeps
// `inflight` PINGREQs outstanding per connection for the given time, each
// PINGREQ its own write (TCP_NODELAY), answered by the broker's PINGRESP.
// Every round trip is at least two TCP segments on `lo` for the capture.
// Only ever connects to 127.0.0.1; bounded by --seconds; closes cleanly
// (DISCONNECT) at the end. Prints PINGREQs sent, PINGRESPs received, rate.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
  int fd = -1;
  bool connected = false;   // CONNACK received
  int inflight = 0;
  std::vector<uint8_t> rx;  // partial packets
};

std::vector<uint8_t> connectPacket(const std::string& id, uint16_t keepalive) {
  std::vector<uint8_t> body = {0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, static_cast<uint8_t>(keepalive >> 8),
                               static_cast<uint8_t>(keepalive)};
  body.push_back(static_cast<uint8_t>(id.size() >> 8));
  body.push_back(static_cast<uint8_t>(id.size()));
  body.insert(body.end(), id.begin(), id.end());
  std::vector<uint8_t> p = {0x10, static_cast<uint8_t>(body.size())};
  p.insert(p.end(), body.begin(), body.end());
  return p;
}

bool writeAll(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;  // EAGAIN: the broker is not reading; treat as saturated
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

[[noreturn]] void usage() {
  std::fprintf(stderr, "usage: mqttlive_loadgen --port PORT [--conns 200] [--seconds 10] [--inflight 4]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, conns = 200, inflight = 4;
  double seconds = 10;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) usage();
    if (a == "--port") {
      port = std::atoi(argv[++i]);
    } else if (a == "--conns") {
      conns = std::atoi(argv[++i]);
    } else if (a == "--seconds") {
      seconds = std::atof(argv[++i]);
    } else if (a == "--inflight") {
      inflight = std::atoi(argv[++i]);
    } else {
      usage();
    }
  }
  if (port <= 0 || port > 65535 || conns <= 0 || conns > 20000 || inflight <= 0 || seconds <= 0 || seconds > 600)
    usage();

  const int ep = epoll_create1(0);
  std::vector<Conn> cs(static_cast<size_t>(conns));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);  // 127.0.0.1 only
  for (int i = 0; i < conns; ++i) {
    Conn& c = cs[static_cast<size_t>(i)];
    c.fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      std::fprintf(stderr, "mqttlive_loadgen: connect 127.0.0.1:%d: %s\n", port, std::strerror(errno));
      return 1;
    }
    char id[32];
    std::snprintf(id, sizeof(id), "load-%06d", i);
    const auto p = connectPacket(id, 60);
    if (!writeAll(c.fd, p.data(), p.size())) return 1;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u32 = static_cast<uint32_t>(i);
    epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  }

  static const uint8_t kPing[2] = {0xC0, 0x00};
  uint64_t sent = 0, received = 0, connacks = 0;
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  std::vector<epoll_event> evs(256);
  std::vector<uint8_t> buf(1 << 16);
  bool stopping = false;
  while (true) {
    const auto now = Clock::now();
    if (!stopping && now >= end) stopping = true;
    if (stopping) break;
    const int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 100);
    for (int k = 0; k < n; ++k) {
      Conn& c = cs[evs[k].data.u32];
      const ssize_t r = ::recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
      if (r <= 0) {
        if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
          std::fprintf(stderr, "mqttlive_loadgen: broker closed a connection\n");
          epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
        }
        continue;
      }
      c.rx.insert(c.rx.end(), buf.begin(), buf.begin() + r);
      size_t pos = 0;
      // Only CONNACK (4 bytes) and PINGRESP (2 bytes) come back.
      while (c.rx.size() - pos >= 2) {
        const uint8_t type = c.rx[pos] >> 4;
        const size_t len = 2 + c.rx[pos + 1];
        if (c.rx.size() - pos < len) break;
        if (type == 2) {
          c.connected = true;
          ++connacks;
        } else if (type == 13) {
          --c.inflight;
          ++received;
        }
        pos += len;
      }
      c.rx.erase(c.rx.begin(), c.rx.begin() + static_cast<ptrdiff_t>(pos));
      // Refill the window one PINGREQ per write: one segment each.
      while (c.connected && c.inflight < inflight) {
        if (!writeAll(c.fd, kPing, sizeof(kPing))) break;
        ++c.inflight;
        ++sent;
      }
    }
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  static const uint8_t kDisconnect[2] = {0xE0, 0x00};
  for (Conn& c : cs) {
    writeAll(c.fd, kDisconnect, sizeof(kDisconnect));
    ::close(c.fd);
  }
  ::close(ep);
  std::printf("loadgen: %d connections (%llu CONNACKs), %llu PINGREQ sent, %llu PINGRESP received in %.1f s "
              "(%.0f round trips/s)\n",
              conns, static_cast<unsigned long long>(connacks), static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(received), secs, static_cast<double>(received) / secs);
  return 0;
}
