// HTTPS for the HTTP endpoints (metrics.tls): the handlers of http_server.cpp
// (HttpServer::respond) served by cpp-httplib's SSLServer, which Debian builds
// against OpenSSL 3. civetweb stays the plain-HTTP server; Debian's civetweb
// 1.15 cannot do TLS (it dlopens "libssl.so" expecting the OpenSSL 1.1 API and
// finds no SSL_get_peer_certificate in OpenSSL 3).
//
// The SSL_CTX is set up here, not by httplib's path constructor, so that every
// failure names its file and OpenSSL's reason, an encrypted key fails instead
// of prompting on the terminal, and the protocol floor is TLS 1.2.
#include <httplib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "mqttlive/http_server.h"

namespace mqttlive {

namespace {

// What identifies a loaded file's version: a renewal (cert-manager writes a
// new file and swaps a symlink; certbot rewrites) changes one of these.
struct FileStamp {
  bool ok = false;
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  timespec mtime{};
  bool operator==(const FileStamp& o) const {
    return ok == o.ok && dev == o.dev && ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

FileStamp stampOf(const std::string& path) {
  FileStamp f;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return f;
  f.ok = true;
  f.dev = st.st_dev;
  f.ino = st.st_ino;
  f.size = st.st_size;
  f.mtime = st.st_mtim;
  return f;
}

// Certificate reload: new handshakes switch to `ctx` (a context loaded later
// from the same files) in the server-name callback, which OpenSSL calls on
// every ClientHello, with or without SNI.
struct CurrentContext {
  std::mutex mu;
  SSL_CTX* ctx = nullptr;  // one reference owned; null until a reload
  FileStamp cert_stamp, key_stamp;
  ~CurrentContext() {
    if (ctx != nullptr) SSL_CTX_free(ctx);
  }
  void replace(SSL_CTX* next) {
    std::lock_guard<std::mutex> lock(mu);
    std::swap(ctx, next);
    if (next != nullptr) SSL_CTX_free(next);  // handshakes that took it hold their own reference
  }
};

int useCurrentContext(SSL* ssl, int*, void* arg) {
  auto* cur = static_cast<CurrentContext*>(arg);
  std::lock_guard<std::mutex> lock(cur->mu);
  if (cur->ctx != nullptr && SSL_get_SSL_CTX(ssl) != cur->ctx) SSL_set_SSL_CTX(ssl, cur->ctx);
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace

struct HttpServer::TlsFront {
  std::unique_ptr<httplib::SSLServer> server;
  std::thread thread;
  std::atomic<bool> done{false};  // listen_after_bind() returned
  // Freed before `server`; stopTls() has joined every handshake by then.
  CurrentContext current;
};

void HttpServer::TlsFrontDeleter::operator()(TlsFront* t) const { delete t; }

namespace {

// OpenSSL's queued errors, oldest first, as one line; the queue is emptied.
std::string opensslErrors() {
  std::string out;
  char buf[256];
  for (unsigned long e; (e = ERR_get_error()) != 0;) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

// A missing or unreadable file gets the system's reason rather than OpenSSL's
// "system lib" chain.
bool readable(const std::string& path, const char* key, std::string& error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    error = std::string(key) + " '" + path + "': cannot read: " + std::strerror(errno);
    return false;
  }
  std::fclose(f);
  return true;
}

// An encrypted key must not make OpenSSL prompt on the terminal: no passphrase.
int noPassphrase(char*, int, int, void*) { return 0; }

bool configureContext(SSL_CTX& ctx, const HttpServerOptions& o, std::string& error) {
  ERR_clear_error();
  const std::string& cert = o.tls_cert_file;
  const std::string& key = o.tls_key_file.empty() ? o.tls_cert_file : o.tls_key_file;
  if (!readable(cert, "metrics.tls.cert_file", error) || !readable(key, "metrics.tls.key_file", error)) return false;
  if (!o.tls_client_ca_file.empty() && !readable(o.tls_client_ca_file, "metrics.tls.client_ca_file", error))
    return false;
  SSL_CTX_set_min_proto_version(&ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(&ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_default_passwd_cb(&ctx, noPassphrase);
  // Without it a resumed session fails the handshake once clients must present
  // a certificate ("session id context uninitialized").
  static constexpr unsigned char kSessionContext[] = "mqttlive";
  SSL_CTX_set_session_id_context(&ctx, kSessionContext, sizeof kSessionContext - 1);
  if (SSL_CTX_use_certificate_chain_file(&ctx, cert.c_str()) != 1) {
    error = "metrics.tls.cert_file '" + cert + "': not a usable PEM certificate: " + opensslErrors();
    return false;
  }
  if (SSL_CTX_use_PrivateKey_file(&ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
      error = "metrics.tls.key_file '" + key + "' does not match the certificate in '" + cert + "': " + opensslErrors();
      return false;
    }
    error = "metrics.tls.key_file '" + key + "': not a usable unencrypted PEM private key: " + opensslErrors();
    return false;
  }
  if (SSL_CTX_check_private_key(&ctx) != 1) {
    error = "metrics.tls.key_file '" + key + "' does not match the certificate in '" + cert + "': " + opensslErrors();
    return false;
  }
  if (!o.tls_client_ca_file.empty()) {
    const std::string& ca = o.tls_client_ca_file;
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(ca.c_str());
    if (names == nullptr || SSL_CTX_load_verify_locations(&ctx, ca.c_str(), nullptr) != 1) {
      if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
      error = "metrics.tls.client_ca_file '" + ca + "': no usable PEM CA certificate: " + opensslErrors();
      return false;
    }
    SSL_CTX_set_client_CA_list(&ctx, names);  // takes ownership
    SSL_CTX_set_verify(&ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  return true;
}

}  // namespace

bool HttpServer::startTls(const std::string& host, std::string& error) {
  // listen_address was validated by toListeningPorts(); the port follows the last ':'.
  const std::string& a = opts_.listen_address;
  const int port = std::stoi(a.substr(a.rfind(':') == std::string::npos ? 0 : a.rfind(':') + 1));

  std::unique_ptr<TlsFront, TlsFrontDeleter> front(new TlsFront);
  std::string ctx_error;
  front->current.cert_stamp = stampOf(opts_.tls_cert_file);
  front->current.key_stamp = stampOf(opts_.tls_key_file);
  CurrentContext* current = &front->current;
  front->server = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
    if (!configureContext(ctx, opts_, ctx_error)) return false;
    SSL_CTX_set_tlsext_servername_callback(&ctx, useCurrentContext);
    SSL_CTX_set_tlsext_servername_arg(&ctx, current);
    return true;
  });
  if (!front->server->is_valid()) {
    error = !ctx_error.empty() ? ctx_error : "metrics.tls: cannot create a TLS context: " + opensslErrors();
    return false;
  }
  httplib::SSLServer& svr = *front->server;
  const size_t threads = opts_.num_threads > 0 ? static_cast<size_t>(opts_.num_threads) : 2;
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // httplib's default sets SO_REUSEPORT, which would let a second instance
  // bind the same port silently; plain SO_REUSEADDR like civetweb.
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  // Like the civetweb side: one request per connection (a scraper cannot pin
  // a thread), bounded waits, no request bodies worth reading.
  svr.set_keep_alive_max_count(1);
  svr.set_read_timeout(10);
  svr.set_write_timeout(10);
  svr.set_payload_max_length(64 * 1024);
  svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    try {
      const bool has_auth = req.has_header("Authorization");
      const std::string auth = has_auth ? req.get_header_value("Authorization") : std::string();
      HttpReply r = respond(req.method, req.path, has_auth ? auth.c_str() : nullptr);
      res.status = r.status;
      for (const auto& [name, value] : r.headers) res.set_header(name, value);
      res.set_content(r.body, r.content_type);
    } catch (...) {
      res.status = 500;
      res.set_content("internal error", "text/plain; charset=utf-8");
    }
    return httplib::Server::HandlerResponse::Handled;
  });

  errno = 0;
  const int bound = port == 0 ? svr.bind_to_any_port(host) : (svr.bind_to_port(host, port) ? port : -1);
  if (bound < 0) {
    error = "cannot listen on '" + opts_.listen_address + "' (https): " +
            (errno != 0 ? std::strerror(errno) : "bind failed");
    return false;
  }
  TlsFront& f = *front;
  front->thread = std::thread([&f] {
    f.server->listen_after_bind();
    f.done = true;
  });
  // stop() is a no-op until the accept loop runs; wait for it so that an
  // immediate stop() cannot leave the thread listening.
  for (int i = 0; i < 500 && !svr.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
  port_ = static_cast<uint16_t>(bound);
  tls_ = std::move(front);
  return true;
}

void HttpServer::stopTls() {
  std::unique_ptr<TlsFront, TlsFrontDeleter> front = std::move(tls_);
  port_ = 0;
  if (front == nullptr) return;
  // httplib's stop() does nothing before the accept loop runs and must not be
  // called twice: wait for the loop (or its end), stop it once, join.
  while (!front->done) {
    if (front->server->is_running()) {
      front->server->stop();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  front->thread.join();
}

bool HttpServer::reloadTls(std::string& error) {
  if (tls_ == nullptr) return true;
  CurrentContext& cur = tls_->current;
  const FileStamp cert = stampOf(opts_.tls_cert_file), key = stampOf(opts_.tls_key_file);
  SSL_CTX* next = SSL_CTX_new(TLS_server_method());
  if (next == nullptr) {
    error = "metrics.tls: cannot create a TLS context: " + opensslErrors();
    return false;
  }
  if (!configureContext(*next, opts_, error)) {
    SSL_CTX_free(next);
    return false;
  }
  cur.replace(next);
  std::lock_guard<std::mutex> lock(cur.mu);
  cur.cert_stamp = cert;
  cur.key_stamp = key;
  return true;
}

bool HttpServer::reloadTlsIfChanged(bool& reloaded, std::string& error) {
  reloaded = false;
  if (tls_ == nullptr) return true;
  {
    CurrentContext& cur = tls_->current;
    std::lock_guard<std::mutex> lock(cur.mu);
    if (stampOf(opts_.tls_cert_file) == cur.cert_stamp && stampOf(opts_.tls_key_file) == cur.key_stamp) return true;
  }
  reloaded = reloadTls(error);
  return reloaded;
}

}  // namespace mqttlive
