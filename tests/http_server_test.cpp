// The HTTP endpoints over real sockets: a started server on an ephemeral
// loopback port, queried by a minimal HTTP/1.1 client (no curl dependency).
#include "mqttlive/http_server.h"
#include "support/base64.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <prometheus/counter.h>
#include <prometheus/registry.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <vector>
#include <atomic>
#include <cctype>
#include <deque>
#include <map>
#include <string>
#include <thread>

#include "mqttlive/metrics.h"

namespace mqttlive {
namespace {

using test::base64;

struct Response {
  int status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// One request on a fresh connection; status 0 when the server could not be reached.
Response request(uint16_t port, const std::string& method, const std::string& path,
                 const std::string& extra_headers = "") {
  Response r;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return r;
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return r;
  }
  const std::string req =
      method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nUser-Agent: test\r\n" +
      extra_headers + "\r\n";
  if (send(fd, req.data(), req.size(), 0) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return r;
  }
  std::string raw;
  char buf[4096];
  for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) raw.append(buf, static_cast<size_t>(n));
  close(fd);

  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos || raw.compare(0, 9, "HTTP/1.1 ") != 0) return r;
  r.status = std::stoi(raw.substr(9, 3));
  size_t pos = raw.find("\r\n") + 2;
  while (pos < end) {
    const size_t eol = raw.find("\r\n", pos);
    const std::string line = raw.substr(pos, eol - pos);
    const size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      r.headers[lower(line.substr(0, colon))] = value;
    }
    pos = eol + 2;
  }
  r.body = raw.substr(end + 4);
  return r;
}

HttpServerOptions loopback(const std::string& path = "/metrics") {
  HttpServerOptions o;
  o.listen_address = "127.0.0.1:0";
  o.metrics_path = path;
  return o;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(server.start(error)) << error;
    ASSERT_NE(server.port(), 0);
  }
  Metrics metrics{MetricsConfig{}, "9.9.9"};
  HttpServer server{metrics.registry(), loopback()};
};

TEST_F(HttpServerTest, ServesMetricsInTheTextFormat) {
  metrics.onPingRtt(1000);
  Response r = request(server.port(), "GET", "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.headers["content-length"], std::to_string(r.body.size()));
  EXPECT_NE(r.body.find("# TYPE mqttlive_connections gauge\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\nmqttlive_build_info{version=\"9.9.9\"} 1\n"), std::string::npos);
  EXPECT_NE(r.body.find("\nmqttlive_ping_rtt_seconds_count 1\n"), std::string::npos);

  // Later scrapes see later values.
  metrics.onPingRtt(1000);
  r = request(server.port(), "GET", "/metrics");
  EXPECT_NE(r.body.find("\nmqttlive_ping_rtt_seconds_count 2\n"), std::string::npos);
}

TEST_F(HttpServerTest, Healthz) {
  Response r = request(server.port(), "GET", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/plain; charset=utf-8");
  EXPECT_EQ(r.body, "ok");
}

TEST_F(HttpServerTest, ConnectionsServesTheLatestPublishedSnapshot) {
  Response r = request(server.port(), "GET", "/connections");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_EQ(r.body, "{\"now\":null,\"connections\":[],\"truncated\":false}");

  server.publishConnections("{\"now\":1.000000,\"connections\":[],\"truncated\":false}");
  server.publishConnections("{\"now\":2.000000,\"connections\":[],\"truncated\":false}");
  r = request(server.port(), "GET", "/connections");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "{\"now\":2.000000,\"connections\":[],\"truncated\":false}");
}

TEST_F(HttpServerTest, IndexLinksTheEndpoints) {
  Response r = request(server.port(), "GET", "/");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/html; charset=utf-8");
  for (const char* link : {"href=\"/metrics\"", "href=\"/healthz\"", "href=\"/connections\""})
    EXPECT_NE(r.body.find(link), std::string::npos) << link << " in " << r.body;
}

TEST_F(HttpServerTest, UnknownPathsAndMethods) {
  EXPECT_EQ(request(server.port(), "GET", "/nope").status, 404);
  EXPECT_EQ(request(server.port(), "GET", "/metrics/extra").status, 404);
  EXPECT_EQ(request(server.port(), "GET", "/healthzz").status, 404);
  EXPECT_EQ(request(server.port(), "POST", "/metrics").status, 405);
}

TEST_F(HttpServerTest, HeadHasHeadersButNoBody) {
  Response r = request(server.port(), "HEAD", "/healthz");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-length"], "2");
  EXPECT_EQ(r.body, "");
}

TEST_F(HttpServerTest, QueryStringsDoNotChangeTheRoute) {
  Response r = request(server.port(), "GET", "/healthz?verbose=1");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
}

TEST_F(HttpServerTest, StopIsCleanAndIdempotent) {
  const uint16_t port = server.port();
  server.stop();
  EXPECT_FALSE(server.running());
  EXPECT_EQ(request(port, "GET", "/healthz").status, 0);
  server.stop();
}

TEST(HttpServer, ConfiguredMetricsPath) {
  Metrics metrics{MetricsConfig{}, "x"};
  HttpServer server{metrics.registry(), loopback("/custom/metrics")};
  std::string error;
  ASSERT_TRUE(server.start(error)) << error;
  EXPECT_EQ(request(server.port(), "GET", "/custom/metrics").status, 200);
  EXPECT_EQ(request(server.port(), "GET", "/metrics").status, 404);
  EXPECT_NE(request(server.port(), "GET", "/").body.find("href=\"/custom/metrics\""), std::string::npos);
}

TEST(HttpServer, SecondServerOnTheSamePortFailsCleanly) {
  auto registry = std::make_shared<prometheus::Registry>();
  HttpServer first{registry, loopback()};
  std::string error;
  ASSERT_TRUE(first.start(error)) << error;

  HttpServerOptions same = loopback();
  same.listen_address = "127.0.0.1:" + std::to_string(first.port());
  HttpServer second{registry, same};
  EXPECT_FALSE(second.start(error));
  EXPECT_FALSE(second.running());
  EXPECT_NE(error.find(same.listen_address), std::string::npos) << error;
  EXPECT_NE(error.find("Address already in use"), std::string::npos) << error;
  // The first one is unaffected.
  EXPECT_EQ(request(first.port(), "GET", "/healthz").status, 200);
}

TEST(HttpServer, RejectsMalformedAddresses) {
  auto registry = std::make_shared<prometheus::Registry>();
  for (const char* bad : {"", "localhost:9883", "1.2.3.4:", "1.2.3.4:99999", "[::1]9883", "[nonsense]:1",
                          ":80,:81", "1.2.3:80"}) {
    HttpServerOptions o;
    o.listen_address = bad;
    HttpServer s{registry, o};
    std::string error;
    EXPECT_FALSE(s.start(error)) << bad;
    EXPECT_NE(error.find("web listen address"), std::string::npos) << bad << ": " << error;
  }
}

TEST(HttpServer, Ipv6ListenerOrAClearError) {
  auto registry = std::make_shared<prometheus::Registry>();
  HttpServerOptions o;
  o.listen_address = "[::1]:0";
  HttpServer s{registry, o};
  std::string error;
  if (mg_check_feature(MG_FEATURES_IPV6) == 0) {
    // Debian 12's civetweb is built without IPv6.
    EXPECT_FALSE(s.start(error));
    EXPECT_NE(error.find("no IPv6 support"), std::string::npos) << error;
  } else {
    ASSERT_TRUE(s.start(error)) << error;
    EXPECT_NE(s.port(), 0);
  }
}

// The live layout: one thread feeds the tracker, refreshes the metrics
// (per-client series come and go) and publishes snapshots while scrapes run on
// civetweb's threads. Meant to be run under TSan/ASan as well.
TEST(HttpServer, ScrapesWhileTheEngineThreadUpdates) {
  constexpr Micros kS = kMicrosPerSecond;
  MetricsConfig cfg;
  cfg.per_client.enabled = true;
  cfg.per_client.max_series = 10;
  Metrics metrics(cfg, "x");
  SessionTracker tracker(TrackerConfig{}, metrics);
  HttpServerOptions o = loopback();
  o.num_threads = 3;
  HttpServer server{metrics.registry(), o};
  std::string error;
  ASSERT_TRUE(server.start(error)) << error;

  std::atomic<bool> stop{false};
  std::atomic<int> rounds{0};
  std::thread engine([&] {
    Micros t = 1'700'000'000 * kS;
    std::deque<ConnHandle> open;
    std::vector<std::string> ids;
    for (int i = 0; i < 40; ++i) ids.push_back("dev-" + std::to_string(i));
    for (uint32_t i = 0; !stop.load(); ++i) {
      uint8_t a[4] = {10, 0, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
      ConnHandle h =
          tracker.open(t, Endpoint{IpAddr::fromV4(a), 40000}, Endpoint{IpAddr::fromV4(a), 1883}, false);
      MqttPacket c;
      c.type = PacketType::kConnect;
      c.protocol_level = kMqtt311;
      c.keepalive = 1;
      c.client_id = ids[i % ids.size()];
      tracker.onClientPacket(h, t, c);
      MqttPacket ack;
      ack.type = PacketType::kConnack;
      tracker.onBrokerPacket(h, t, ack);
      open.push_back(h);
      if (open.size() > 30) {
        tracker.onCloseStarted(open.front(), t, Side::kBroker, false);
        tracker.onClosed(open.front(), ClientTcp::kResponsive);
        open.pop_front();
      }
      t += kS / 3;
      tracker.advanceTo(t);
      metrics.updateTracker(tracker, t);
      server.publishConnections(formatSuspectConnections(tracker, t, 20));
      rounds.fetch_add(1);
    }
  });
  for (int i = 0; i < 40; ++i) {
    Response m = request(server.port(), "GET", "/metrics");
    ASSERT_EQ(m.status, 200);
    EXPECT_NE(m.body.find("mqttlive_connections{state=\"expired\"}"), std::string::npos);
    Response c = request(server.port(), "GET", "/connections");
    ASSERT_EQ(c.status, 200);
    EXPECT_EQ(c.body.front(), '{');
    EXPECT_EQ(c.body.back(), '}');
  }
  stop = true;
  engine.join();
  EXPECT_GT(rounds.load(), 0);
  server.stop();
}

TEST(HttpServer, ListenAddressTranslation) {
  auto civet = [](const std::string& a) {
    std::string out, error;
    return HttpServer::toListeningPorts(a, out, error) ? out : "error: " + error;
  };
  EXPECT_EQ(civet(":9883"), "9883");
  EXPECT_EQ(civet("9883"), "9883");
  EXPECT_EQ(civet("127.0.0.1:9883"), "127.0.0.1:9883");
  EXPECT_EQ(civet("0.0.0.0:80"), "0.0.0.0:80");
  EXPECT_EQ(civet("[::1]:9883"), "[::1]:9883");
  EXPECT_EQ(civet("[::]:9883"), "[::]:9883");
  EXPECT_EQ(civet(":09883"), "9883");
}

TEST_F(HttpServerTest, StatusPageAndItsScriptWithACsp) {
  Response r = request(server.port(), "GET", "/status");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/html; charset=utf-8");
  EXPECT_NE(r.headers["content-security-policy"].find("script-src 'self'"), std::string::npos);
  EXPECT_EQ(r.headers["x-content-type-options"], "nosniff");
  EXPECT_EQ(r.headers["content-length"], std::to_string(r.body.size()));
  EXPECT_NE(r.body.find("<table id=\"suspects\">"), std::string::npos);
  r = request(server.port(), "GET", "/status.js");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "text/javascript; charset=utf-8");
  EXPECT_NE(r.body.find("textContent"), std::string::npos);
  r = request(server.port(), "HEAD", "/status?sort=client_id");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "");
  EXPECT_NE(request(server.port(), "GET", "/").body.find("href=\"/status\""), std::string::npos);
  EXPECT_EQ(request(server.port(), "GET", "/status/x").status, 404);
}

TEST_F(HttpServerTest, SummaryServesTheLatestPublishedDocument) {
  Response r = request(server.port(), "GET", "/api/summary");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.headers["content-type"], "application/json");
  EXPECT_EQ(r.body, "{\"now\":null}");
  server.publishSummary("{\"now\":1.000000,\"storm\":true}");
  r = request(server.port(), "GET", "/api/summary");
  EXPECT_EQ(r.body, "{\"now\":1.000000,\"storm\":true}");
}

// ---- hardening: HTTP basic auth ----

std::string authHeader(const std::string& user, const std::string& password, const std::string& scheme = "Basic") {
  return "Authorization: " + scheme + " " + base64(user + ":" + password) + "\r\n";
}

constexpr char kPassword[] = "pa:ss w\xc3\xb6rd-S3cr3t";

class HttpAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    HttpServerOptions o = loopback();
    o.auth_username = "prom";
    o.auth_password = kPassword;
    server = std::make_unique<HttpServer>(metrics.registry(), o);
    std::string error;
    ASSERT_TRUE(server->start(error)) << error;
  }
  Metrics metrics{MetricsConfig{}, "9.9.9"};
  std::unique_ptr<HttpServer> server;
};

TEST_F(HttpAuthTest, EveryEndpointButHealthzNeedsCredentials) {
  const uint16_t port = server->port();
  for (const char* path : {"/metrics", "/connections", "/", "/status", "/status.js", "/api/summary", "/nope"}) {
    SCOPED_TRACE(path);
    Response r = request(port, "GET", path);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.headers["www-authenticate"], "Basic realm=\"mqttlive\", charset=\"UTF-8\"");
    EXPECT_EQ(r.body.find("mqttlive_"), std::string::npos);
    EXPECT_EQ(request(port, "HEAD", path).status, 401);
  }
  Response h = request(port, "GET", "/healthz");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "ok");
}

TEST_F(HttpAuthTest, RightCredentialsAreServed) {
  const uint16_t port = server->port();
  Response r = request(port, "GET", "/metrics", authHeader("prom", kPassword));
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("mqttlive_build_info"), std::string::npos);
  EXPECT_EQ(request(port, "GET", "/connections", authHeader("prom", kPassword)).status, 200);
  EXPECT_EQ(request(port, "GET", "/metrics", authHeader("prom", kPassword, "basic")).status, 200);
  EXPECT_EQ(request(port, "GET", "/healthz", authHeader("prom", kPassword)).status, 200);
}

TEST_F(HttpAuthTest, WrongOrMalformedCredentialsAreRefused) {
  const uint16_t port = server->port();
  const std::vector<std::string> bad = {
      authHeader("prom", "pa:ss"),                        // wrong password (a prefix)
      authHeader("prom", std::string(kPassword) + "x"),   // wrong password (longer)
      authHeader("Prom", kPassword),                      // user names are case-sensitive
      authHeader("prom", kPassword, "Bearer"),            // another scheme
      "Authorization: Basic\r\n",
      "Authorization: Basic !!!!\r\n",
      "Authorization: Basic " + base64("prom:" + std::string(kPassword)).substr(1) + "\r\n",
      "Authorization: " + std::string(5000, 'A') + "\r\n",
  };
  for (const auto& h : bad) {
    Response r = request(port, "GET", "/metrics", h);
    EXPECT_EQ(r.status, 401) << h;
    EXPECT_EQ(r.body.find("S3cr3t"), std::string::npos);
  }
}

TEST(HttpAuth, CheckBasicAuthDirectly) {
  EXPECT_FALSE(HttpServer::checkBasicAuth(nullptr, "u", "p"));
  EXPECT_FALSE(HttpServer::checkBasicAuth("", "u", "p"));
  EXPECT_TRUE(HttpServer::checkBasicAuth(("Basic " + base64("u:p")).c_str(), "u", "p"));
  EXPECT_TRUE(HttpServer::checkBasicAuth(("BASIC   " + base64("u:p") + " ").c_str(), "u", "p"));
  EXPECT_FALSE(HttpServer::checkBasicAuth(("Basic " + base64("u:p:")).c_str(), "u", "p"));
  EXPECT_FALSE(HttpServer::checkBasicAuth(("Basic " + base64("u:")).c_str(), "u", "p"));
  EXPECT_FALSE(HttpServer::checkBasicAuth("Basic dTpw=A==", "u", "p"));  // data after padding
}

TEST(HttpAuth, PasswordFile) {
  char name[] = "/tmp/mqttlive-pw-XXXXXX";
  const int fd = mkstemp(name);
  ASSERT_GE(fd, 0);
  const std::string content = "S3cr3t-PW-zz\n";
  ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  close(fd);
  std::string pw, error;
  ASSERT_TRUE(HttpServer::loadPasswordFile(name, pw, error)) << error;
  EXPECT_EQ(pw, "S3cr3t-PW-zz");  // one trailing newline is not part of it
  std::FILE* f = std::fopen(name, "w");
  std::fclose(f);
  EXPECT_FALSE(HttpServer::loadPasswordFile(name, pw, error));
  EXPECT_EQ(error, std::string(name) + " is empty");
  unlink(name);
  EXPECT_FALSE(HttpServer::loadPasswordFile(name, pw, error));
  EXPECT_EQ(error, std::string("cannot read ") + name + ": No such file or directory");
}

}  // namespace
}  // namespace mqttlive
