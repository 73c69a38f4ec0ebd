// Stage 5b (tls listeners): MQTT inside TLS cannot be read, but its liveness
// can be followed from the TLS record headers (content type, version, length),
// which are never encrypted. Parsed incrementally per direction; record bodies
// are skipped without copying. Nothing here allocates.
//
// What a TLS connection tells (all of it inference, and reported as such):
//  - activity: every client record (a client with nothing to say sends nothing)
//  - ping-like: a small client application-data record after a silence, which
//    is what an encrypted PINGREQ looks like; feeds keepalive inference
//  - established: application data seen from both sides (TLS 1.3: the client's
//    Finished after the server's encrypted flight; TLS 1.2: CONNECT + CONNACK)
//  - close intent: the client's last record before the first FIN (either
//    side's) was an Alert (TLS <= 1.2 close_notify) or, since TLS 1.3 encrypts
//    alerts, a record the size of close_notify or DISCONNECT right before it
#pragma once

#include <cstdint>
#include <span>

#include "mqttlive/types.h"

namespace mqttlive {

enum class TlsContentType : uint8_t {
  kChangeCipherSpec = 20,
  kAlert = 21,
  kHandshake = 22,
  kApplicationData = 23,
  kHeartbeat = 24,
};

enum class TlsError : uint8_t {
  kBadRecord = 0,   // not a TLS record header (content type, version): framing lost, searching
  kRecordTooLarge,  // record length above 2^14 + 2048 (RFC 8446 / 5246 ciphertext limit)
  kResync,          // bytes discarded while searching for a record header (gap, midstream)
  kCount
};
const char* toString(TlsError e);  // "tls_bad_record", "tls_record_too_large", "tls_resync"

struct TlsRecordHeader {
  uint8_t type = 0;      // TlsContentType
  uint16_t version = 0;  // 0x0301..0x0304 (TLS 1.3 records say 0x0303)
  uint16_t length = 0;   // body bytes
};

class TlsRecordCallbacks {
 public:
  virtual ~TlsRecordCallbacks() = default;
  // A record header was read (its body follows and is skipped).
  virtual void onTlsRecord(const TlsRecordHeader& h) = 0;
  virtual void onTlsError(TlsError e) = 0;
};

// One direction: record headers only.
class TlsRecordParser {
 public:
  static constexpr uint16_t kMaxRecord = (1u << 14) + 2048;

  // The connection's start was not captured: search for a record header.
  void startMidstream() { resync_ = true, hdr_len_ = 0, skip_ = 0, resync_reported_ = false; }
  void feed(std::span<const uint8_t> bytes, TlsRecordCallbacks& cb);
  // Bytes were lost (TCP gap): search for the next record header.
  void onGap() { startMidstream(); }
  bool resyncing() const { return resync_; }

 private:
  size_t resync(const uint8_t* p, size_t n, size_t pos, TlsRecordCallbacks& cb);
  void onHeader(TlsRecordCallbacks& cb);

  uint8_t hdr_[5] = {};
  uint8_t hdr_len_ = 0;
  bool resync_ = false;
  bool resync_reported_ = false;
  uint16_t skip_ = 0;  // body bytes of the current record still to skip
};

// Both directions of one TLS connection, reduced to liveness facts.
class TlsTracker {
 public:
  // Application-data records up to this many body bytes are "small": an
  // encrypted PINGREQ, DISCONNECT or close_notify is 19..64 bytes depending on
  // version and cipher (TLS 1.3 AEAD: 2 + 1 + 16 = 19).
  static constexpr uint16_t kSmallRecord = 64;
  // A small client record this close before the first FIN counts as the client's close intent.
  static constexpr Micros kCloseWindow = 200'000;

  class Callbacks {
   public:
    virtual ~Callbacks() = default;
    // A client record (activity). ping_like: small application data after the handshake.
    virtual void onTlsClientRecord(bool ping_like) = 0;
    // Application data seen from both sides: the handshake is over.
    virtual void onTlsEstablished() = 0;
    virtual void onTlsError(TlsError e) = 0;
  };

  void startMidstream();
  void feed(Side side, Micros ts, std::span<const uint8_t> bytes, Callbacks& cb);
  void onGap(Side side) { parser_[static_cast<int>(side)].onGap(); }
  // At the first FIN/RST (either side) at `ts`: did the client's TLS close
  // (close_notify, or an encrypted record the size of one or of DISCONNECT) come right before it?
  bool closeIntentBefore(Micros ts) const;
  bool established() const { return established_; }

 private:
  friend struct TlsSideAdapter;
  TlsRecordParser parser_[2];
  bool app_data_[2] = {false, false};
  bool established_ = false;
  bool has_last_ = false;
  uint8_t last_type_ = 0;     // the client's last record
  uint16_t last_length_ = 0;
  Micros last_ts_ = 0;
};

}  // namespace mqttlive
