// The HTTP side of the sidecar (civetweb): the Prometheus scrape endpoint,
// /healthz, /connections (a JSON snapshot published by the engine thread) and
// a small index page. Requests are served on civetweb's own threads; the only
// state they share with the engine is the registry (thread-safe) and the
// snapshot string (mutex).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

struct mg_context;
struct mg_connection;

namespace prometheus {
class Registry;
}

namespace mqttlive {

struct HttpServerOptions {
  // ":9883" (all IPv4 interfaces), "127.0.0.1:9883", "[::1]:9883". Port 0
  // picks a free port (see port()).
  std::string listen_address = ":9883";
  std::string metrics_path = "/metrics";
  int num_threads = 2;
  // HTTP basic auth for every endpoint except /healthz (liveness probes stay
  // open). Empty username: no authentication. The password comes from a file
  // (loadPasswordFile) and is never logged.
  std::string auth_username;
  std::string auth_password;
};

class HttpServer {
 public:
  HttpServer(std::shared_ptr<prometheus::Registry> registry, HttpServerOptions opts);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving. False with `error` set (naming the address) when
  // the address is malformed or cannot be bound, e.g. the port is in use.
  bool start(std::string& error);
  // Stops accepting, finishes in-flight requests and joins the threads. Idempotent.
  void stop();
  bool running() const { return ctx_ != nullptr; }
  // The bound port (useful with port 0); 0 when not running.
  uint16_t port() const { return port_; }

  // The body served at /connections (see formatSuspectConnections()).
  void publishConnections(std::string json);
  // The body served at /api/summary (see formatSummary()), read by /status.
  void publishSummary(std::string json);

  // ":9883" -> "9883", "127.0.0.1:9883" -> same, "[::1]:9883" -> same: the
  // civetweb listening_ports syntax. False with `error` set for anything
  // else (host names, missing or out-of-range port, lists).
  static bool toListeningPorts(const std::string& listen_address, std::string& out, std::string& error);

  // The password in `path`: its whole content less one trailing newline.
  // False with `error` (naming the path, never the content) when unreadable or empty.
  static bool loadPasswordFile(const std::string& path, std::string& password, std::string& error);
  // Whether an Authorization header value carries these basic credentials.
  // The comparison takes the same time wherever the first difference is.
  static bool checkBasicAuth(const char* authorization, const std::string& username, const std::string& password);

 private:
  static int handle(mg_connection* conn, void* self);
  int serve(mg_connection* conn);

  std::shared_ptr<prometheus::Registry> registry_;
  HttpServerOptions opts_;
  mg_context* ctx_ = nullptr;
  uint16_t port_ = 0;
  // Address stop() connects to so that civetweb notices the stop at once.
  sockaddr_storage wake_addr_{};
  socklen_t wake_len_ = 0;
  std::mutex mu_;
  // Readers take a reference and copy nothing under the lock.
  std::shared_ptr<const std::string> connections_json_;
  std::shared_ptr<const std::string> summary_json_ = std::make_shared<const std::string>("{\"now\":null}");
};

}  // namespace mqttlive
