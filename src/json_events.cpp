#include "mqttlive/json_events.h"

#include <cinttypes>

namespace mqttlive {

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid.
size_t utf8Length(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t min;
  if (c < 0x80) return 1;
  if ((c & 0xe0) == 0xc0) n = 2, min = 0x80;
  else if ((c & 0xf0) == 0xe0) n = 3, min = 0x800;
  else if ((c & 0xf8) == 0xf0) n = 4, min = 0x10000;
  else return 0;
  if (i + n > s.size()) return 0;
  uint32_t cp = c & (0x7f >> n);
  for (size_t k = 1; k < n; ++k) {
    auto cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return n;
}

void appendKey(std::string& out, const char* key) {
  out += ",\"";
  out += key;
  out += "\":";
}
void appendBool(std::string& out, const char* key, bool v) {
  appendKey(out, key);
  out += v ? "true" : "false";
}
void appendInt(std::string& out, const char* key, int64_t v) {
  appendKey(out, key);
  out += std::to_string(v);
}
void appendNull(std::string& out, const char* key) {
  appendKey(out, key);
  out += "null";
}
void appendStr(std::string& out, const char* key, const char* v) {
  appendKey(out, key);
  if (v == nullptr) {
    out += "null";
    return;
  }
  appendJsonString(out, v);
}
void appendTime(std::string& out, const char* key, Micros v) {
  appendKey(out, key);
  appendJsonTime(out, v);
}
void appendSeconds(std::string& out, const char* key, Micros v) { appendTime(out, key, v); }

void appendKeepalive(std::string& out, const ConnectionInfo& c) {
  if (c.keepalive_known)
    appendInt(out, "keepalive", c.keepalive);
  else
    appendNull(out, "keepalive");
  appendStr(out, "keepalive_source", c.keepalive_known ? toString(c.keepalive_source) : nullptr);
}

void appendHeader(std::string& out, const Event& e, const ConnectionInfo& c) {
  out += "{\"ts\":";
  appendJsonTime(out, e.ts);
  appendStr(out, "event", toString(e.type));
  appendStr(out, "client", formatEndpoint(c.client).c_str());
  appendStr(out, "broker", formatEndpoint(c.broker).c_str());
  appendKey(out, "client_id");
  if (c.client_id_known)
    appendJsonString(out, c.client_id);
  else
    out += "null";
  appendBool(out, "midstream", c.midstream);
  appendStr(out, "transport", toString(c.transport));
  if (c.client_real_known)
    appendStr(out, "client_real", formatEndpoint(c.client_real).c_str());
  else
    appendNull(out, "client_real");
}

}  // namespace

void appendJsonString(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
      ++i;
    } else if (c < 0x20 || c == 0x7f) {
      out += "\\u00";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
      ++i;
    } else if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
    } else if (size_t n = utf8Length(s, i); n > 0) {
      out.append(s.data() + i, n);
      i += n;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
}

void appendJsonTime(std::string& out, Micros ts) {
  char buf[40];
  const char* sign = ts < 0 ? "-" : "";
  uint64_t a = ts < 0 ? static_cast<uint64_t>(-ts) : static_cast<uint64_t>(ts);
  std::snprintf(buf, sizeof buf, "%s%" PRIu64 ".%06" PRIu64, sign, a / 1000000, a % 1000000);
  out += buf;
}

JsonEventWriter::JsonEventWriter(std::FILE* out, bool flush_each_line) : out_(out), flush_(flush_each_line) {
  line_.reserve(1024);
}

void JsonEventWriter::format(std::string& out, const Event& e) {
  const ConnectionInfo& c = *e.conn;
  appendHeader(out, e, c);
  switch (e.type) {
    case EventType::kConnected:
      appendStr(out, "protocol", protocolName(c.protocol_level));
      appendKeepalive(out, c);
      if (c.keepalive_requested_known)
        appendInt(out, "keepalive_requested", c.keepalive_requested);
      else
        appendNull(out, "keepalive_requested");
      if (c.transport == Transport::kTls) {
        // Inside TLS the CONNECT flags are not visible: unknown, not false.
        appendNull(out, "clean_start");
        appendNull(out, "will");
        appendNull(out, "username_present");
      } else {
        appendBool(out, "clean_start", c.clean_start);
        appendBool(out, "will", c.will);
        appendBool(out, "username_present", c.username_present);
      }
      break;
    case EventType::kConnectRefused:
      appendInt(out, "code", e.code);
      appendStr(out, "protocol", protocolName(c.protocol_level));
      break;
    case EventType::kKeepaliveExpired:
      appendKeepalive(out, c);
      appendTime(out, "last_activity", c.last_activity);
      appendBool(out, "uncertain", c.uncertain);
      break;
    case EventType::kTakeover:
      appendStr(out, "previous_client", formatEndpoint(e.previous->client).c_str());
      appendStr(out, "previous_broker", formatEndpoint(e.previous->broker).c_str());
      appendStr(out, "previous_state", toString(e.previous->state));
      appendTime(out, "previous_last_activity", e.previous->last_activity);
      break;
    case EventType::kClosed:
      appendStr(out, "reason", toString(e.reason));
      appendSeconds(out, "duration", e.duration);
      appendBool(out, "expired", e.expired);
      appendStr(out, "client_tcp", toString(e.client_tcp));
      appendStr(out, "closed_by", e.closed_by == Side::kClient ? "client" : "broker");
      appendBool(out, "rst", e.rst);
      appendKeepalive(out, c);
      appendTime(out, "last_activity", c.last_activity);
      appendSeconds(out, "silent_for", e.ts - c.last_activity);
      if (c.deadline != 0)
        appendSeconds(out, "past_deadline", e.ts - c.deadline);
      else
        appendNull(out, "past_deadline");
      appendBool(out, "uncertain", c.uncertain);
      appendInt(out, "gaps", c.gaps);
      break;
    case EventType::kOpenAtEnd:
      appendStr(out, "state", toString(c.state));
      appendStr(out, "protocol", protocolName(c.protocol_level));
      appendKeepalive(out, c);
      appendTime(out, "last_activity", c.last_activity);
      appendSeconds(out, "silent_for", e.ts - c.last_activity);
      if (c.deadline != 0)
        appendTime(out, "deadline", c.deadline);
      else
        appendNull(out, "deadline");
      appendBool(out, "uncertain", c.uncertain);
      break;
    case EventType::kMidstream:
      break;
    case EventType::kKeepaliveLearned:
      appendKeepalive(out, c);
      break;
    case EventType::kCount:
      break;
  }
  out += '}';
}

void JsonEventWriter::onEvent(const Event& e) {
  if (!(enabled_ & (1u << static_cast<int>(e.type)))) return;
  line_.clear();
  format(line_, e);
  writeLine();
}

void JsonEventWriter::writeLine() {
  line_ += '\n';
  std::fwrite(line_.data(), 1, line_.size(), out_);
  if (flush_) std::fflush(out_);
  ++written_;
}

void JsonEventWriter::writeSummary(Micros ts, const Engine& engine, uint64_t capture_dropped, const char* read_error) {
  const EngineStats& st = engine.stats();
  line_.clear();
  line_ += "{\"ts\":";
  appendJsonTime(line_, ts);
  line_ += ",\"event\":\"summary\",\"client\":null,\"broker\":null,\"client_id\":null";
  appendInt(line_, "packets_read", static_cast<int64_t>(st.packets));
  appendInt(line_, "bytes_read", static_cast<int64_t>(st.bytes));
  appendInt(line_, "capture_dropped", static_cast<int64_t>(capture_dropped));
  appendInt(line_, "tcp_flows", static_cast<int64_t>(st.tcp_flows));
  appendInt(line_, "gaps", static_cast<int64_t>(st.gaps));
  appendInt(line_, "gap_bytes", static_cast<int64_t>(st.gap_bytes));
  for (const char* dir : {"client", "broker"}) {
    appendKey(line_, dir[0] == 'c' ? "mqtt_packets_client" : "mqtt_packets_broker");
    line_ += '{';
    bool first = true;
    int side = dir[0] == 'c' ? 0 : 1;
    for (int t = 0; t < kPacketTypeCount; ++t) {
      if (st.mqtt_packets[side][t] == 0) continue;
      if (!first) line_ += ',';
      first = false;
      appendJsonString(line_, packetTypeName(static_cast<PacketType>(t)));
      line_ += ':' + std::to_string(st.mqtt_packets[side][t]);
    }
    line_ += '}';
  }
  auto appendCounts = [&](const char* key, const uint64_t* counts, int n, auto name) {
    appendKey(line_, key);
    line_ += '{';
    bool first = true;
    for (int i = 0; i < n; ++i) {
      if (counts[i] == 0) continue;
      if (!first) line_ += ',';
      first = false;
      appendJsonString(line_, name(i));
      line_ += ':' + std::to_string(counts[i]);
    }
    line_ += '}';
  };
  appendCounts("parse_errors", st.parse_errors, static_cast<int>(ParseError::kCount),
               [](int i) { return toString(static_cast<ParseError>(i)); });
  {
    // PROXY / WebSocket / TLS stage errors in one object, names prefixed by stage.
    uint64_t counts[kTransportErrorCount];
    for (int i = 0; i < kTransportErrorCount; ++i) counts[i] = transportErrorCount(st.transport, i);
    appendCounts("transport_errors", counts, kTransportErrorCount, [](int i) { return transportErrorName(i); });
  }
  appendCounts("gaps_by_reason", st.gaps_by_reason, static_cast<int>(GapReason::kCount),
               [](int i) { return toString(static_cast<GapReason>(i)); });
  // Frames that were not usable TCP; "ok" is left out.
  appendCounts("capture_errors", st.decode_status + 1, static_cast<int>(DecodeStatus::kCount) - 1,
               [](int i) { return toString(static_cast<DecodeStatus>(i + 1)); });
  appendCounts("flows_evicted", st.flows_evicted, static_cast<int>(EvictReason::kCount),
               [](int i) { return toString(static_cast<EvictReason>(i)); });
  const TrackerStats& ts_ = engine.tracker().stats();
  appendCounts("closed", ts_.closed_by_reason, static_cast<int>(CloseReason::kCount),
               [](int i) { return toString(static_cast<CloseReason>(i)); });
  appendInt(line_, "connections_opened", static_cast<int64_t>(ts_.opened));
  appendInt(line_, "keepalive_expired", static_cast<int64_t>(ts_.keepalive_expired));
  appendInt(line_, "takeovers", static_cast<int64_t>(ts_.takeovers));
  appendInt(line_, "not_broker_port", static_cast<int64_t>(st.not_broker_port));
  appendStr(line_, "read_error", read_error);
  line_ += '}';
  writeLine();
}

}  // namespace mqttlive
