// The HTTP side of the sidecar: the Prometheus scrape endpoint, /healthz,
// /connections (a JSON snapshot published by the engine thread) and a small
// index page. Plain HTTP is served by civetweb; with a TLS certificate
// configured the same handlers are served over HTTPS by cpp-httplib linked
// against OpenSSL 3 (Debian's civetweb cannot do TLS: it dlopens OpenSSL 3
// through the 1.1 API and misses SSL_get_peer_certificate). Requests run on
// the server's own threads; the only state they share with the engine is the
// registry (thread-safe) and the snapshot strings (mutex).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

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
  // HTTPS (metrics.tls): PEM certificate chain and private key, loaded once at
  // start(). Empty cert: plain HTTP. With client_ca_file, clients must present
  // a certificate signed by one of its CAs (mutual TLS).
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
};

// One response, independent of the server library that sends it.
struct HttpReply {
  int status = 200;
  std::string content_type;
  std::string body;
  // Extra headers beyond Content-Type and Content-Length.
  std::vector<std::pair<std::string, std::string>> headers;
};

class HttpServer {
 public:
  HttpServer(std::shared_ptr<prometheus::Registry> registry, HttpServerOptions opts);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving. False with `error` set (naming the address) when
  // the address is malformed or cannot be bound, e.g. the port is in use, or
  // (HTTPS) when the certificate, key or client CA cannot be loaded or the key
  // does not match the certificate (naming the file and OpenSSL's reason).
  bool start(std::string& error);
  // Stops accepting, finishes in-flight requests and joins the threads. Idempotent.
  void stop();
  bool running() const { return ctx_ != nullptr || tls_ != nullptr; }
  bool tls() const { return !opts_.tls_cert_file.empty(); }
  // The bound port (useful with port 0); 0 when not running.
  uint16_t port() const { return port_; }

  // HTTPS: re-reads the certificate and key (same paths) for new connections;
  // connections already open keep theirs. False with `error` set, and the
  // running certificate kept, when the files do not load (as in start()).
  // True without doing anything when not serving HTTPS.
  bool reloadTls(std::string& error);
  // reloadTls() when the certificate or key file changed (modification time,
  // size or inode) since the last load; `reloaded` tells whether it did.
  bool reloadTlsIfChanged(bool& reloaded, std::string& error);

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

  // The response to one request, whichever library carries it: `uri` is the
  // decoded path without the query, `authorization` the header or null.
  HttpReply respond(const std::string& method, const std::string& uri, const char* authorization) const;

 private:
  struct TlsFront;  // http_server_tls.cpp
  struct TlsFrontDeleter {
    void operator()(TlsFront* t) const;
  };
  static int handle(mg_connection* conn, void* self);
  int serve(mg_connection* conn);
  bool startTls(const std::string& host, std::string& error);
  void stopTls();

  std::shared_ptr<prometheus::Registry> registry_;
  HttpServerOptions opts_;
  mg_context* ctx_ = nullptr;
  std::unique_ptr<TlsFront, TlsFrontDeleter> tls_;
  uint16_t port_ = 0;
  // Address stop() connects to so that civetweb notices the stop at once.
  sockaddr_storage wake_addr_{};
  socklen_t wake_len_ = 0;
  mutable std::mutex mu_;
  // Readers take a reference and copy nothing under the lock.
  std::shared_ptr<const std::string> connections_json_;
  std::shared_ptr<const std::string> summary_json_ = std::make_shared<const std::string>("{\"now\":null}");
};

}  // namespace mqttlive
