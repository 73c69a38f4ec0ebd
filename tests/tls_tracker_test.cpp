// TLS stage: record headers per direction in any chunking, resynchronisation,
// handshake completion, ping-like records and the close intent before a FIN.
#include "mqttlive/tls_tracker.h"

#include <gtest/gtest.h>

#include <vector>

namespace mqttlive {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes record(uint8_t type, size_t len, uint16_t version = 0x0303, uint8_t fill = 0xab) {
  Bytes r = {type, static_cast<uint8_t>(version >> 8), static_cast<uint8_t>(version), static_cast<uint8_t>(len >> 8),
             static_cast<uint8_t>(len)};
  r.insert(r.end(), len, fill);
  return r;
}
Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

struct Records : TlsRecordCallbacks {
  std::vector<TlsRecordHeader> got;
  std::vector<TlsError> errors;
  void onTlsRecord(const TlsRecordHeader& h) override { got.push_back(h); }
  void onTlsError(TlsError e) override { errors.push_back(e); }
};

Records parse(const Bytes& b, size_t piece, bool midstream = false) {
  TlsRecordParser p;
  if (midstream) p.startMidstream();
  Records r;
  for (size_t off = 0; off < b.size(); off += piece)
    p.feed(std::span<const uint8_t>(b.data() + off, std::min(piece, b.size() - off)), r);
  return r;
}

TEST(TlsRecords, HeadersInAnyChunking) {
  const Bytes stream = record(22, 512, 0x0301) + record(20, 1) + record(23, 19) + record(23, 16384 + 256) +
                       record(21, 2);
  for (size_t piece : {size_t{1}, size_t{3}, size_t{5}, size_t{100}, stream.size()}) {
    SCOPED_TRACE(piece);
    auto r = parse(stream, piece);
    ASSERT_EQ(r.got.size(), 5u);
    EXPECT_TRUE(r.errors.empty());
    EXPECT_EQ(r.got[0].type, 22);
    EXPECT_EQ(r.got[0].version, 0x0301);
    EXPECT_EQ(r.got[0].length, 512);
    EXPECT_EQ(r.got[2].type, 23);
    EXPECT_EQ(r.got[2].length, 19);
    EXPECT_EQ(r.got[3].length, 16384 + 256);
    EXPECT_EQ(r.got[4].type, 21);
  }
}

TEST(TlsRecords, BadHeaderThenResync) {
  const Bytes stream = Bytes{0x47, 0x45, 0x54, 0x20, 0x2f, 0x00} + record(23, 30) + record(23, 40);
  auto r = parse(stream, 2);
  ASSERT_FALSE(r.errors.empty());
  EXPECT_EQ(r.errors[0], TlsError::kBadRecord);
  ASSERT_EQ(r.got.size(), 2u);
  EXPECT_EQ(r.got[1].length, 40);
  EXPECT_EQ(r.got[0].length, 30);

  // Too large a length is reported; framing follows the length anyway.
  auto big = parse(record(23, 20000) + record(23, 5), 1000);
  EXPECT_EQ(big.errors, std::vector<TlsError>{TlsError::kRecordTooLarge});
  EXPECT_EQ(big.got.size(), 2u);
}

TEST(TlsRecords, MidstreamFindsTheNextHeader) {
  const Bytes first = record(23, 300, 0x0303, 0x00);
  Bytes stream(first.begin() + 100, first.end());  // inside a record of zero bytes
  stream = stream + record(23, 19) + record(23, 64);
  auto r = parse(stream, 7, true);
  ASSERT_EQ(r.got.size(), 2u);
  EXPECT_EQ(r.got[0].length, 19);
  EXPECT_EQ(r.errors, std::vector<TlsError>{TlsError::kResync});
}

struct Facts : TlsTracker::Callbacks {
  std::vector<bool> client_records;  // ping_like of each
  int established = 0;
  std::vector<TlsError> errors;
  void onTlsClientRecord(bool ping_like) override { client_records.push_back(ping_like); }
  void onTlsEstablished() override { ++established; }
  void onTlsError(TlsError e) override { errors.push_back(e); }
};

constexpr Micros kS = kMicrosPerSecond;

TEST(TlsTracker, Tls13HandshakePingsAndCloseNotify) {
  TlsTracker t;
  Facts f;
  t.feed(Side::kClient, 0, record(22, 300, 0x0301), f);                      // ClientHello
  t.feed(Side::kBroker, 1000, record(22, 90) + record(20, 1) + record(23, 2000), f);  // SH, CCS, encrypted flight
  EXPECT_EQ(f.established, 0);
  t.feed(Side::kClient, 2000, record(20, 1) + record(23, 53), f);  // CCS, Finished
  EXPECT_EQ(f.established, 1);
  EXPECT_TRUE(t.established());
  t.feed(Side::kClient, 3000, record(23, 40), f);        // CONNECT: small
  t.feed(Side::kClient, 10 * kS, record(23, 19), f);     // PINGREQ
  t.feed(Side::kClient, 11 * kS, record(23, 1500), f);   // PUBLISH: large
  EXPECT_EQ(f.client_records, (std::vector<bool>{false, false, false, true, true, false}));
  EXPECT_FALSE(t.closeIntentBefore(11 * kS + 1000));  // last record large
  t.feed(Side::kClient, 20 * kS, record(23, 19), f);  // close_notify (encrypted)
  EXPECT_TRUE(t.closeIntentBefore(20 * kS + 500));
  EXPECT_FALSE(t.closeIntentBefore(21 * kS));  // a ping long before the FIN is not a close
  EXPECT_EQ(f.established, 1);
}

TEST(TlsTracker, Tls12AlertBeforeFin) {
  TlsTracker t;
  Facts f;
  t.feed(Side::kClient, 0, record(22, 200), f);
  t.feed(Side::kBroker, 10, record(22, 3000), f);
  t.feed(Side::kClient, 20, record(22, 70) + record(20, 1) + record(22, 40), f);
  t.feed(Side::kBroker, 30, record(20, 1) + record(22, 40), f);
  EXPECT_EQ(f.established, 0);
  t.feed(Side::kClient, 40, record(23, 50), f);  // CONNECT
  t.feed(Side::kBroker, 50, record(23, 30), f);  // CONNACK
  EXPECT_EQ(f.established, 1);
  t.feed(Side::kClient, 60 * kS, record(21, 26), f);  // encrypted close_notify alert
  EXPECT_TRUE(t.closeIntentBefore(70 * kS));           // an alert counts however long before
}

TEST(TlsTracker, NoCloseIntentBeforeHandshakeOrWithoutRecords) {
  TlsTracker t;
  Facts f;
  EXPECT_FALSE(t.closeIntentBefore(0));
  t.feed(Side::kClient, 0, record(22, 200), f);
  t.feed(Side::kClient, 10, record(21, 2), f);  // handshake failure alert
  EXPECT_FALSE(t.closeIntentBefore(20));
}

}  // namespace
}  // namespace mqttlive
