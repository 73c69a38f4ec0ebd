#include "mqttlive/http_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <netinet/in.h>
#include <poll.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cstring>
#include <future>
#include <mutex>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "mqttlive/status_page.h"

namespace mqttlive {

namespace {

constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";
// Served until the engine thread publishes its first snapshot.
constexpr char kNoConnectionsYet[] = "{\"now\":null,\"connections\":[],\"truncated\":false}";

void initCivetweb() {
  // mg_init_library's own first-call setup is not thread-safe.
  static std::once_flag once;
  std::call_once(once, [] { mg_init_library(0); });
}

// mg_start2() reports only "Failed to setup server ports"; the reason (e.g.
// "Address already in use") goes to the log callback on the starting thread.
thread_local std::vector<std::string>* start_log = nullptr;

int logMessage(const mg_connection*, const char* message) {
  if (message == nullptr) return 1;
  if (start_log != nullptr) start_log->emplace_back(message);
  // civetweb would print to stderr; keep the log in one place and one format.
  spdlog::debug("http: {}", message);
  return 1;
}

bool parsePort(const std::string& s, std::string& out) {
  if (s.empty() || s.size() > 5) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 65535) return false;
  out = std::to_string(v);
  return true;
}

std::string escapeHtml(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// Opens and drops one TCP connection to the server's own listener. Non-blocking
// and bounded, so a filtered address cannot stall stop().
void poke(const sockaddr_storage& addr, socklen_t len) {
  const int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0 && errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    poll(&p, 1, 50);
  }
  close(fd);
}

}  // namespace

// ---- hardening: HTTP basic auth ----

namespace {

// RFC 4648 base64 (standard alphabet, '=' padding). False on anything else.
bool decodeBase64(std::string_view in, std::string& out) {
  out.clear();
  if (in.size() % 4 != 0) return false;
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+') v = 62;
    else if (c == '/') v = 63;
    else if (c == '=' && i + 2 >= in.size()) {
      ++pad;
      continue;
    } else {
      return false;
    }
    if (pad > 0) return false;  // data after padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return pad <= 2;
}

// Equal content and length; time depends on the lengths only.
bool constantTimeEquals(std::string_view a, std::string_view b) {
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

}  // namespace

bool HttpServer::checkBasicAuth(const char* authorization, const std::string& username,
                                const std::string& password) {
  if (authorization == nullptr) return false;
  std::string_view h(authorization);
  // Scheme names are case-insensitive (RFC 7235).
  if (h.size() < 6) return false;
  for (size_t i = 0; i < 5; ++i)
    if (std::tolower(static_cast<unsigned char>(h[i])) != "basic"[i]) return false;
  if (h[5] != ' ') return false;
  h.remove_prefix(6);
  while (!h.empty() && h.front() == ' ') h.remove_prefix(1);
  while (!h.empty() && h.back() == ' ') h.remove_suffix(1);
  std::string decoded;
  if (h.size() > 4096 || !decodeBase64(h, decoded)) return false;
  const bool ok = constantTimeEquals(decoded, username + ":" + password);
  // Do not leave the presented credentials lying around in freed memory.
  std::fill(decoded.begin(), decoded.end(), '\0');
  return ok;
}

bool HttpServer::loadPasswordFile(const std::string& path, std::string& password, std::string& error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  std::string text;
  char buf[512];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < 65536) text.append(buf, n);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) {
    error = "cannot read " + path;
    return false;
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  if (text.empty()) {
    error = path + " is empty";
    return false;
  }
  password = std::move(text);
  return true;
}

// ---- end HTTP basic auth ----

HttpServer::HttpServer(std::shared_ptr<prometheus::Registry> registry, HttpServerOptions opts)
    : registry_(std::move(registry)),
      opts_(std::move(opts)),
      connections_json_(std::make_shared<const std::string>(kNoConnectionsYet)) {}

HttpServer::~HttpServer() { stop(); }

bool HttpServer::toListeningPorts(const std::string& listen_address, std::string& out, std::string& error) {
  const std::string& a = listen_address;
  auto fail = [&](const char* why) {
    error = "web listen address '" + a + "': " + why;
    return false;
  };
  std::string host;
  std::string port;
  bool v6 = false;
  if (!a.empty() && a[0] == '[') {
    const size_t close = a.find("]:");
    if (close == std::string::npos) return fail("expected [ipv6]:port");
    host = a.substr(1, close - 1);
    port = a.substr(close + 2);
    v6 = true;
  } else {
    const size_t colon = a.rfind(':');
    if (colon == std::string::npos) {
      port = a;
    } else {
      host = a.substr(0, colon);
      port = a.substr(colon + 1);
    }
  }
  std::string p;
  if (!parsePort(port, p)) return fail("expected a port number 0-65535 after the last ':'");
  if (host.empty()) {
    if (v6) return fail("empty IPv6 address");
    out = p;
    return true;
  }
  unsigned char buf[16];
  if (inet_pton(v6 ? AF_INET6 : AF_INET, host.c_str(), buf) != 1)
    return fail(v6 ? "not an IPv6 address" : "host must be an IPv4 address or [IPv6] (no host names)");
  out = v6 ? "[" + host + "]:" + p : host + ":" + p;
  return true;
}

bool HttpServer::start(std::string& error) {
  if (ctx_ != nullptr) return true;
  std::string ports;
  if (!toListeningPorts(opts_.listen_address, ports, error)) return false;
  if (opts_.metrics_path.empty() || opts_.metrics_path[0] != '/') {
    error = "metrics path '" + opts_.metrics_path + "' must start with '/'";
    return false;
  }
  if (tls()) {
    // "9883" -> all IPv4 interfaces, "127.0.0.1:9883", "[::1]:9883".
    const size_t colon = ports.rfind(':');
    std::string host = colon == std::string::npos ? "0.0.0.0" : ports.substr(0, colon);
    if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
    return startTls(host, error);
  }
  initCivetweb();
  if (ports.front() == '[' && mg_check_feature(MG_FEATURES_IPV6) == 0) {
    error = "web listen address '" + opts_.listen_address + "': this civetweb build has no IPv6 support";
    return false;
  }

  const std::string threads = std::to_string(opts_.num_threads > 0 ? opts_.num_threads : 2);
  // No document_root: civetweb serves no files, only the handlers below.
  // clang-format off
  const char* options[] = {
      "listening_ports",    ports.c_str(),
      "num_threads",        threads.c_str(),
      "request_timeout_ms", "10000",
      "enable_keep_alive",  "no",  // one request per connection: a scraper cannot pin a thread
      nullptr};
  // clang-format on
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof callbacks);
  callbacks.log_message = logMessage;
  mg_init_data init;
  std::memset(&init, 0, sizeof init);
  init.callbacks = &callbacks;
  init.user_data = this;
  init.configuration_options = options;
  char text[256] = {};
  unsigned code = 0;
  mg_error_data err;
  std::memset(&err, 0, sizeof err);
  err.code = &code;
  err.text = text;
  err.text_buffer_size = sizeof text;

  std::vector<std::string> log;
  start_log = &log;
  mg_context* ctx = mg_start2(&init, &err);
  start_log = nullptr;
  if (ctx == nullptr) {
    std::string detail;
    for (const auto& l : log) {
      if (l == text) continue;  // the summary, already in `text`
      if (!detail.empty()) detail += "; ";
      detail += l;
    }
    if (detail.empty()) detail = text[0] != '\0' ? text : "civetweb start failed";
    error = "cannot listen on '" + opts_.listen_address + "': " + detail;
    return false;
  }
  mg_server_port sp[4];
  std::memset(sp, 0, sizeof sp);
  const int n = mg_get_server_ports(ctx, 4, sp);
  port_ = n > 0 ? static_cast<uint16_t>(sp[0].port) : 0;
  // Every path goes through one handler: "/" is civetweb's catch-all, the
  // others are registered too so that routing never depends on its prefix rules.
  for (const char* uri : {"/", "/healthz", "/connections", "/status", "/status.js", "/api/summary"})
    mg_set_request_handler(ctx, uri, handle, this);
  mg_set_request_handler(ctx, opts_.metrics_path.c_str(), handle, this);
  ctx_ = ctx;

  // Where stop() can reach the listener: the bound address, or loopback for a wildcard.
  std::string host = ports.find(':') == std::string::npos ? "" : ports.substr(0, ports.rfind(':'));
  std::memset(&wake_addr_, 0, sizeof wake_addr_);
  wake_len_ = 0;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(1, host.size() - 2);
    auto* a6 = reinterpret_cast<sockaddr_in6*>(&wake_addr_);
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port_);
    if (inet_pton(AF_INET6, host == "::" ? "::1" : host.c_str(), &a6->sin6_addr) == 1) wake_len_ = sizeof *a6;
  } else {
    auto* a4 = reinterpret_cast<sockaddr_in*>(&wake_addr_);
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port_);
    const char* h = host.empty() || host == "0.0.0.0" ? "127.0.0.1" : host.c_str();
    if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) wake_len_ = sizeof *a4;
  }
  return true;
}

void HttpServer::stop() {
  if (tls_ != nullptr) stopTls();
  if (ctx_ == nullptr) return;
  mg_context* ctx = ctx_;
  ctx_ = nullptr;
  port_ = 0;
  // civetweb's accept thread checks its stop flag only between 2 s polls, so
  // mg_stop() alone takes up to 2 s. A connection to the listener ends the
  // poll early: keep poking until mg_stop() (which joins all threads) returns.
  if (wake_len_ != 0) {
    try {
      std::promise<void> stopped;
      std::future<void> done = stopped.get_future();
      std::thread stopper([ctx, &stopped] {
        mg_stop(ctx);
        stopped.set_value();
      });
      while (done.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready)
        poke(wake_addr_, wake_len_);
      stopper.join();
      return;
    } catch (const std::system_error&) {
      // No thread available: fall through to the slow, plain stop.
    }
  }
  mg_stop(ctx);
}

void HttpServer::publishConnections(std::string json) {
  auto next = std::make_shared<const std::string>(std::move(json));
  std::lock_guard<std::mutex> lock(mu_);
  connections_json_.swap(next);
}

void HttpServer::publishSummary(std::string json) {
  auto next = std::make_shared<const std::string>(std::move(json));
  std::lock_guard<std::mutex> lock(mu_);
  summary_json_.swap(next);
}

int HttpServer::handle(mg_connection* conn, void* self) {
  // Exceptions must not unwind through civetweb's C frames. Everything that
  // can throw runs before the first byte is written, so a 500 is still possible.
  try {
    return static_cast<HttpServer*>(self)->serve(conn);
  } catch (const std::exception& e) {
    mg_send_http_error(conn, 500, "%s", e.what());
  } catch (...) {
    mg_send_http_error(conn, 500, "%s", "internal error");
  }
  return 500;
}

int HttpServer::serve(mg_connection* conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  const std::string uri = ri != nullptr && ri->local_uri != nullptr ? ri->local_uri : "";
  const std::string method = ri != nullptr && ri->request_method != nullptr ? ri->request_method : "";
  const bool head = method == "HEAD";
  const HttpReply r = respond(method, uri, mg_get_header(conn, "Authorization"));
  if (r.status == 404 || r.status == 405) {
    // civetweb's own error page, as before.
    mg_send_http_error(conn, r.status, "%s", r.body.c_str());
    return r.status;
  }
  mg_response_header_start(conn, r.status);
  mg_response_header_add(conn, "Content-Type", r.content_type.c_str(), -1);
  mg_response_header_add(conn, "Content-Length", std::to_string(r.body.size()).c_str(), -1);
  for (const auto& [name, value] : r.headers) mg_response_header_add(conn, name.c_str(), value.c_str(), -1);
  mg_response_header_send(conn);
  if (!head) mg_write(conn, r.body.data(), r.body.size());
  return r.status;
}

HttpReply HttpServer::respond(const std::string& method, const std::string& uri, const char* authorization) const {
  const bool head = method == "HEAD";
  if (method != "GET" && !head) return {405, "text/plain; charset=utf-8", "only GET and HEAD", {}};
  // Basic auth on everything but /healthz, which liveness probes reach without credentials.
  if (!opts_.auth_username.empty() && uri != "/healthz" &&
      !checkBasicAuth(authorization, opts_.auth_username, opts_.auth_password)) {
    return {401, "text/plain; charset=utf-8", "authentication required\n",
            {{"WWW-Authenticate", "Basic realm=\"mqttlive\", charset=\"UTF-8\""}}};
  }

  if (uri == opts_.metrics_path)
    return {200, kMetricsContentType, prometheus::TextSerializer().Serialize(registry_->Collect()), {}};
  if (uri == "/healthz") return {200, "text/plain; charset=utf-8", "ok", {}};
  if (uri == "/connections" || uri == "/api/summary") {
    std::shared_ptr<const std::string> body;
    {
      std::lock_guard<std::mutex> lock(mu_);
      body = uri == "/connections" ? connections_json_ : summary_json_;
    }
    return {200, "application/json", *body, {}};
  }
  if (uri == "/status" || uri == "/status.js") {
    // Static, with a CSP that runs only same-origin scripts.
    const bool page = uri == "/status";
    return {200,
            page ? "text/html; charset=utf-8" : "text/javascript; charset=utf-8",
            std::string(page ? statusPageHtml() : statusPageScript()),
            {{"Content-Security-Policy", std::string(statusPageCsp())},
             {"X-Content-Type-Options", "nosniff"},
             {"Cache-Control", "no-cache"}}};
  }
  if (uri == "/") {
    const std::string m = escapeHtml(opts_.metrics_path);
    std::string body =
        "<!DOCTYPE html>\n<html><head><title>mqttlive</title></head><body>\n"
        "<h1>mqttlive</h1>\n<p>Passive MQTT connection liveness monitor.</p>\n<ul>\n"
        "<li><a href=\"" +
        m + "\">" + m +
        "</a> &mdash; Prometheus metrics</li>\n"
        "<li><a href=\"/status\">/status</a> &mdash; live status page (suspect connections, storms)</li>\n"
        "<li><a href=\"/connections\">/connections</a> &mdash; expired and idle connections (JSON)</li>\n"
        "<li><a href=\"/healthz\">/healthz</a> &mdash; health check</li>\n"
        "</ul>\n</body></html>\n";
    return {200, "text/html; charset=utf-8", std::move(body), {}};
  }
  return {404, "text/plain; charset=utf-8", "not found", {}};
}

}  // namespace mqttlive
