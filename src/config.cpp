// YAML -> Config. Every key is dispatched by name in document order, so the
// first problem in the file is the one reported, and anything not recognised
// is an error rather than silently ignored (a misspelt key would otherwise run
// with a default the operator believes they changed).
//
// Messages are "<source>:<line>: <dotted.key>: <what is wrong>"; tests assert
// them verbatim, so wording changes here are contract changes.
#include "mqttlive/config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <set>
#include <string_view>
#include <system_error>
#include <utility>

#include "mqttlive/events.h"

namespace mqttlive {
namespace {

// Name used for errors about the document itself (there is no key to name).
constexpr const char* kTopLevel = "(top level)";

// Upper bound for durations without a natural limit: keeps seconds * 1e6
// far inside int64 Micros (secondsToMicros would overflow on e.g. 1e300).
constexpr double kMaxSeconds = 1e9;

// What a message points at: the dotted key and its 1-based line.
struct Where {
  std::string key;
  int line = 1;
};

std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return "'" + n.Scalar() + "'";
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

// yaml-cpp marks are 0-based and -1 when unknown.
int lineOf(const YAML::Node& n, int fallback) {
  const int line = n.Mark().line;
  return line >= 0 ? line + 1 : fallback;
}

std::string formatNumber(double v) {
  // Shortest fixed notation: 1.0 -> "1", 1e9 -> "1000000000", 0.5 -> "0.5".
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::fixed);
  return std::string(buf, r.ptr);
}

// YAML allows a leading '+'; std::from_chars does not.
std::string_view stripPlus(std::string_view s) {
  if (s.size() > 1 && s[0] == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
  return s;
}

using KeyHandler = std::function<void(const YAML::Node& value, const Where& where)>;
using KeyTable = std::vector<std::pair<const char*, KeyHandler>>;

class Parser {
 public:
  explicit Parser(const std::string& source) : source_(source) {}

  Config parse(const std::string& text) {
    std::vector<YAML::Node> docs;
    try {
      docs = YAML::LoadAll(text);
    } catch (const YAML::Exception& e) {
      throw ConfigError(source_ + ":" + std::to_string(e.mark.line >= 0 ? e.mark.line + 1 : 1) +
                        ": syntax error: " + e.msg);
    }
    Config c;
    // An empty file (or one with only comments) is a valid "all defaults".
    if (docs.empty()) return finish(c);
    if (docs.size() > 1) {
      fail({kTopLevel, lineOf(docs[1], 1)},
           "expected a single YAML document, got " + std::to_string(docs.size()));
    }
    const YAML::Node& root = docs[0];
    if (root.IsNull()) return finish(c);
    if (!root.IsMap()) fail({kTopLevel, lineOf(root, 1)}, "expected a mapping, got " + describe(root));

    forEachKey(root, "",
               {
                   {"capture", [&](auto& v, auto& w) { parseCapture(v, w, c.capture); }},
                   {"listeners", [&](auto& v, auto& w) { parseListeners(v, w, c.listeners); }},
                   {"keepalive", [&](auto& v, auto& w) { parseKeepalive(v, w, c); }},
                   {"limits", [&](auto& v, auto& w) { parseLimits(v, w, c.engine); }},
                   {"metrics", [&](auto& v, auto& w) { parseMetrics(v, w, c.metrics); }},
                   {"events", [&](auto& v, auto& w) { parseEvents(v, w, c.events); }},
                   {"state", [&](auto& v, auto& w) { parseState(v, w, c.state); }},
                   {"detectors", [&](auto& v, auto& w) { parseDetectors(v, w, c.detectors); }},
               });
    return finish(c);
  }

 private:
  [[noreturn]] void fail(const Where& w, const std::string& what) const {
    throw ConfigError(source_ + ":" + std::to_string(w.line) + ": " + w.key + ": " + what);
  }

  static Config& finish(Config& c) {
    applyListeners(c);
    return c;
  }

  // Calls the handler for each key of `map` (document order). `prefix` is the
  // dotted path of the map itself ("" at the top level).
  void forEachKey(const YAML::Node& map, const std::string& prefix, const KeyTable& table) const {
    std::set<std::string> seen;
    // Range-for keeps each entry alive; yaml-cpp's it->first refers into a
    // temporary that dies at the end of the statement (ASan caught it).
    for (const auto& entry : map) {
      const YAML::Node& key = entry.first;
      const int key_line = lineOf(key, 1);
      if (!key.IsScalar()) {
        fail({prefix.empty() ? kTopLevel : prefix, key_line}, "keys must be strings, got " + describe(key));
      }
      const std::string name = key.Scalar();
      const Where w{prefix.empty() ? name : prefix + "." + name, key_line};
      const KeyHandler* handler = nullptr;
      for (const auto& [known, h] : table) {
        if (name == known) handler = &h;
      }
      if (handler == nullptr) fail(w, "unknown key");
      // yaml-cpp keeps both copies of a repeated key; whichever one we used,
      // the other would be silently ignored.
      if (!seen.insert(name).second) fail(w, "duplicate key");
      (*handler)(entry.second, w);
    }
  }

  // A section: a mapping, or null (all of its keys commented out) = defaults.
  bool section(const YAML::Node& v, const Where& w) const {
    if (v.IsNull()) return false;
    if (!v.IsMap()) fail(w, "expected a mapping, got " + describe(v));
    return true;
  }

  void requireList(const YAML::Node& v, const Where& w, bool non_empty) const {
    if (!v.IsSequence()) fail(w, "expected a list, got " + describe(v));
    if (non_empty && v.size() == 0) fail(w, "must not be empty");
  }

  // Element i of a list: named "key[i]", line of the element itself.
  static Where element(const YAML::Node& item, const Where& list, size_t i) {
    return {list.key + "[" + std::to_string(i) + "]", lineOf(item, list.line)};
  }

  int64_t integer(const YAML::Node& v, const Where& w, int64_t lo, int64_t hi) const {
    if (!v.IsScalar()) fail(w, "expected an integer, got " + describe(v));
    const std::string& text = v.Scalar();
    const std::string_view s = stripPlus(text);
    int64_t out = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    const std::string range = "must be between " + std::to_string(lo) + " and " + std::to_string(hi);
    if (ec == std::errc::result_out_of_range && ptr == s.data() + s.size()) fail(w, range + ", got " + text);
    if (ec != std::errc() || ptr != s.data() + s.size()) fail(w, "expected an integer, got " + describe(v));
    if (out < lo || out > hi) fail(w, range + ", got " + text);
    return out;
  }

  // A finite number in [lo, hi], or (lo, hi] when lo_open.
  double number(const YAML::Node& v, const Where& w, double lo, bool lo_open, double hi) const {
    if (!v.IsScalar()) fail(w, "expected a number, got " + describe(v));
    const std::string& text = v.Scalar();
    const std::string_view s = stripPlus(text);
    double out = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    const bool whole = ptr == s.data() + s.size() && !s.empty();
    const std::string range = lo_open ? "must be > " + formatNumber(lo) + " and <= " + formatNumber(hi)
                                      : "must be between " + formatNumber(lo) + " and " + formatNumber(hi);
    // Overflow (1e999) is a number, just far out of range.
    if (ec == std::errc::result_out_of_range && whole) fail(w, range + ", got " + text);
    // from_chars accepts "inf"/"nan"; neither is a usable setting.
    if (ec != std::errc() || !whole || !std::isfinite(out)) fail(w, "expected a number, got " + describe(v));
    if ((lo_open ? out <= lo : out < lo) || out > hi) fail(w, range + ", got " + text);
    return out;
  }

  bool boolean(const YAML::Node& v, const Where& w) const {
    // YAML 1.2 core schema only: yaml-cpp would also take yes/no/on/off,
    // which reads ambiguously next to values like "no" as a name.
    if (v.IsScalar()) {
      const std::string& s = v.Scalar();
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    fail(w, "expected true or false, got " + describe(v));
  }

  std::string string(const YAML::Node& v, const Where& w, bool non_empty) const {
    if (!v.IsScalar()) fail(w, "expected a string, got " + describe(v));
    if (non_empty && v.Scalar().empty()) fail(w, "must not be empty");
    return v.Scalar();
  }

  // Seconds (already range-checked) to Micros. A value > 0 must not round to
  // 0 us: for these settings 0 would mean "immediately", not "tiny".
  static Micros positiveMicros(double seconds) {
    const Micros us = secondsToMicros(seconds);
    return us < 1 ? 1 : us;
  }

  void parseCapture(const YAML::Node& v, const Where& w, CaptureConfig& out) const {
    if (!section(v, w)) return;
    forEachKey(v, w.key,
               {
                   {"interfaces",
                    [&](auto& list, auto& lw) {
                      requireList(list, lw, /*non_empty=*/true);
                      std::vector<std::string> names;
                      for (size_t i = 0; i < list.size(); ++i) {
                        const Where ew = element(list[i], lw, i);
                        std::string name = string(list[i], ew, /*non_empty=*/true);
                        // The same interface twice would capture every packet twice.
                        for (const auto& prev : names) {
                          if (prev == name) fail(ew, "duplicate interface '" + name + "'");
                        }
                        names.push_back(std::move(name));
                      }
                      out.interfaces = std::move(names);
                    }},
                   {"snaplen",
                    [&](auto& x, auto& xw) { out.snaplen = static_cast<int>(integer(x, xw, 64, 262144)); }},
                   {"buffer_size_bytes",
                    [&](auto& x, auto& xw) {
                      out.buffer_size_bytes =
                          static_cast<int>(integer(x, xw, 1 << 20, std::numeric_limits<int>::max()));
                    }},
                   {"timeout_ms",
                    [&](auto& x, auto& xw) { out.timeout_ms = static_cast<int>(integer(x, xw, 1, 1000)); }},
               });
  }

  void parseListeners(const YAML::Node& v, const Where& w, std::vector<Listener>& out) const {
    requireList(v, w, /*non_empty=*/true);
    std::vector<Listener> listeners;
    std::vector<int> port_lines;
    for (size_t i = 0; i < v.size(); ++i) {
      const YAML::Node& item = v[i];
      const Where ew = element(item, w, i);
      if (!item.IsMap()) fail(ew, "expected a mapping, got " + describe(item));
      Listener l;
      bool has_port = false;
      Where keepalive_where;
      forEachKey(item, ew.key,
                 {
                     {"port",
                      [&](auto& x, auto& xw) {
                        l.port = static_cast<uint16_t>(integer(x, xw, 1, 65535));
                        has_port = true;
                        for (size_t j = 0; j < listeners.size(); ++j) {
                          if (listeners[j].port == l.port) {
                            fail(xw, "duplicate port " + std::to_string(l.port) + " (already used by " +
                                         w.key + "[" + std::to_string(j) + "])");
                          }
                        }
                      }},
                     {"kind",
                      [&](auto& x, auto& xw) {
                        const std::string kind = string(x, xw, /*non_empty=*/false);
                        if (kind == "mqtt") {
                          l.kind = ListenerKind::kMqtt;
                        } else if (kind == "tls") {
                          l.kind = ListenerKind::kTls;
                        } else if (kind == "websocket") {
                          l.kind = ListenerKind::kWebsocket;
                        } else {
                          fail(xw, "must be one of mqtt, tls, websocket, got '" + kind + "'");
                        }
                      }},
                     {"proxy_protocol", [&](auto& x, auto& xw) { l.proxy_protocol = boolean(x, xw); }},
                     {"keepalive_seconds",
                      [&](auto& x, auto& xw) {
                        l.keepalive_seconds = static_cast<uint16_t>(integer(x, xw, 1, 65535));
                        keepalive_where = xw;
                      }},
                 });
      // Inside TLS the CONNECT cannot be read; elsewhere it says the keepalive.
      if (l.keepalive_seconds != 0 && l.kind != ListenerKind::kTls)
        fail(keepalive_where, "only for kind tls (plain and websocket listeners read it from CONNECT)");
      // A listener is its port; defaulting it to 1883 would hide a typo like
      // "prot:" and could collide with another listener.
      if (!has_port) fail({ew.key + ".port", ew.line}, "required key is missing");
      listeners.push_back(l);
    }
    out = std::move(listeners);
  }

  void parseKeepalive(const YAML::Node& v, const Where& w, Config& c) const {
    if (!section(v, w)) return;
    forEachKey(v, w.key,
               {
                   {"factor",
                    [&](auto& x, auto& xw) {
                      c.engine.tracker.keepalive_factor = number(x, xw, 1.0, /*lo_open=*/false, 10.0);
                    }},
                   {"enforcement_grace_seconds",
                    [&](auto& x, auto& xw) {
                      c.enforcement_grace_seconds = number(x, xw, 0.0, /*lo_open=*/false, kMaxSeconds);
                    }},
                   {"no_keepalive_idle_seconds",
                    [&](auto& x, auto& xw) {
                      c.engine.tracker.no_keepalive_idle =
                          positiveMicros(number(x, xw, 0.0, /*lo_open=*/true, kMaxSeconds));
                    }},
                   {"close_settle_seconds",
                    [&](auto& x, auto& xw) {
                      c.engine.close_settle = positiveMicros(number(x, xw, 0.0, /*lo_open=*/true, 60.0));
                    }},
               });
  }

  void parseLimits(const YAML::Node& v, const Where& w, EngineConfig& e) const {
    if (!section(v, w)) return;
    constexpr int64_t kU32Max = std::numeric_limits<uint32_t>::max();
    forEachKey(v, w.key,
               {
                   {"max_flows",
                    [&](auto& x, auto& xw) {
                      // Every tracked connection is a flow, so one limit serves both.
                      e.max_flows = static_cast<uint32_t>(integer(x, xw, 1, kU32Max));
                      e.tracker.max_connections = e.max_flows;
                    }},
                   {"max_buffered_bytes",
                    [&](auto& x, auto& xw) {
                      e.total_buffer_bytes =
                          static_cast<uint64_t>(integer(x, xw, 65536, std::numeric_limits<int64_t>::max()));
                    }},
                   {"flow_buffer_bytes",
                    [&](auto& x, auto& xw) {
                      e.flow_buffer_bytes = static_cast<uint32_t>(integer(x, xw, 4096, kU32Max));
                    }},
                   {"max_packet_size",
                    [&](auto& x, auto& xw) {
                      e.mqtt.max_packet_size = static_cast<uint32_t>(integer(x, xw, 16, kU32Max));
                    }},
                   {"idle_flow_timeout_seconds",
                    [&](auto& x, auto& xw) {
                      // 0 keeps flows without an MQTT session forever (the default).
                      const double seconds = number(x, xw, 0.0, /*lo_open=*/false, kMaxSeconds);
                      e.idle_flow_timeout = seconds == 0.0 ? 0 : positiveMicros(seconds);
                    }},
               });
  }

  // "host:port", "[host]:port" (IPv6) or ":port" (all addresses).
  void checkListenAddress(const std::string& s, const Where& w) const {
    const std::string shape = "expected \"host:port\", \"[host]:port\" or \":port\", got '" + s + "'";
    size_t colon;
    if (!s.empty() && s[0] == '[') {
      const size_t close = s.find(']');
      if (close == std::string::npos || close == 1 || close + 1 >= s.size() || s[close + 1] != ':') {
        fail(w, shape);
      }
      colon = close + 1;
    } else {
      colon = s.find(':');
      // A second ':' is an unbracketed IPv6 address: ambiguous with the port.
      if (colon == std::string::npos || s.find(':', colon + 1) != std::string::npos) fail(w, shape);
      if (s.find_first_of("[]") != std::string::npos) fail(w, shape);
    }
    if (s.find_first_of(" \t") != std::string::npos) fail(w, shape);
    const std::string port = s.substr(colon + 1);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) {
      fail(w, shape);
    }
    const int p = std::stoi(port);
    if (p < 1 || p > 65535) fail(w, "port must be between 1 and 65535, got '" + port + "'");
  }

  void parseMetrics(const YAML::Node& v, const Where& w, MetricsConfig& m) const {
    if (!section(v, w)) return;
    forEachKey(v, w.key,
               {
                   {"listen_address",
                    [&](auto& x, auto& xw) {
                      std::string addr = string(x, xw, /*non_empty=*/false);
                      checkListenAddress(addr, xw);
                      m.listen_address = std::move(addr);
                    }},
                   {"path",
                    [&](auto& x, auto& xw) {
                      std::string path = string(x, xw, /*non_empty=*/false);
                      if (path.empty() || path[0] != '/') fail(xw, "must start with '/', got '" + path + "'");
                      m.path = std::move(path);
                    }},
                   {"per_client", [&](auto& x, auto& xw) { parsePerClient(x, xw, m.per_client); }},
                   {"basic_auth", [&](auto& x, auto& xw) { parseBasicAuth(x, xw, m.basic_auth); }},
                   {"tls", [&](auto& x, auto& xw) { parseTls(x, xw, m.tls); }},
               });
  }

  // metrics.tls: only the shape here; the files are loaded (and a bad path or
  // a key that does not match is a start-up error) when the server starts.
  void parseTls(const YAML::Node& v, const Where& w, TlsConfig& t) const {
    if (!section(v, w)) return;
    forEachKey(v, w.key,
               {
                   {"cert_file", [&](auto& x, auto& xw) { t.cert_file = string(x, xw, /*non_empty=*/true); }},
                   {"key_file", [&](auto& x, auto& xw) { t.key_file = string(x, xw, /*non_empty=*/true); }},
                   {"client_ca_file",
                    [&](auto& x, auto& xw) { t.client_ca_file = string(x, xw, /*non_empty=*/true); }},
               });
    if (t.cert_file.empty() != t.key_file.empty())
      fail(w, t.cert_file.empty() ? "key_file is set but cert_file is missing"
                                  : "cert_file is set but key_file is missing");
    if (!t.client_ca_file.empty() && t.cert_file.empty()) fail(w, "client_ca_file needs cert_file and key_file");
  }

  void parseBasicAuth(const YAML::Node& v, const Where& w, BasicAuthConfig& a) const {
    if (!section(v, w)) return;
    forEachKey(v, w.key,
               {
                   {"username",
                    [&](auto& x, auto& xw) {
                      a.username = string(x, xw, /*non_empty=*/true);
                      // RFC 7617: the user-id cannot contain a colon.
                      if (a.username.find(':') != std::string::npos) fail(xw, "must not contain ':'");
                    }},
                   {"password_file",
                    [&](auto& x, auto& xw) { a.password_file = string(x, xw, /*non_empty=*/true); }},
               });
    if (a.username.empty() != a.password_file.empty())
      fail(w, a.username.empty() ? "password_file is set but username is missing"
                                 : "username is set but password_file is missing");
  }

  void parseState(const YAML::Node& v, const Where& w, StateConfig& st) const {
    if (!section(v, w)) return;
    forEachKey(v, w.key,
               {
                   {"file", [&](auto& x, auto& xw) { st.file = string(x, xw, /*non_empty=*/false); }},
                   {"max_age_seconds",
                    [&](auto& x, auto& xw) {
                      st.max_age = positiveMicros(number(x, xw, 0.0, /*lo_open=*/true, kMaxSeconds));
                    }},
               });
  }

  // detectors.flapping / .storm / .idle_timeout: the FlapDetector thresholds.
  void parseDetectors(const YAML::Node& v, const Where& w, DetectorsConfig& d) const {
    if (!section(v, w)) return;
    FlapConfig& f = d.flap;
    forEachKey(
        v, w.key,
        {
            {"flapping",
             [&](auto& s, auto& sw) {
               if (!section(s, sw)) return;
               forEachKey(
                   s, sw.key,
                   {
                       {"window_seconds",
                        [&](auto& x, auto& xw) {
                          // Slides in FlapDetector::kWindowBuckets steps of whole seconds.
                          f.window = integer(x, xw, 10, 86400) * kMicrosPerSecond;
                        }},
                       {"connects",
                        [&](auto& x, auto& xw) {
                          f.flapping_connects = static_cast<uint32_t>(integer(x, xw, 2, 10000));
                        }},
                       {"max_client_ids",
                        [&](auto& x, auto& xw) {
                          f.max_clients = static_cast<uint32_t>(integer(x, xw, 1, 1000000));
                        }},
                       {"top_n",
                        [&](auto& x, auto& xw) {
                          d.top_n = static_cast<uint32_t>(
                              integer(x, xw, 0, static_cast<int64_t>(FlapDetector::kMaxTop)));
                        }},
                   });
             }},
            {"storm",
             [&](auto& s, auto& sw) {
               if (!section(s, sw)) return;
               forEachKey(
                   s, sw.key,
                   {
                       {"window_seconds",
                        [&](auto& x, auto& xw) {
                          f.storm_window_seconds =
                              static_cast<uint32_t>(integer(x, xw, 1, FlapDetector::kMaxStormWindow));
                        }},
                       {"factor",
                        [&](auto& x, auto& xw) { f.storm_factor = number(x, xw, 1.0, /*lo_open=*/true, 1000.0); }},
                       {"min_rate",
                        [&](auto& x, auto& xw) {
                          f.storm_floor = number(x, xw, 0.0, /*lo_open=*/true, 1000000.0);
                        }},
                       {"baseline_seconds",
                        [&](auto& x, auto& xw) {
                          f.baseline_seconds = number(x, xw, 60.0, /*lo_open=*/false, 604800.0);
                        }},
                   });
             }},
            {"idle_timeout",
             [&](auto& s, auto& sw) {
               if (!section(s, sw)) return;
               forEachKey(
                   s, sw.key,
                   {
                       {"min_closes",
                        [&](auto& x, auto& xw) {
                          // The detector remembers the last kCloseRing such closes.
                          f.fingerprint_min_closes = static_cast<uint32_t>(
                              integer(x, xw, 2, static_cast<int64_t>(FlapDetector::kCloseRing)));
                        }},
                       {"min_share",
                        [&](auto& x, auto& xw) {
                          f.fingerprint_min_fraction = number(x, xw, 0.0, /*lo_open=*/true, 1.0);
                        }},
                       {"tolerance_seconds",
                        [&](auto& x, auto& xw) {
                          f.fingerprint_tolerance = positiveMicros(number(x, xw, 0.0, /*lo_open=*/true, 60.0));
                        }},
                   });
             }},
        });
  }

  void parsePerClient(const YAML::Node& v, const Where& w, PerClientConfig& p) const {
    if (!section(v, w)) return;
    forEachKey(
        v, w.key,
        {
            {"enabled", [&](auto& x, auto& xw) { p.enabled = boolean(x, xw); }},
            {"max_series",
             [&](auto& x, auto& xw) { p.max_series = static_cast<uint32_t>(integer(x, xw, 1, 10000)); }},
            {"hash_client_id", [&](auto& x, auto& xw) { p.hash_client_id = boolean(x, xw); }},
        });
  }

  void parseEvents(const YAML::Node& v, const Where& w, EventsConfig& ev) const {
    if (!section(v, w)) return;
    forEachKey(v, w.key,
               {
                   {"output", [&](auto& x, auto& xw) { ev.output = string(x, xw, /*non_empty=*/true); }},
                   {"types", [&](auto& x, auto& xw) { eventTypes(x, xw, ev); }},
               });
  }

  // An empty list is allowed: it turns event output off while metrics go on.
  // "summary" is accepted beside the EventType names: it is a line of the same
  // JSON stream (offline runs), so operators select it the same way.
  void eventTypes(const YAML::Node& list, const Where& w, EventsConfig& ev) const {
    requireList(list, w, /*non_empty=*/false);
    constexpr int kCount = static_cast<int>(EventType::kCount);
    constexpr int kSummary = kCount;  // pseudo-type, past the real ones
    static_assert(kSummary < 32, "types_mask has one bit per EventType");
    auto nameOf = [](int t) -> std::string {
      return t == kSummary ? "summary" : toString(static_cast<EventType>(t));
    };
    std::string choices;
    for (int t = 0; t <= kSummary; ++t) choices += (t ? ", " : "") + nameOf(t);
    uint32_t mask = 0;
    for (size_t i = 0; i < list.size(); ++i) {
      const Where ew = element(list[i], w, i);
      const std::string name = string(list[i], ew, /*non_empty=*/false);
      int found = -1;
      for (int t = 0; t <= kSummary; ++t) {
        if (name == nameOf(t)) found = t;
      }
      if (found < 0) fail(ew, "must be one of " + choices + ", got '" + name + "'");
      if (mask & (1u << found)) fail(ew, "duplicate event type '" + name + "'");
      mask |= 1u << found;
    }
    ev.summary = (mask & (1u << kSummary)) != 0;
    ev.types_mask = mask & ~(1u << kSummary);
  }

  const std::string& source_;
};

}  // namespace

Config parseConfig(const std::string& yaml_text, const std::string& source) {
  return Parser(source).parse(yaml_text);
}

Config loadConfigFile(const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
  std::string text;
  char buf[8192];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f.get())) > 0) text.append(buf, n);
  // fopen succeeds on a directory; the read is what fails (EISDIR).
  if (std::ferror(f.get())) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
  return parseConfig(text, path);
}

void applyListeners(Config& c) {
  // Every listener is watched; port_options says how to read each one.
  c.engine.broker_ports.clear();
  c.engine.port_options.clear();
  for (const Listener& l : c.listeners) {
    c.engine.broker_ports.push_back(l.port);
    PortOptions o;
    o.port = l.port;
    o.transport = l.kind == ListenerKind::kTls         ? Transport::kTls
                  : l.kind == ListenerKind::kWebsocket ? Transport::kWebsocket
                                                       : Transport::kTcp;
    o.proxy_protocol = l.proxy_protocol;
    o.keepalive_seconds = l.keepalive_seconds;
    c.engine.port_options.push_back(o);
  }
}

}  // namespace mqttlive
