#include "support/capture_run.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "mqttlive/offline_runner.h"

namespace mqttlive::testing {

std::vector<std::string> runCaptureFile(const std::string& path, const EngineConfig& cfg) {
  char* buf = nullptr;
  size_t len = 0;
  std::FILE* mem = open_memstream(&buf, &len);
  OfflineResult r;
  runOffline(path, cfg, mem, ~0u, r);
  std::fclose(mem);
  std::vector<std::string> lines;
  std::istringstream in(std::string(buf, len));
  std::free(buf);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

std::vector<std::string> runCapture(const PcapWriter& w, const EngineConfig& cfg) {
  char name[] = "/tmp/mqttlive-test-XXXXXX";
  int fd = mkstemp(name);
  close(fd);
  w.save(name);
  auto lines = runCaptureFile(name, cfg);
  unlink(name);
  return lines;
}

std::string field(const std::string& line, const std::string& key) {
  std::string pat = "\"" + key + "\":";
  size_t p = line.find(pat);
  if (p == std::string::npos) return "";
  p += pat.size();
  size_t e = p;
  if (line[e] == '"') {
    for (++e; e < line.size() && line[e] != '"'; ++e)
      if (line[e] == '\\') ++e;
    return line.substr(p, e + 1 - p);
  }
  if (line[e] == '{') {
    int depth = 0;
    for (; e < line.size(); ++e) {
      if (line[e] == '{') ++depth;
      if (line[e] == '}' && --depth == 0) break;
    }
    return line.substr(p, e + 1 - p);
  }
  while (e < line.size() && line[e] != ',' && line[e] != '}') ++e;
  return line.substr(p, e - p);
}

std::vector<std::string> eventsOf(const std::vector<std::string>& lines, const std::string& event) {
  std::vector<std::string> out;
  for (const auto& l : lines)
    if (field(l, "event") == "\"" + event + "\"") out.push_back(l);
  return out;
}

Endpoint v4(const char* dotted, uint16_t port) {
  uint8_t a[4];
  inet_pton(AF_INET, dotted, a);
  return Endpoint{IpAddr::fromV4(a), port};
}

Endpoint v6(const char* text, uint16_t port) {
  uint8_t a[16];
  inet_pton(AF_INET6, text, a);
  return Endpoint{IpAddr::fromV6(a), port};
}

}  // namespace mqttlive::testing
