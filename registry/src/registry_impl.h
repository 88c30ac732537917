// The registry's internals shared by its source files (not a public header).
#pragma once

#include <sodium.h>

#include <array>
#include <map>
#include <set>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store.h"
#include "tracecast/ledger/ledger.h"
#include "tracecast/registry/registry.h"

namespace tracecast::registry {

// Reading a request: every field checked, each problem a Refusal(400) naming the field.
const nlohmann::json& member(const nlohmann::json& j, const char* name);
std::string text_field(const nlohmann::json& j, const char* name, std::size_t max_len, bool allow_empty = false);
std::int64_t int_field(const nlohmann::json& j, const char* name, std::int64_t min, std::int64_t max);
const nlohmann::json& array_field(const nlohmann::json& j, const char* name, std::size_t max_len);

//! What the registry keeps of a piece: no details, no names; subject codes.
struct PieceSummary {
  std::uint64_t id = 0;
  std::uint32_t run = 0;
  std::string use, date, subject, likeness;
};

//! A workshop's chain replayed (held entries, then pushed ones), with what the registry indexes:
//! the runs' uses, the registered marking keys, the pieces.
struct ChainCopy {
  explicit ChainCopy(const std::string& public_key) : check(public_key) {}
  ledger::ChainCheck check;
  std::map<std::uint32_t, std::string> run_use;
  std::set<std::string> key_ids;  //!< marking keys registered or marking a piece
  std::vector<PieceSummary> new_pieces;  //!< of the entries taken with is_new
  //! "" when `e` extends the chain (then indexed), else the problem.
  std::string take(const ledger::SignedEntry& e, bool is_new);
};

struct Registry::Impl {
  std::unique_ptr<detail::Store> store;
  std::mutex db;  // one connection; every use of it holds this
  std::array<std::uint8_t, 32> pub{}, sec{};

  ~Impl() { sodium_memzero(sec.data(), sec.size()); }
  void read_key(const std::filesystem::path& file);
  void require(const Caller& c, Role r, const char* what) const;  //!< Refusal 403 for another role
  //! Appends to the audit log, inside the caller's transaction: each row's hash covers the
  //! previous row's hash and the row, so an edited, deleted or reordered row breaks the chain.
  void audit(const Caller& c, const std::string& action, const std::string& case_ref, const nlohmann::json& result);
  static std::string audit_hash(const std::string& prev, std::int64_t seq, const std::string& time, const std::string& role,
                                const std::string& label, const std::string& action, const std::string& case_ref, const std::string& result);
  //! Records a refused push against the workshop (its own transaction).
  void flag(std::uint32_t maker, const std::string& problem);
  //! The workshop's chain as held, replayed; ProcessingError if it no longer verifies.
  ChainCopy held_chain(std::uint32_t maker, const std::string& public_key);
  //! Escrowed keys of a request, each opened to check its id, none escrowed before.
  std::vector<std::pair<std::string, std::string>> checked_keys(const nlohmann::json& keys);
  nlohmann::json keys_missing(std::uint32_t maker, const ChainCopy& copy);
  void store_entries(std::uint32_t maker, const std::vector<ledger::SignedEntry>& entries, const ChainCopy& copy, const nlohmann::json& checkpoint);
  //! What a trace shows of a workshop: name, fingerprint, and whether its log verifies (null if unknown).
  nlohmann::json workshop_record(std::uint32_t maker);
};

}  // namespace tracecast::registry
