// HTTPS for the HTTP endpoints (metrics.tls): a server started with a
// certificate made here by the openssl CLI (a test CA, a server certificate for
// 127.0.0.1, a client certificate), queried by an OpenSSL client that verifies
// the server against the CA. Plain HTTP is not served on the TLS port, basic
// auth and mutual TLS are enforced, and every bad file is a clear start error.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "mqttlive/http_server.h"
#include "support/base64.h"
#include "mqttlive/metrics.h"

namespace mqttlive {
namespace {

using test::base64;

namespace fs = std::filesystem;

// ---- test PKI, made once per run with the openssl CLI ----

class Pki {
 public:
  Pki() {
    char tmpl[] = "/tmp/mqttlive-https-XXXXXX";
    dir_ = mkdtemp(tmpl);
    ok_ = run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
              "-subj /CN=mqttlive-test-ca -keyout ca.key -out ca.pem") &&
          run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
              "-subj /CN=other-ca -keyout other-ca.key -out other-ca.pem") &&
          leaf("server", "subjectAltName=IP:127.0.0.1,DNS:localhost") &&
          leaf("server2", "subjectAltName=IP:127.0.0.1,DNS:localhost") &&
          leaf("client", "extendedKeyUsage=clientAuth") &&
          run("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out unrelated.key") &&
          run("openssl pkey -in server.key -aes256 -passout pass:pw -out encrypted.key");
    std::ofstream(path("garbage.pem")) << "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
  }
  ~Pki() {
    if (std::getenv("MQTTLIVE_KEEP_PKI") == nullptr) fs::remove_all(dir_);
  }
  bool ok() const { return ok_; }
  std::string path(const std::string& name) const { return (fs::path(dir_) / name).string(); }

 private:
  bool run(const std::string& cmd) const {
    const std::string full = "cd '" + dir_ + "' && " + cmd + " >/dev/null 2>&1";
    return std::system(full.c_str()) == 0;
  }
  bool leaf(const std::string& name, const std::string& ext) const {
    std::ofstream(path(name + ".ext")) << ext << "\n";
    return run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=" + name +
               " -keyout " + name + ".key -out " + name + ".csr") &&
           run("openssl x509 -req -in " + name + ".csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile " +
               name + ".ext -out " + name + ".pem");
  }
  std::string dir_;
  bool ok_ = false;
};

Pki& pki() {
  static Pki p;
  return p;
}

// A client that gives up mid-handshake must not kill the test with SIGPIPE
// (mqttlive itself ignores SIGPIPE in live mode).
const bool kIgnoreSigpipe = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

// ---- a minimal verifying HTTPS client on OpenSSL ----

struct Reply {
  bool handshake = false;  // TLS established and the server verified
  bool resumed = false;
  int status = 0;          // 0: no HTTP response
  std::string headers;     // raw, lower-cased names not normalised
  std::string body;
  std::string error;
  std::string peer;  // the server certificate's subject, "/CN=..."
};

struct ClientOptions {
  std::string ca_file;  // verify the server against it (empty: no verification)
  std::string cert_file, key_file;
  int max_version = 0;  // e.g. TLS1_1_VERSION
  // Session resumption: offered when *session is set; the new session is kept there.
  SSL_SESSION** session = nullptr;
};

int connectLoopback(uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void parse(const std::string& raw, Reply& r) {
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos || raw.compare(0, 9, "HTTP/1.1 ") != 0) return;
  r.status = std::atoi(raw.substr(9, 3).c_str());
  r.headers = raw.substr(0, end);
  r.body = raw.substr(end + 4);
}

Reply httpsRequest(uint16_t port, const ClientOptions& o, const std::string& method, const std::string& path,
                   const std::string& extra_headers = "") {
  Reply r;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()), SSL_CTX_free);
  if (!o.ca_file.empty()) {
    SSL_CTX_load_verify_locations(ctx.get(), o.ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(ctx.get()), "127.0.0.1");
  }
  if (!o.cert_file.empty()) {
    SSL_CTX_use_certificate_file(ctx.get(), o.cert_file.c_str(), SSL_FILETYPE_PEM);
    SSL_CTX_use_PrivateKey_file(ctx.get(), o.key_file.c_str(), SSL_FILETYPE_PEM);
  }
  if (o.max_version != 0) {
    SSL_CTX_set_security_level(ctx.get(), 0);
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx.get(), o.max_version);
  }
  const int fd = connectLoopback(port);
  if (fd < 0) {
    r.error = "connect failed";
    return r;
  }
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  SSL_set_fd(ssl.get(), fd);
  if (o.session != nullptr && *o.session != nullptr) SSL_set_session(ssl.get(), *o.session);
  if (SSL_connect(ssl.get()) != 1) {
    char buf[256] = "handshake failed";
    if (const unsigned long e = ERR_get_error(); e != 0) ERR_error_string_n(e, buf, sizeof buf);
    r.error = buf;
    ERR_clear_error();
    close(fd);
    return r;
  }
  r.handshake = true;
  if (X509* cert = SSL_get1_peer_certificate(ssl.get()); cert != nullptr) {
    char name[256];
    X509_NAME_oneline(X509_get_subject_name(cert), name, sizeof name);
    r.peer = name;
    X509_free(cert);
  }
  const std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" +
                          extra_headers + "\r\n";
  std::string raw;
  if (SSL_write(ssl.get(), req.data(), static_cast<int>(req.size())) == static_cast<int>(req.size())) {
    char buf[4096];
    for (int n; (n = SSL_read(ssl.get(), buf, sizeof buf)) > 0;) raw.append(buf, static_cast<size_t>(n));
  }
  // With TLS 1.3 a refused client certificate shows up only on the first read.
  if (raw.empty()) {
    if (const unsigned long e = ERR_get_error(); e != 0) {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      r.error = buf;
    }
  }
  ERR_clear_error();
  r.resumed = SSL_session_reused(ssl.get()) == 1;
  if (o.session != nullptr) {
    if (*o.session != nullptr) SSL_SESSION_free(*o.session);
    *o.session = SSL_get1_session(ssl.get());
  }
  SSL_shutdown(ssl.get());
  close(fd);
  parse(raw, r);
  return r;
}

std::string header(const Reply& r, const std::string& name) {
  std::string h = r.headers;
  for (auto& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const size_t at = h.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  const size_t from = at + 4 + name.size();
  return r.headers.substr(from, r.headers.find("\r\n", from) - from);
}

HttpServerOptions tlsOptions() {
  HttpServerOptions o;
  o.listen_address = "127.0.0.1:0";
  o.tls_cert_file = pki().path("server.pem");
  o.tls_key_file = pki().path("server.key");
  return o;
}

ClientOptions verifying() {
  ClientOptions c;
  c.ca_file = pki().path("ca.pem");
  return c;
}

class HttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki().ok()) << "openssl CLI failed to make the test certificates";
    server = std::make_unique<HttpServer>(metrics.registry(), options());
    std::string error;
    ASSERT_TRUE(server->start(error)) << error;
    ASSERT_TRUE(server->tls());
    ASSERT_NE(server->port(), 0);
  }
  virtual HttpServerOptions options() { return tlsOptions(); }
  Metrics metrics{MetricsConfig{}, "9.9.9"};
  std::unique_ptr<HttpServer> server;
};

TEST_F(HttpsTest, ServesEveryEndpointVerifiedAgainstTheCa) {
  metrics.onPingRtt(1000);
  Reply r = httpsRequest(server->port(), verifying(), "GET", "/metrics");
  ASSERT_TRUE(r.handshake) << r.error;
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(header(r, "content-type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(header(r, "content-length"), std::to_string(r.body.size()));
  EXPECT_NE(r.body.find("\nmqttlive_build_info{version=\"9.9.9\"} 1\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\nmqttlive_ping_rtt_seconds_count 1\n"), std::string::npos);

  r = httpsRequest(server->port(), verifying(), "GET", "/healthz?x=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
  server->publishConnections("{\"now\":1,\"connections\":[],\"truncated\":false}");
  r = httpsRequest(server->port(), verifying(), "GET", "/connections");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(header(r, "content-type"), "application/json");
  EXPECT_EQ(r.body, "{\"now\":1,\"connections\":[],\"truncated\":false}");
  EXPECT_EQ(httpsRequest(server->port(), verifying(), "GET", "/api/summary").status, 200);
  r = httpsRequest(server->port(), verifying(), "GET", "/status");
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(header(r, "content-security-policy"), "");
  EXPECT_EQ(header(r, "x-content-type-options"), "nosniff");
  EXPECT_NE(httpsRequest(server->port(), verifying(), "GET", "/").body.find("href=\"/metrics\""), std::string::npos);
  r = httpsRequest(server->port(), verifying(), "HEAD", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(httpsRequest(server->port(), verifying(), "GET", "/nope").status, 404);
  EXPECT_EQ(httpsRequest(server->port(), verifying(), "POST", "/metrics").status, 405);
}

TEST_F(HttpsTest, PlainHttpIsNotServedOnTheTlsPort) {
  const int fd = connectLoopback(server->port());
  ASSERT_GE(fd, 0);
  const std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
  std::string raw;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) raw.append(buf, static_cast<size_t>(n));
  close(fd);
  // At most a TLS alert, never an HTTP response or a metric.
  EXPECT_EQ(raw.find("HTTP/"), std::string::npos) << raw;
  EXPECT_EQ(raw.find("mqttlive_"), std::string::npos) << raw;
  // The server is still fine afterwards.
  EXPECT_EQ(httpsRequest(server->port(), verifying(), "GET", "/healthz").status, 200);
}

TEST_F(HttpsTest, ClientsTrustingAnotherCaRefuseTheServer) {
  ClientOptions other;
  other.ca_file = pki().path("other-ca.pem");
  const Reply r = httpsRequest(server->port(), other, "GET", "/metrics");
  EXPECT_FALSE(r.handshake);
  EXPECT_NE(r.error.find("certificate verify failed"), std::string::npos) << r.error;
}

TEST_F(HttpsTest, OldProtocolVersionsAreRefused) {
  ClientOptions old = verifying();
  old.max_version = TLS1_1_VERSION;
  const Reply r = httpsRequest(server->port(), old, "GET", "/healthz");
  EXPECT_FALSE(r.handshake) << "TLS 1.1 was accepted";
  ClientOptions v12 = verifying();
  v12.max_version = TLS1_2_VERSION;
  EXPECT_EQ(httpsRequest(server->port(), v12, "GET", "/healthz").status, 200);
}

TEST_F(HttpsTest, StopIsPromptAndReleasesThePort) {
  const uint16_t port = server->port();
  const auto t0 = std::chrono::steady_clock::now();
  server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(2));
  EXPECT_FALSE(server->running());
  EXPECT_LT(connectLoopback(port), 0);
  server->stop();  // idempotent
  // The same port can be bound again at once.
  HttpServerOptions again = tlsOptions();
  again.listen_address = "127.0.0.1:" + std::to_string(port);
  HttpServer second(metrics.registry(), again);
  std::string error;
  EXPECT_TRUE(second.start(error)) << error;
}

TEST_F(HttpsTest, SecondServerOnTheSamePortFailsCleanly) {
  HttpServerOptions same = tlsOptions();
  same.listen_address = "127.0.0.1:" + std::to_string(server->port());
  HttpServer second(metrics.registry(), same);
  std::string error;
  EXPECT_FALSE(second.start(error));
  EXPECT_FALSE(second.running());
  EXPECT_NE(error.find(same.listen_address), std::string::npos) << error;
  EXPECT_NE(error.find("Address already in use"), std::string::npos) << error;
  EXPECT_EQ(httpsRequest(server->port(), verifying(), "GET", "/healthz").status, 200);
}

constexpr char kPassword[] = "pa:ss w\xc3\xb6rd-S3cr3t";

class HttpsAuthTest : public HttpsTest {
  HttpServerOptions options() override {
    HttpServerOptions o = tlsOptions();
    o.auth_username = "prom";
    o.auth_password = kPassword;
    return o;
  }
};

TEST_F(HttpsAuthTest, BasicAuthIsStillEnforced) {
  const uint16_t port = server->port();
  for (const char* path : {"/metrics", "/connections", "/", "/status", "/api/summary", "/nope"}) {
    SCOPED_TRACE(path);
    const Reply r = httpsRequest(port, verifying(), "GET", path);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(header(r, "www-authenticate"), "Basic realm=\"mqttlive\", charset=\"UTF-8\"");
    EXPECT_EQ(r.body.find("mqttlive_"), std::string::npos);
  }
  EXPECT_EQ(httpsRequest(port, verifying(), "GET", "/healthz").body, "ok");
  const std::string good = "Authorization: Basic " + base64(std::string("prom:") + kPassword) + "\r\n";
  const Reply r = httpsRequest(port, verifying(), "GET", "/metrics", good);
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("mqttlive_build_info"), std::string::npos);
  const std::string bad = "Authorization: Basic " + base64("prom:wrong") + "\r\n";
  EXPECT_EQ(httpsRequest(port, verifying(), "GET", "/metrics", bad).status, 401);
}

class HttpsMutualTest : public HttpsTest {
  HttpServerOptions options() override {
    HttpServerOptions o = tlsOptions();
    o.tls_client_ca_file = pki().path("ca.pem");
    return o;
  }
};

TEST_F(HttpsMutualTest, ClientCertificateSignedByTheCaIsRequired) {
  Reply r = httpsRequest(server->port(), verifying(), "GET", "/metrics");
  EXPECT_NE(r.status, 200) << "served without a client certificate";
  EXPECT_EQ(r.body.find("mqttlive_"), std::string::npos);

  ClientOptions with_cert = verifying();
  with_cert.cert_file = pki().path("client.pem");
  with_cert.key_file = pki().path("client.key");
  r = httpsRequest(server->port(), with_cert, "GET", "/metrics");
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_NE(r.body.find("mqttlive_build_info"), std::string::npos);

  // A self-signed client certificate from another CA is refused too.
  ClientOptions foreign = verifying();
  foreign.cert_file = pki().path("other-ca.pem");
  foreign.key_file = pki().path("other-ca.key");
  EXPECT_NE(httpsRequest(server->port(), foreign, "GET", "/metrics").status, 200);
}

// Clients that resume a TLS session (curl, Python, browsers) are served on the
// resumed session too when a client certificate is required.
TEST_F(HttpsMutualTest, ResumedSessionsAreServed) {
  for (int max : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    SCOPED_TRACE(max);
    SSL_SESSION* session = nullptr;
    ClientOptions c = verifying();
    c.cert_file = pki().path("client.pem");
    c.key_file = pki().path("client.key");
    c.max_version = max;
    c.session = &session;
    Reply first = httpsRequest(server->port(), c, "GET", "/healthz");
    ASSERT_EQ(first.status, 200) << first.error;
    ASSERT_NE(session, nullptr);
    Reply second = httpsRequest(server->port(), c, "GET", "/healthz");
    EXPECT_EQ(second.status, 200) << second.error;
    EXPECT_TRUE(second.resumed);
    SSL_SESSION_free(session);
  }
}

// A renewed certificate is picked up without a restart (SIGHUP or the periodic
// check call these): new connections get it, a bad renewal keeps the old one.
TEST(HttpsReload, RenewedCertificateServesNewConnectionsAndBadFilesKeepTheOld) {
  ASSERT_TRUE(pki().ok());
  const std::string cert = pki().path("live-cert.pem"), key = pki().path("live-key.pem");
  auto install = [&](const std::string& c, const std::string& k) {
    fs::copy_file(pki().path(k), key, fs::copy_options::overwrite_existing);
    fs::copy_file(pki().path(c), cert, fs::copy_options::overwrite_existing);
  };
  install("server.pem", "server.key");
  Metrics metrics{MetricsConfig{}, "9.9.9"};
  HttpServerOptions o = tlsOptions();
  o.tls_cert_file = cert;
  o.tls_key_file = key;
  HttpServer server(metrics.registry(), o);
  std::string error;
  ASSERT_TRUE(server.start(error)) << error;
  Reply r = httpsRequest(server.port(), verifying(), "GET", "/healthz");
  EXPECT_EQ(r.peer, "/CN=server");
  bool reloaded = true;
  EXPECT_TRUE(server.reloadTlsIfChanged(reloaded, error)) << error;
  EXPECT_FALSE(reloaded);  // nothing changed

  install("server2.pem", "server2.key");
  EXPECT_TRUE(server.reloadTlsIfChanged(reloaded, error)) << error;
  EXPECT_TRUE(reloaded);
  r = httpsRequest(server.port(), verifying(), "GET", "/metrics");
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.peer, "/CN=server2");

  // A renewal gone wrong: the key does not match. The running certificate stays.
  fs::copy_file(pki().path("unrelated.key"), key, fs::copy_options::overwrite_existing);
  EXPECT_FALSE(server.reloadTls(error));
  EXPECT_NE(error.find("does not match the certificate"), std::string::npos) << error;
  EXPECT_FALSE(server.reloadTlsIfChanged(reloaded, error));  // still changed, still bad: retried, reported
  r = httpsRequest(server.port(), verifying(), "GET", "/healthz");
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.peer, "/CN=server2");

  install("server.pem", "server.key");
  EXPECT_TRUE(server.reloadTls(error)) << error;
  EXPECT_EQ(httpsRequest(server.port(), verifying(), "GET", "/healthz").peer, "/CN=server");
  server.stop();
  fs::remove(cert);
  fs::remove(key);
}

// Plain HTTP: nothing to reload.
TEST(HttpsReload, PlainServerHasNothingToReload) {
  Metrics metrics{MetricsConfig{}, "9.9.9"};
  HttpServerOptions o;
  o.listen_address = "127.0.0.1:0";
  HttpServer server(metrics.registry(), o);
  std::string error;
  ASSERT_TRUE(server.start(error)) << error;
  bool reloaded = true;
  EXPECT_TRUE(server.reloadTls(error));
  EXPECT_TRUE(server.reloadTlsIfChanged(reloaded, error));
  EXPECT_FALSE(reloaded);
}

// Every bad file is a start error that names the key, the file and the reason.
TEST(HttpsStart, BadCertificateKeyOrCaIsAClearError) {
  ASSERT_TRUE(pki().ok());
  auto registry = std::make_shared<prometheus::Registry>();
  struct Case {
    const char* what;
    std::string cert, key, ca;
    std::string expect;
  };
  const std::string missing = pki().path("missing.pem");
  const Case cases[] = {
      {"missing cert", missing, pki().path("server.key"), "",
       "metrics.tls.cert_file '" + missing + "': cannot read: No such file or directory"},
      {"missing key", pki().path("server.pem"), missing, "",
       "metrics.tls.key_file '" + missing + "': cannot read: No such file or directory"},
      {"garbage cert", pki().path("garbage.pem"), pki().path("server.key"), "",
       "metrics.tls.cert_file '" + pki().path("garbage.pem") + "': not a usable PEM certificate: "},
      {"key as cert", pki().path("server.key"), pki().path("server.key"), "",
       "metrics.tls.cert_file '" + pki().path("server.key") + "': not a usable PEM certificate: "},
      {"cert as key", pki().path("server.pem"), pki().path("server.pem"), "",
       "metrics.tls.key_file '" + pki().path("server.pem") + "': not a usable unencrypted PEM private key: "},
      {"encrypted key", pki().path("server.pem"), pki().path("encrypted.key"), "",
       "metrics.tls.key_file '" + pki().path("encrypted.key") + "': not a usable unencrypted PEM private key: "},
      {"mismatched key", pki().path("server.pem"), pki().path("unrelated.key"), "",
       "metrics.tls.key_file '" + pki().path("unrelated.key") + "' does not match the certificate in '" +
           pki().path("server.pem") + "': "},
      {"missing client CA", pki().path("server.pem"), pki().path("server.key"), missing,
       "metrics.tls.client_ca_file '" + missing + "': cannot read: No such file or directory"},
      {"garbage client CA", pki().path("server.pem"), pki().path("server.key"), pki().path("garbage.pem"),
       "metrics.tls.client_ca_file '" + pki().path("garbage.pem") + "': no usable PEM CA certificate: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    HttpServerOptions o;
    o.listen_address = "127.0.0.1:0";
    o.tls_cert_file = c.cert;
    o.tls_key_file = c.key;
    o.tls_client_ca_file = c.ca;
    HttpServer s(registry, o);
    std::string error;
    EXPECT_FALSE(s.start(error));
    EXPECT_FALSE(s.running());
    EXPECT_EQ(error.substr(0, c.expect.size()), c.expect) << error;
    EXPECT_EQ(error.find("\n"), std::string::npos) << error;
  }
}

}  // namespace
}  // namespace mqttlive
