// mqttlive_gen: writes a large, realistic, deterministic MQTT capture.
//
//   mqttlive_gen --out FILE [--clients N] [--packets P] [--seed S]
//                [--broker-port PORT] [--ramp SECONDS] [--v5 FRACTION]
//
// N clients connect to one broker (127.0.0.1:PORT) over a ramp, then live a
// simulated life until P frames have been written:
//   - MQTT 3.1.1 and 5.0 sessions (CONNECT/CONNACK; v5 with session expiry,
//     server keepalive overrides and broker-assigned client ids),
//   - publishers (PUBLISH QoS 0/1 with PUBACK), subscribers (broker-to-client
//     PUBLISH), pure pingers with short keepalives, keepalive-0 clients,
//   - PINGREQ/PINGRESP whenever a client has been silent for its keepalive,
//   - segmentation (large PUBLISHes cut at the MSS, small ones split at random
//     offsets, a few segments swapped out of order) and coalescing (two
//     packets in one segment),
//   - graceful leaves (DISCONNECT + FIN) followed by reconnects on a new port,
//   - vanishing hosts: the client falls silent, the broker FINs after
//     1.5 x keepalive and retransmits into the void (never acknowledged).
// Frames are streamed to disk, so memory stays flat whatever P is. All
// addresses are in 127.0.0.0/8, so replaying the file onto `lo` stays local.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <string>
#include <vector>

#include "mqttlive/mqtt_encoder.h"
#include "synth.h"

using namespace mqttlive;
using mqttlive::bench::FrameBuilder;
using mqttlive::bench::Rng;
using mqttlive::bench::StreamingPcapWriter;

namespace {

constexpr Micros kStart = 1'700'000'000LL * kMicrosPerSecond;
constexpr Micros kNever = INT64_MAX;
constexpr size_t kMss = 1448;

enum class Kind : uint8_t { kPublisher, kSubscriber, kPinger, kNoKeepalive };
enum class State : uint8_t { kOffline, kOnline, kVanishedSilent, kVanishedFin, kGone };

struct Client {
  uint32_t idx = 0;
  uint32_t generation = 0;
  Endpoint ep;
  uint32_t cseq = 0, bseq = 0;
  uint8_t level = kMqtt311;
  Kind kind = Kind::kPublisher;
  State state = State::kOffline;
  uint16_t keepalive = 60;       // requested in CONNECT
  uint16_t eff_keepalive = 60;   // after a v5 server keepalive
  bool server_keepalive = false;
  bool assigned_id = false;      // v5 client with an empty client id
  Micros period = 0;             // publish / delivery period
  Micros next_pub = kNever;
  Micros next_deliv = kNever;
  Micros last_tx = 0;            // last client control packet
  Micros vanish_at = kNever;
  int fin_retries = 0;
  uint16_t pid = 1;
};

struct Options {
  std::string out;
  uint32_t clients = 10000;
  uint64_t packets = 2'000'000;
  uint64_t seed = 1;
  uint16_t broker_port = 1883;
  double ramp_s = 10;
  double v5 = 0.35;
  double vanish = 0.03;
  double leave = 0.001;   // per action
  double segment = 0.05;  // small message split at a random offset
  double coalesce = 0.04;
  double reorder = 0.1;   // of multi-segment sends: two segments swapped
};

struct Stats {
  uint64_t connects = 0, v5_connects = 0, publishes = 0, qos1 = 0, deliveries = 0, pings = 0, leaves = 0,
           vanished = 0, split_sends = 0, reordered = 0, coalesced = 0, large = 0;
};

class Generator {
 public:
  Generator(const Options& o) : o_(o), rng_(o.seed) {
    broker_ = bench::v4Endpoint(127, 0, 0, 1, o.broker_port);
    for (size_t i = 0; i < payload_pool_.size(); ++i)
      payload_pool_[i] = static_cast<uint8_t>(" {}\":,.0123456789abcdefghijklmnopqrstuvwxyz"[rng_.below(43)]);
  }

  bool run() {
    if (!w_.open(o_.out)) {
      std::fprintf(stderr, "mqttlive_gen: cannot write %s\n", o_.out.c_str());
      return false;
    }
    clients_.resize(o_.clients);
    const Micros ramp = static_cast<Micros>(o_.ramp_s * 1e6);
    for (uint32_t i = 0; i < o_.clients; ++i) {
      Client& c = clients_[i];
      c.idx = i;
      c.level = rng_.chance(o_.v5) ? kMqtt5 : kMqtt311;
      const uint64_t k = rng_.below(100);
      if (k < 50) {
        c.kind = Kind::kPublisher;
        c.keepalive = rng_.chance(0.5) ? 30 : 60;
        c.period = rng_.range(2, 20) * kMicrosPerSecond;
      } else if (k < 70) {
        c.kind = Kind::kSubscriber;
        c.keepalive = 60;
        c.period = rng_.range(1, 10) * kMicrosPerSecond;
      } else if (k < 95) {
        static const uint16_t kShort[] = {5, 10, 15, 30};
        c.kind = Kind::kPinger;
        c.keepalive = kShort[rng_.below(4)];
      } else {
        c.kind = Kind::kNoKeepalive;
        c.keepalive = 0;
        c.period = rng_.range(30, 120) * kMicrosPerSecond;
      }
      c.eff_keepalive = c.keepalive;
      if (c.level == kMqtt5) {
        c.assigned_id = rng_.chance(0.1);
        c.server_keepalive = c.keepalive > 30 && rng_.chance(0.1);
        if (c.server_keepalive) c.eff_keepalive = 30;
      }
      if (rng_.chance(o_.vanish)) c.vanish_at = kStart + ramp + rng_.range(0, 300) * kMicrosPerSecond;
      schedule(i, kStart + rng_.range(0, std::max<Micros>(ramp, 1)));
    }
    while (!heap_.empty() && w_.frames() < o_.packets) {
      auto [t, seq, i] = heap_.top();
      heap_.pop();
      (void)seq;
      step(clients_[i], t);
    }
    return w_.close();
  }

  void report(double secs) const {
    const Micros span = w_.lastTs() - kStart;
    std::printf(
        "wrote %s: %llu frames, %.1f MB, %.1f s of traffic, %u clients\n"
        "  connects %llu (v5 %llu), publishes %llu (QoS1 %llu, large %llu), deliveries %llu, pings %llu\n"
        "  graceful leaves %llu, vanished %llu, split sends %llu (reordered %llu), coalesced %llu\n"
        "  generated in %.2f s (%.0f frames/s)\n",
        o_.out.c_str(), static_cast<unsigned long long>(w_.frames()), static_cast<double>(w_.bytes()) / 1e6,
        microsToSeconds(span), o_.clients, ull(st_.connects), ull(st_.v5_connects), ull(st_.publishes),
        ull(st_.qos1), ull(st_.large), ull(st_.deliveries), ull(st_.pings), ull(st_.leaves), ull(st_.vanished),
        ull(st_.split_sends), ull(st_.reordered), ull(st_.coalesced), secs,
        static_cast<double>(w_.frames()) / secs);
  }

 private:
  static unsigned long long ull(uint64_t v) { return static_cast<unsigned long long>(v); }

  struct Ev {
    Micros t;
    uint64_t seq;
    uint32_t client;
    bool operator>(const Ev& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };

  void schedule(uint32_t i, Micros t) { heap_.push(Ev{t, ++seq_, i}); }

  // --- frames -------------------------------------------------------------
  void frame(Micros ts, const Endpoint& src, const Endpoint& dst, uint32_t seq, uint32_t ack, uint8_t flags,
             const uint8_t* data = nullptr, size_t len = 0) {
    const size_t n = fb_.build(buf_.data(), src, dst, seq, ack, flags, data, len,
                               static_cast<uint32_t>((ts - kStart) / 1000));
    w_.write(ts, buf_.data(), n);
  }
  void clientAck(Client& c, Micros ts) { frame(ts, c.ep, broker_, c.cseq, c.bseq, tcpflag::kAck); }
  void brokerAck(Client& c, Micros ts) { frame(ts, broker_, c.ep, c.bseq, c.cseq, tcpflag::kAck); }

  // Client data: cut at the MSS, sometimes split further at random offsets,
  // sometimes with two segments swapped. Returns the time of the last segment.
  Micros clientData(Client& c, Micros ts, const std::vector<uint8_t>& bytes) {
    cuts_.clear();
    for (size_t off = kMss; off < bytes.size(); off += kMss) cuts_.push_back(off);
    if (bytes.size() > 2 && rng_.chance(o_.segment)) {
      const int extra = 1 + static_cast<int>(rng_.below(2));
      for (int k = 0; k < extra; ++k) cuts_.push_back(1 + rng_.below(bytes.size() - 1));
      std::sort(cuts_.begin(), cuts_.end());
      cuts_.erase(std::unique(cuts_.begin(), cuts_.end()), cuts_.end());
    }
    if (cuts_.empty()) {
      frame(ts, c.ep, broker_, c.cseq, c.bseq, tcpflag::kPsh | tcpflag::kAck, bytes.data(), bytes.size());
      c.cseq += static_cast<uint32_t>(bytes.size());
      return ts;
    }
    ++st_.split_sends;
    pieces_.clear();
    size_t prev = 0;
    for (size_t cut : cuts_) {
      pieces_.push_back({prev, cut - prev});
      prev = cut;
    }
    pieces_.push_back({prev, bytes.size() - prev});
    if (rng_.chance(o_.reorder)) {
      const size_t k = rng_.below(pieces_.size() - 1);
      std::swap(pieces_[k], pieces_[k + 1]);
      ++st_.reordered;
    }
    for (const auto& [off, len] : pieces_) {
      const bool last = off + len == bytes.size();
      frame(ts, c.ep, broker_, c.cseq + static_cast<uint32_t>(off), c.bseq,
            static_cast<uint8_t>(tcpflag::kAck | (last ? tcpflag::kPsh : 0)), bytes.data() + off, len);
      ts += 15;
    }
    c.cseq += static_cast<uint32_t>(bytes.size());
    return ts;
  }

  void brokerData(Client& c, Micros ts, const std::vector<uint8_t>& bytes) {
    for (size_t off = 0; off < bytes.size(); off += kMss) {
      const size_t len = std::min(kMss, bytes.size() - off);
      frame(ts, broker_, c.ep, c.bseq, c.cseq, tcpflag::kPsh | tcpflag::kAck, bytes.data() + off, len);
      c.bseq += static_cast<uint32_t>(len);
      ts += 10;
    }
  }

  std::vector<uint8_t> payload(size_t n) {
    const size_t at = rng_.below(payload_pool_.size() - n);
    return {payload_pool_.begin() + static_cast<ptrdiff_t>(at), payload_pool_.begin() + static_cast<ptrdiff_t>(at + n)};
  }
  std::string clientId(const Client& c) const {
    char id[32];
    std::snprintf(id, sizeof(id), "sensor-%06u", c.idx);
    return id;
  }
  std::string topic(const Client& c) const {
    static const char* kLeaf[] = {"temp", "humidity", "state", "telemetry"};
    char t[64];
    std::snprintf(t, sizeof(t), "site/%u/sensor-%06u/%s", c.idx % 97, c.idx, kLeaf[c.idx % 4]);
    return t;
  }

  // --- the life of a client ------------------------------------------------
  void connect(Client& c, Micros t) {
    c.ep = bench::clientEndpoint(c.idx, c.generation);
    c.cseq = static_cast<uint32_t>(rng_.next());
    c.bseq = static_cast<uint32_t>(rng_.next());
    frame(t, c.ep, broker_, c.cseq, 0, tcpflag::kSyn);
    ++c.cseq;
    frame(t + 40, broker_, c.ep, c.bseq, c.cseq, tcpflag::kSyn | tcpflag::kAck);
    ++c.bseq;
    frame(t + 80, c.ep, broker_, c.cseq, c.bseq, tcpflag::kAck);
    ConnectSpec cs;
    cs.protocol_level = c.level;
    cs.client_id = c.assigned_id ? "" : clientId(c);
    cs.keepalive = c.keepalive;
    cs.clean_start = c.generation % 2 == 0;
    cs.username = c.idx % 3 == 0 ? "device" : "";
    cs.password = c.idx % 3 == 0 ? "secret" : "";
    cs.will = c.idx % 5 == 0;
    if (c.level == kMqtt5 && c.idx % 2 == 0) {
      cs.has_session_expiry = true;
      cs.session_expiry = 3600;
    }
    Micros ts = clientData(c, t + 150, encodeConnect(cs));
    ConnackSpec ca;
    ca.protocol_level = c.level;
    ca.has_server_keepalive = c.server_keepalive;
    ca.server_keepalive = c.eff_keepalive;
    if (c.assigned_id) ca.assigned_client_id = "auto-" + clientId(c);
    brokerData(c, ts + 300, encodeConnack(ca));
    clientAck(c, ts + 340);
    c.state = State::kOnline;
    c.last_tx = t + 150;
    ++st_.connects;
    st_.v5_connects += c.level == kMqtt5;
    const Micros jitter = c.period > 0 ? rng_.range(0, c.period) : 0;
    c.next_pub = (c.kind == Kind::kPublisher || c.kind == Kind::kNoKeepalive) ? t + jitter : kNever;
    c.next_deliv = c.kind == Kind::kSubscriber ? t + jitter : kNever;
  }

  Micros pingDue(const Client& c) const {
    return c.eff_keepalive > 0 ? c.last_tx + c.eff_keepalive * kMicrosPerSecond : kNever;
  }

  void publish(Client& c, Micros t) {
    const uint8_t qos = rng_.chance(0.4) ? 1 : 0;
    const bool large = rng_.chance(0.03);
    const size_t n = large ? static_cast<size_t>(rng_.range(1000, 6000)) : static_cast<size_t>(rng_.range(20, 200));
    uint16_t pid1 = qos ? c.pid++ : 0;
    if (c.pid == 0) c.pid = 1;
    std::vector<uint8_t> bytes = encodePublish(c.level, topic(c), qos, pid1, payload(n));
    int acks = qos;
    uint16_t pid2 = 0;
    bool with_ping = false;
    if (rng_.chance(o_.coalesce)) {
      ++st_.coalesced;
      std::vector<uint8_t> more;
      if (rng_.chance(0.5)) {
        more = encodePingreq();
        with_ping = true;
        ++st_.pings;
      } else {
        pid2 = c.pid++;
        if (c.pid == 0) c.pid = 1;
        more = encodePublish(c.level, topic(c), 1, pid2, payload(static_cast<size_t>(rng_.range(20, 100))));
        ++acks;
        ++st_.publishes;
        ++st_.qos1;
      }
      bytes.insert(bytes.end(), more.begin(), more.end());
    }
    ++st_.publishes;
    st_.qos1 += qos;
    st_.large += large;
    Micros ts = clientData(c, t, bytes);
    if (acks > 0 || with_ping) {
      std::vector<uint8_t> resp;
      auto ack = [&](uint16_t id) {
        // v5 brokers sometimes add a reason code (no matching subscribers).
        auto a = encodeAck(PacketType::kPuback, c.level, id, c.level == kMqtt5 && id % 4 == 0 ? 0x10 : 0);
        resp.insert(resp.end(), a.begin(), a.end());
      };
      if (qos) ack(pid1);
      if (pid2) ack(pid2);
      if (with_ping) {
        auto r = encodePingresp();
        resp.insert(resp.end(), r.begin(), r.end());
      }
      brokerData(c, ts + 250, resp);
      clientAck(c, ts + 300);
    } else {
      brokerAck(c, ts + 200);
    }
    c.last_tx = t;
    c.next_pub = t + c.period + rng_.range(-c.period / 10, c.period / 10);
  }

  void deliver(Client& c, Micros t) {
    const uint8_t qos = rng_.chance(0.3) ? 1 : 0;
    const uint16_t id = qos ? c.pid++ : 0;
    if (c.pid == 0) c.pid = 1;
    brokerData(c, t, encodePublish(c.level, "cmd/" + clientId(c), qos, id, payload(static_cast<size_t>(rng_.range(10, 120)))));
    ++st_.deliveries;
    if (qos) {
      clientData(c, t + 120, encodeAck(PacketType::kPuback, c.level, id));
      brokerAck(c, t + 200);
      c.last_tx = t + 120;
    } else {
      clientAck(c, t + 60);
    }
    c.next_deliv = t + c.period + rng_.range(-c.period / 10, c.period / 10);
  }

  void ping(Client& c, Micros t) {
    Micros ts = clientData(c, t, encodePingreq());
    brokerData(c, ts + 180, encodePingresp());
    clientAck(c, ts + 220);
    c.last_tx = t;
    ++st_.pings;
  }

  void leave(Client& c, Micros t) {
    Micros ts = clientData(c, t, encodeDisconnect(c.level));
    frame(ts + 20, c.ep, broker_, c.cseq, c.bseq, tcpflag::kFin | tcpflag::kAck);
    ++c.cseq;
    frame(ts + 200, broker_, c.ep, c.bseq, c.cseq, tcpflag::kFin | tcpflag::kAck);
    ++c.bseq;
    clientAck(c, ts + 240);
    ++st_.leaves;
    c.state = State::kOffline;
    ++c.generation;
  }

  void step(Client& c, Micros t) {
    switch (c.state) {
      case State::kOffline:
        connect(c, t);
        break;
      case State::kOnline:
        if (t >= c.vanish_at) {
          // The host is gone: nothing from it again. The broker closes once
          // the keepalive (x1.5, as Mosquitto does) has passed in silence.
          ++st_.vanished;
          if (c.eff_keepalive == 0) {
            c.state = State::kGone;
            return;
          }
          c.state = State::kVanishedFin;
          c.fin_retries = 0;
          schedule(c.idx, c.last_tx + c.eff_keepalive * 3 * kMicrosPerSecond / 2 + rng_.range(0, 500'000));
          return;
        }
        if (rng_.chance(o_.leave)) {
          leave(c, t);
          schedule(c.idx, t + rng_.range(1, 10) * kMicrosPerSecond);
          return;
        }
        if (t >= c.next_pub) {
          publish(c, t);
        } else if (t >= c.next_deliv) {
          deliver(c, t);
        } else {
          ping(c, t);
        }
        break;
      case State::kVanishedFin: {
        // FIN, then retransmissions of it that nobody acknowledges.
        frame(t, broker_, c.ep, c.bseq, c.cseq, tcpflag::kFin | tcpflag::kAck);
        if (++c.fin_retries < 4) {
          schedule(c.idx, t + (200'000LL << c.fin_retries));
          return;
        }
        c.state = State::kGone;
        return;
      }
      case State::kVanishedSilent:
      case State::kGone:
        return;
    }
    Micros next = std::min({c.next_pub, c.next_deliv, pingDue(c), c.vanish_at});
    if (next == kNever) return;
    schedule(c.idx, std::max(next, t + 1000));
  }

  Options o_;
  Rng rng_;
  Endpoint broker_;
  StreamingPcapWriter w_;
  FrameBuilder fb_;
  std::vector<uint8_t> buf_ = std::vector<uint8_t>(65600);
  std::vector<Client> clients_;
  std::priority_queue<Ev, std::vector<Ev>, std::greater<Ev>> heap_;
  uint64_t seq_ = 0;
  Stats st_;
  std::vector<uint8_t> payload_pool_ = std::vector<uint8_t>(1 << 16);
  std::vector<size_t> cuts_;
  std::vector<std::pair<size_t, size_t>> pieces_;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: mqttlive_gen --out FILE [--clients N=10000] [--packets P=2000000] [--seed S=1]\n"
               "                    [--broker-port PORT=1883] [--ramp SECONDS=10] [--v5 FRACTION=0.35]\n"
               "                    [--vanish FRACTION=0.03]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto val = [&]() -> const char* {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--out" || a == "-o") {
      o.out = val();
    } else if (a == "--clients") {
      o.clients = static_cast<uint32_t>(std::strtoul(val(), nullptr, 10));
    } else if (a == "--packets") {
      o.packets = std::strtoull(val(), nullptr, 10);
    } else if (a == "--seed") {
      o.seed = std::strtoull(val(), nullptr, 10);
    } else if (a == "--broker-port") {
      o.broker_port = static_cast<uint16_t>(std::strtoul(val(), nullptr, 10));
    } else if (a == "--ramp") {
      o.ramp_s = std::strtod(val(), nullptr);
    } else if (a == "--v5") {
      o.v5 = std::strtod(val(), nullptr);
    } else if (a == "--vanish") {
      o.vanish = std::strtod(val(), nullptr);
    } else {
      usage();
    }
  }
  if (o.out.empty() || o.clients == 0 || o.clients > (1u << 23)) usage();
  const auto t0 = std::chrono::steady_clock::now();
  Generator g(o);
  if (!g.run()) return 1;
  g.report(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}
