// Restart without amnesia: the tracker's open connections saved to a small
// binary file (periodically and at shutdown in live mode) and restored at the
// next start, so that a restarted sidecar judges each connection against the
// keepalive it already knew instead of starting blind (midstream inference).
//
// The file holds what the tracker knows about a connection (endpoints, client
// id, protocol level, keepalive and its source, last activity, liveness state,
// connected_at, midstream flag) and nothing else: no payload, no password.
// Writes are atomic (temp file, fsync, rename, fsync of the directory), so a
// crash mid-write leaves the previous file. A file that is corrupt (bad magic,
// version or checksum), truncated or older than the configured maximum age is
// rejected with a reason and never partially applied.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "mqttlive/events.h"
#include "mqttlive/types.h"

namespace mqttlive {

class Engine;
class SessionTracker;

constexpr uint32_t kStateFileVersion = 1;

struct SavedState {
  Micros saved_at = 0;
  std::vector<ConnectionInfo> connections;
};

// Serialises / parses the file contents. parseState() returns false with
// `error` set to one of: "empty file", "bad magic", "unsupported version N",
// "truncated", "checksum mismatch", "corrupt record N: <what>".
std::string serializeState(const SavedState& state);
bool parseState(const std::string& bytes, SavedState& out, std::string& error);

// Every open connection that is not closing (a closing one is judged within
// seconds; after a restart its FIN is gone anyway).
SavedState snapshotState(const SessionTracker& tracker, Micros now);

// Atomic write of serializeState(). False with `error` (naming the path).
bool saveStateFile(const std::string& path, const SavedState& state, std::string& error);

// Reads and checks `path`. False with `error` for a file that cannot be read,
// is corrupt or truncated, or is stale: "stale: saved 700 s ago, more than
// state.max_age_seconds (600)". A file saved more than a minute in the future
// (clock stepped back) is rejected too. `missing` is set when the file simply
// does not exist (first start: not worth a warning).
bool loadStateFile(const std::string& path, Micros now, Micros max_age, SavedState& out, std::string& error,
                   bool* missing = nullptr);

// Re-creates each saved connection in the engine (Engine::restore). Returns
// how many were restored; the others (port no longer watched, limits) are skipped.
size_t restoreState(Engine& engine, const SavedState& state, Micros now);

}  // namespace mqttlive
