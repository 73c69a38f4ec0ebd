#include "mqttlive/live_runner.h"

#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/capability.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>

#include <spdlog/spdlog.h>

#include "mqttlive/capture.h"
#include "mqttlive/event_fanout.h"
#include "mqttlive/http_server.h"
#include "mqttlive/json_events.h"
#include "mqttlive/flap_detector.h"
#include "mqttlive/metrics.h"
#include "mqttlive/status_page.h"
#include "mqttlive/state_file.h"

namespace mqttlive {

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reload{false};

void onSignal(int sig) {
  if (sig == SIGHUP)
    g_reload = true;
  else
    g_stop = true;
}

Micros wallNow() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Packets reach us up to one capture timeout after their timestamp. Ticking the
// clock this far behind real time keeps a late-delivered packet from being
// judged after a deadline it actually beat.
Micros tickLag(const CaptureConfig& c) { return 2 * c.timeout_ms * 1000 + 50'000; }

struct Source {
  std::string iface;
  std::unique_ptr<PcapCapture> cap;
  CaptureCounters last;        // cumulative counters of the current handle
  CaptureCounters carried;     // from handles closed before (restarts)
  Micros retry_at = 0;
  Micros backoff = kMicrosPerSecond;
};

bool dropPrivileges(const std::string& user, std::string& error) {
  if (geteuid() != 0 || user.empty()) return true;
  passwd* pw = getpwnam(user.c_str());
  if (pw == nullptr) {
    error = "run-as user '" + user + "' does not exist";
    return false;
  }
  // Keep CAP_NET_RAW/CAP_NET_ADMIN across setuid so a vanished interface can be reopened.
  prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L);
  if (setgroups(0, nullptr) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
    error = "cannot switch to user '" + user + "'";
    return false;
  }
  cap_t caps = cap_init();
  cap_value_t keep[] = {CAP_NET_RAW, CAP_NET_ADMIN};
  cap_set_flag(caps, CAP_PERMITTED, 2, keep, CAP_SET);
  cap_set_flag(caps, CAP_EFFECTIVE, 2, keep, CAP_SET);
  int rc = cap_set_proc(caps);
  cap_free(caps);
  if (rc != 0) {
    error = "cannot set capabilities after switching user";
    return false;
  }
  return true;
}

}  // namespace

std::string bpfForPorts(const std::vector<uint16_t>& ports) {
  std::string f;
  for (uint16_t p : ports) {
    if (!f.empty()) f += " or ";
    f += "tcp port " + std::to_string(p);
  }
  return f.empty() ? "tcp" : f;
}

int runLive(LiveRunOptions opts) {
  Config cfg = opts.config;
  std::FILE* events_out = stdout;
  if (cfg.events.output != "stdout") {
    events_out = std::fopen(cfg.events.output.c_str(), "a");
    if (events_out == nullptr) {
      spdlog::error("cannot open events output {}", cfg.events.output);
      return 1;
    }
  }
  JsonEventWriter writer(events_out, true);
  writer.setEnabled(cfg.events.types_mask);
  Metrics metrics(cfg.metrics, MQTTLIVE_VERSION);
  metrics.setInterfaces(cfg.capture.interfaces);
  FlapDetector flap(cfg.detectors.flap);  // storms, flapping ids, idle-timeout fingerprints (event time)
  EventFanout fanout{&writer, &metrics, &flap};
  auto engine = std::make_unique<Engine>(cfg.engine, fanout);

  // --- hardening: restart without amnesia (state.file) ---
  // Saves the open connections every kStateSaveEvery and at shutdown.
  constexpr Micros kStateSaveEvery = 30 * kMicrosPerSecond;
  auto saveState = [&](Micros now) {
    if (cfg.state.file.empty()) return;
    std::string serr;
    if (!saveStateFile(cfg.state.file, snapshotState(engine->tracker(), now), serr)) spdlog::warn("{}", serr);
  };
  if (!cfg.state.file.empty()) {
    SavedState saved;
    std::string serr;
    bool missing = false;
    const Micros now = wallNow();
    if (loadStateFile(cfg.state.file, now, cfg.state.max_age, saved, serr, &missing)) {
      const size_t n = restoreState(*engine, saved, now);
      spdlog::info("restored {} of {} connections from state file {}", n, saved.connections.size(), cfg.state.file);
    } else if (missing) {
      spdlog::info("no state file {} yet; starting without saved connections", cfg.state.file);
    } else {
      spdlog::warn("ignoring state file {}: {}", cfg.state.file, serr);
    }
  }
  // --- end restart without amnesia ---

  auto openSource = [&](Source& s) {
    LiveCaptureOptions o;
    o.interface = s.iface;
    o.snaplen = cfg.capture.snaplen;
    o.buffer_bytes = cfg.capture.buffer_size_bytes;
    o.timeout_ms = cfg.capture.timeout_ms;
    o.bpf = bpfForPorts(cfg.engine.broker_ports);
    std::string err;
    s.cap = PcapCapture::openLive(o, err);
    if (!s.cap) spdlog::warn("{}", err);
    s.last = CaptureCounters{};
    return s.cap != nullptr;
  };

  std::vector<Source> sources;
  for (const auto& i : cfg.capture.interfaces) sources.push_back(Source{i, nullptr, {}, {}, 0, kMicrosPerSecond});
  size_t opened = 0;
  for (auto& s : sources) opened += openSource(s);
  if (opened == 0) {
    spdlog::error("no capture could be opened; is CAP_NET_RAW granted? (see README: setcap / AmbientCapabilities)");
    return 1;
  }

  HttpServerOptions ho;
  ho.listen_address = cfg.metrics.listen_address;
  ho.metrics_path = cfg.metrics.path;
  // --- hardening: HTTP basic auth (the password only ever lives in memory) ---
  if (!cfg.metrics.basic_auth.username.empty()) {
    std::string perr;
    if (!HttpServer::loadPasswordFile(cfg.metrics.basic_auth.password_file, ho.auth_password, perr)) {
      spdlog::error("metrics.basic_auth.password_file: {}", perr);
      return 1;
    }
    ho.auth_username = cfg.metrics.basic_auth.username;
  }
  // HTTPS (metrics.tls): certificate and key are read by start(), before privileges drop.
  ho.tls_cert_file = cfg.metrics.tls.cert_file;
  ho.tls_key_file = cfg.metrics.tls.key_file;
  ho.tls_client_ca_file = cfg.metrics.tls.client_ca_file;
  HttpServer http(metrics.registry(), ho);
  std::string err;
  if (!http.start(err)) {
    spdlog::error("{}", err);
    return 1;
  }
  if (!dropPrivileges(opts.run_as_user, err)) {
    spdlog::error("{}", err);
    return 1;
  }
  metrics.setReloadResult(true, microsToSeconds(wallNow()));
  spdlog::info("mqttlive {} capturing on {} (filter '{}'), metrics on {}{}{}", MQTTLIVE_VERSION,
               fmt::join(cfg.capture.interfaces, ","), bpfForPorts(cfg.engine.broker_ports),
               cfg.metrics.listen_address, cfg.metrics.path, http.tls() ? " (https)" : "");

  struct sigaction sa {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  Micros last_ts = 0;
  Micros next_stats = 0, next_publish = 0;
  Micros next_state_save = wallNow() + kStateSaveEvery;
  // HTTPS: a renewed certificate or key file (cert-manager, certbot) is picked up within a minute.
  constexpr Micros kTlsCheckEvery = 60 * kMicrosPerSecond;
  Micros next_tls_check = wallNow() + kTlsCheckEvery;
  uint64_t drops_seen = 0;
  std::vector<pollfd> fds;
  std::vector<Source*> polled;

  auto onFrame = [&](Source& s) {
    const int link = s.cap->linkType();
    return [&, link](Micros ts, std::span<const uint8_t> frame) {
      if (ts < last_ts) ts = last_ts;  // interfaces interleave: keep packet time monotonic
      last_ts = ts;
      engine->onFrame(ts, link, frame);
    };
  };

  while (!g_stop) {
    fds.clear();
    polled.clear();
    for (auto& s : sources) {
      if (!s.cap) continue;
      int fd = s.cap->fd();
      if (fd < 0) continue;
      fds.push_back(pollfd{fd, POLLIN, 0});
      polled.push_back(&s);
    }
    poll(fds.data(), fds.size(), 100);
    const Micros now = wallNow();
    for (auto& s : sources) {
      if (!s.cap) {
        if (now >= s.retry_at) {
          if (openSource(s)) {
            spdlog::info("capture on {} reopened", s.iface);
            metrics.addCaptureRestart(s.iface);
            s.backoff = kMicrosPerSecond;
          } else {
            s.backoff = std::min<Micros>(s.backoff * 2, 30 * kMicrosPerSecond);
            s.retry_at = now + s.backoff;
          }
        }
        continue;
      }
      // Bounded batches so one busy interface cannot starve the clock tick.
      for (int round = 0; round < 64; ++round) {
        int n = s.cap->dispatch(1024, onFrame(s));
        if (n == 0) break;
        if (n < 0) {
          spdlog::warn("capture on {} failed: {}; retrying", s.iface, s.cap->lastError());
          s.carried.received += s.last.received;
          s.carried.dropped += s.last.dropped;
          s.carried.if_dropped += s.last.if_dropped;
          s.cap.reset();
          s.retry_at = now + s.backoff;
          break;
        }
      }
    }
    engine->advanceTo(std::max(last_ts, now - tickLag(cfg.capture)));
    flap.advanceTo(std::max(last_ts, now - tickLag(cfg.capture)));

    if (now >= next_stats) {
      next_stats = now + 200'000;
      CaptureCounters total;
      for (auto& s : sources) {
        if (s.cap) s.cap->stats(s.last);
        total.received += s.carried.received + s.last.received;
        total.dropped += s.carried.dropped + s.last.dropped;
        total.if_dropped += s.carried.if_dropped + s.last.if_dropped;
      }
      uint64_t drops = total.dropped + total.if_dropped;
      if (drops > drops_seen) {
        // Anything silent right now may be silent because we lost its packets.
        engine->onCaptureDrops(drops - drops_seen);
        drops_seen = drops;
      }
      metrics.update(*engine, total, now);
      metrics.updateFlap(flap.status());
    }
    if (now >= next_publish) {
      next_publish = now + 500'000;
      http.publishConnections(formatSuspectConnections(engine->tracker(), now, 1000, cfg.engine.tracker.no_keepalive_idle,
                                                       cfg.metrics.per_client.hash_client_id));
      http.publishSummary(formatSummary(engine->tracker(), flap, &metrics, now, cfg.detectors.top_n,
                                        cfg.metrics.per_client.hash_client_id));
    }
    if (now >= next_state_save) {  // hardening: state.file
      next_state_save = now + kStateSaveEvery;
      saveState(now);
    }
    if (http.tls() && now >= next_tls_check) {
      next_tls_check = now + kTlsCheckEvery;
      bool reloaded = false;
      std::string terr;
      if (!http.reloadTlsIfChanged(reloaded, terr))
        spdlog::error("metrics.tls: renewed files not loaded, keeping the running certificate: {}", terr);
      else if (reloaded)
        spdlog::info("metrics.tls: certificate and key reloaded from {}", cfg.metrics.tls.cert_file);
    }

    if (g_reload.exchange(false)) {
      try {
        Config next = opts.config_path.empty() ? opts.config : loadConfigFile(opts.config_path);
        if (!opts.flag_interfaces.empty()) next.capture.interfaces = opts.flag_interfaces;
        if (!opts.flag_ports.empty()) next.engine.broker_ports = opts.flag_ports;
        if (!opts.flag_listen_address.empty()) next.metrics.listen_address = opts.flag_listen_address;
        const bool reopen = next.capture.interfaces != cfg.capture.interfaces ||
                            next.engine.broker_ports != cfg.engine.broker_ports ||
                            next.capture.snaplen != cfg.capture.snaplen ||
                            next.capture.buffer_size_bytes != cfg.capture.buffer_size_bytes;
        if (next.metrics.listen_address != cfg.metrics.listen_address || next.metrics.path != cfg.metrics.path)
          spdlog::warn("metrics.listen_address/path changes need a restart; keeping {}{}",
                       cfg.metrics.listen_address, cfg.metrics.path);
        next.metrics.listen_address = cfg.metrics.listen_address;
        next.metrics.path = cfg.metrics.path;
        // hardening: the HTTP credentials are read once, at start.
        if (next.metrics.basic_auth.username != cfg.metrics.basic_auth.username ||
            next.metrics.basic_auth.password_file != cfg.metrics.basic_auth.password_file)
          spdlog::warn("metrics.basic_auth changes need a restart; keeping the running credentials");
        next.metrics.basic_auth = cfg.metrics.basic_auth;
        if (next.metrics.tls.cert_file != cfg.metrics.tls.cert_file ||
            next.metrics.tls.key_file != cfg.metrics.tls.key_file ||
            next.metrics.tls.client_ca_file != cfg.metrics.tls.client_ca_file) {
          spdlog::warn("metrics.tls file names changes need a restart; keeping the running certificate");
        } else if (http.tls()) {
          // Same files, maybe renewed: new connections get them.
          std::string terr;
          if (http.reloadTls(terr))
            spdlog::info("metrics.tls: certificate and key reloaded from {}", cfg.metrics.tls.cert_file);
          else
            spdlog::error("metrics.tls: reload failed, keeping the running certificate: {}", terr);
        }
        next.metrics.tls = cfg.metrics.tls;
        // Detector thresholds apply now; the windows and the table size shape its state.
        if (!flap.reconfigure(next.detectors.flap))
          spdlog::warn(
              "detectors.flapping.window_seconds, detectors.flapping.max_client_ids and "
              "detectors.storm.window_seconds changes need a restart; keeping the running values");
        next.detectors.flap = flap.config();
        cfg = next;
        engine->reconfigure(cfg.engine);
        writer.setEnabled(cfg.events.types_mask);
        metrics.setPerClient(cfg.metrics.per_client);
        if (reopen) {
          metrics.setInterfaces(cfg.capture.interfaces);
          std::vector<Source> fresh;
          for (const auto& i : cfg.capture.interfaces) fresh.push_back(Source{i, nullptr, {}, {}, 0, kMicrosPerSecond});
          for (auto& s : fresh) {
            // Keep cumulative drop counts of interfaces that stay.
            for (auto& old : sources)
              if (old.iface == s.iface) {
                s.carried.received = old.carried.received + old.last.received;
                s.carried.dropped = old.carried.dropped + old.last.dropped;
                s.carried.if_dropped = old.carried.if_dropped + old.last.if_dropped;
              }
            if (!openSource(s)) s.retry_at = now + s.backoff;
          }
          sources = std::move(fresh);
        }
        metrics.setReloadResult(true, microsToSeconds(now));
        spdlog::info("configuration reloaded; {} connections kept", engine->tracker().openCount());
      } catch (const std::exception& e) {
        metrics.setReloadResult(false, 0);
        spdlog::error("reload failed, keeping the running configuration: {}", e.what());
      }
    }
  }
  spdlog::info("stopping: {} connections open", engine->tracker().openCount());
  saveState(wallNow());  // hardening: state.file
  std::fflush(events_out);
  http.stop();
  if (events_out != stdout) std::fclose(events_out);
  return 0;
}

}  // namespace mqttlive
