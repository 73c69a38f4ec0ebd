#include "mqttlive/tls_tracker.h"

#include <algorithm>
#include <cstring>

namespace mqttlive {

const char* toString(TlsError e) {
  switch (e) {
    case TlsError::kBadRecord: return "tls_bad_record";
    case TlsError::kRecordTooLarge: return "tls_record_too_large";
    case TlsError::kResync: return "tls_resync";
    case TlsError::kCount: break;
  }
  return "unknown";
}

namespace {

bool knownType(uint8_t t) { return t >= 20 && t <= 24; }
// SSL 3.0 .. TLS 1.3 record versions (1.3 records carry 0x0303, a ClientHello may say 0x0301).
bool knownVersion(uint8_t major, uint8_t minor) { return major == 3 && minor <= 4; }

// Could hdr[0..len) be the start of a record header? Used while searching.
bool plausiblePrefix(const uint8_t* hdr, uint8_t len) {
  if (len >= 1 && !knownType(hdr[0])) return false;
  if (len >= 2 && hdr[1] != 3) return false;
  if (len >= 3 && hdr[2] > 4) return false;
  if (len >= 5) {
    const auto length = loadBe16(hdr + 3);
    if (length == 0 || length > TlsRecordParser::kMaxRecord) return false;
  }
  return true;
}

}  // namespace

void TlsRecordParser::feed(std::span<const uint8_t> bytes, TlsRecordCallbacks& cb) {
  const uint8_t* p = bytes.data();
  const size_t n = bytes.size();
  size_t pos = 0;
  while (pos < n) {
    if (resync_) {
      pos = resync(p, n, pos, cb);
    } else if (skip_ > 0) {
      const size_t k = std::min<size_t>(skip_, n - pos);
      skip_ = static_cast<uint16_t>(skip_ - k);
      pos += k;
    } else {
      const size_t k = std::min<size_t>(size_t{5} - hdr_len_, n - pos);
      std::memcpy(hdr_ + hdr_len_, p + pos, k);
      hdr_len_ = static_cast<uint8_t>(hdr_len_ + k);
      pos += k;
      if (hdr_len_ == 5) onHeader(cb);
    }
  }
}

void TlsRecordParser::onHeader(TlsRecordCallbacks& cb) {
  hdr_len_ = 0;
  TlsRecordHeader h;
  h.type = hdr_[0];
  h.version = loadBe16(hdr_ + 1);
  h.length = loadBe16(hdr_ + 3);
  if (!knownType(h.type) || !knownVersion(hdr_[1], hdr_[2])) {
    cb.onTlsError(TlsError::kBadRecord);
    startMidstream();
    return;
  }
  if (h.length > kMaxRecord) {
    // The length may still be right (a peer ignoring the limit): skip it.
    cb.onTlsError(TlsError::kRecordTooLarge);
  }
  skip_ = h.length;
  cb.onTlsRecord(h);
}

size_t TlsRecordParser::resync(const uint8_t* p, size_t n, size_t pos, TlsRecordCallbacks& cb) {
  while (pos < n) {
    hdr_[hdr_len_++] = p[pos++];
    // Drop leading bytes until what is kept could still be a header.
    while (hdr_len_ > 0 && !plausiblePrefix(hdr_, hdr_len_)) {
      if (!resync_reported_) {
        resync_reported_ = true;
        cb.onTlsError(TlsError::kResync);
      }
      std::memmove(hdr_, hdr_ + 1, --hdr_len_);
    }
    if (hdr_len_ == 5) {
      resync_ = false;
      onHeader(cb);
      return pos;
    }
  }
  return pos;
}

// ---- TlsTracker ----

struct TlsSideAdapter : TlsRecordCallbacks {
  TlsTracker& t;
  Side side;
  Micros ts;
  TlsTracker::Callbacks& cb;
  TlsSideAdapter(TlsTracker& tr, Side s, Micros time, TlsTracker::Callbacks& c) : t(tr), side(s), ts(time), cb(c) {}

  void onTlsRecord(const TlsRecordHeader& h) override {
    const bool app = h.type == static_cast<uint8_t>(TlsContentType::kApplicationData);
    const bool was_established = t.established_;
    if (app) t.app_data_[static_cast<int>(side)] = true;
    if (side == Side::kClient) {
      t.has_last_ = true;
      t.last_type_ = h.type;
      t.last_length_ = h.length;
      t.last_ts_ = ts;
      cb.onTlsClientRecord(was_established && app && h.length <= TlsTracker::kSmallRecord);
    }
    if (!t.established_ && t.app_data_[0] && t.app_data_[1]) {
      t.established_ = true;
      cb.onTlsEstablished();
    }
  }
  void onTlsError(TlsError e) override { cb.onTlsError(e); }
};

void TlsTracker::startMidstream() {
  parser_[0].startMidstream();
  parser_[1].startMidstream();
}

void TlsTracker::feed(Side side, Micros ts, std::span<const uint8_t> bytes, Callbacks& cb) {
  TlsSideAdapter a(*this, side, ts, cb);
  parser_[static_cast<int>(side)].feed(bytes, a);
}

bool TlsTracker::closeIntentBefore(Micros ts) const {
  if (!established_ || !has_last_) return false;
  if (last_type_ == static_cast<uint8_t>(TlsContentType::kAlert)) return true;
  return last_type_ == static_cast<uint8_t>(TlsContentType::kApplicationData) && last_length_ <= kSmallRecord &&
         ts - last_ts_ <= kCloseWindow;
}

}  // namespace mqttlive
