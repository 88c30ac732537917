// What a workshop's signed entries say, replayed in order: the state the production checks read,
// and the one the ledger's query tables must equal. Each entry is held to the rules the ledger
// keeps when it writes (a consent names a known subject; a piece an open run, its next number,
// and a consent of its subject valid for the run's use on the piece's date; a release a piece
// recorded before, once; …), so that a history written or re-signed by other means is caught
// by what it says, not only by its hashes.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace tracecast::ledger::detail {

struct ConsentFact {
  std::string subject, use, valid_until;
};
struct RunFact {
  std::string use;
  bool closed = false;
  std::int64_t seq = 0;
  std::uint32_t pieces = 0;  //!< the number of its last piece
};
struct PieceFact {
  std::uint32_t run = 0, number = 0;
  std::int64_t seq = 0;
};
struct ReleaseFact {
  bool accepted = false;
  std::int64_t seq = 0;
};

struct ChainState {
  std::uint32_t maker = 0;
  std::int64_t seq = 0;                          //!< the last entry replayed
  std::array<std::uint8_t, 32> head{};           //!< its hash
  std::map<std::string, std::int64_t> subjects;  //!< code → entry
  std::map<std::int64_t, ConsentFact> consents;  //!< entry → consent
  std::map<std::uint32_t, RunFact> runs;
  std::map<std::uint64_t, PieceFact> pieces;
  std::map<std::uint64_t, ReleaseFact> releases;
  std::set<std::uint64_t> outputs;  //!< pieces whose files are recorded
  std::map<std::string, std::vector<std::pair<std::int64_t, std::string>>> attested;  //!< workshop → (entries, head hash) of each import
};

//! Applies entry `seq` (of `kind`, with the canonical JSON `body`) to the state. Returns the rule it
//! breaks, as a sentence naming the entry, or "" when it breaks none.
std::string apply_entry(ChainState& s, std::int64_t seq, const std::string& kind, const std::string& body);

//! The consent entry under which a piece of `subject` may be made in `run` on `date` (YYYY-MM-DD):
//! the latest of the subject's for the run's use still valid then. `refusal` says why there is
//! none (unknown or closed run, no consent, expired, another use); `entry` is 0 then.
struct ConsentCheck {
  std::int64_t entry = 0;
  std::string refusal;
};
ConsentCheck consent_for(const ChainState& s, std::uint32_t run, const std::string& subject, const std::string& date);

}  // namespace tracecast::ledger::detail
