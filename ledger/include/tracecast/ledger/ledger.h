// The production ledger: who made which piece, from whose face, on whose authority.
//
// One SQLite file per workshop (WAL mode). Every record — the workshop itself, operators, marking
// keys (their ids, never their secrets), subjects (pseudonymous codes), consents, production runs
// and pieces — is an entry in one append-only table. Each entry's hash covers the previous entry's
// hash, its sequence number, its kind and its canonical JSON body (BLAKE2b-256), and is signed with
// the workshop's Ed25519 key: changing, deleting or reordering any entry breaks the chain or a
// signature, and verify() names the first entry affected. Query tables (runs, consents, pieces)
// are derived from the entries in the same transaction and checked against them by verify().
//
// A piece is recorded only against an open run and a consent of the subject that covers the run's
// use and has not expired; its identifier (maker | run | piece number) is allocated in the same
// transaction that records it, so no identifier is ever issued twice, even with several processes
// writing to the same file.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace tracecast::ledger {

//! The workshop's signing identity (Ed25519). Files: "tracecast-signing-key 1", "public <hex>",
//! "secret <hex>", mode 0600, never overwritten.
class SigningKey {
 public:
  static SigningKey generate();
  const std::string& public_hex() const { return public_hex_; }
  std::array<std::uint8_t, 64> sign(const std::array<std::uint8_t, 32>& message) const;

 private:
  friend void write_signing_key(const std::filesystem::path&, const SigningKey&);
  friend SigningKey read_signing_key(const std::filesystem::path&);
  std::array<std::uint8_t, 32> public_{};
  std::array<std::uint8_t, 64> secret_{};
  std::string public_hex_;
};
void write_signing_key(const std::filesystem::path& path, const SigningKey& key);
SigningKey read_signing_key(const std::filesystem::path& path);

//! What a run is for; a consent covers one use.
enum class Use { Film, Medical, Other };
std::string use_name(Use u);                          //!< "film", "medical", "other"
std::optional<Use> parse_use(const std::string& s);

struct Entry {
  std::int64_t seq = 0;
  std::string kind;   //!< workshop, operator, key, subject, consent, run, run-closed, piece, outputs, release, import
  std::string body;   //!< canonical JSON
  std::string hash_hex;
  std::string workshop;  //!< empty for this ledger's own entries; the public key of an imported workshop's
};

//! An entry as signed, for copying the chain elsewhere (a registry): the binary fields as hex.
struct SignedEntry {
  std::int64_t seq = 0;
  std::string kind, body, prev_hash, hash, signature;
};
void to_json(nlohmann::json& j, const SignedEntry& e);
//! InputError naming the field that is missing or of the wrong type.
void from_json(const nlohmann::json& j, SignedEntry& e);

//! What an import brought in.
struct ImportResult {
  std::string workshop;            //!< the other workshop's public key (hex)
  std::uint32_t maker = 0;
  std::int64_t added = 0;          //!< entries new in this import
  std::int64_t total = 0;          //!< that workshop's entries held now
};

struct VerifyResult {
  bool ok = true;
  std::int64_t entries = 0;
  std::int64_t first_bad_seq = 0;  //!< 0 when ok
  std::string problem;
};

struct Piece {
  std::uint64_t id = 0;      //!< maker | run | piece number (tracecast/mesh/piece_id.h)
  std::int64_t seq = 0;      //!< its ledger entry
};

class Ledger {
 public:
  //! Creates a new ledger file (refuses an existing one) whose first entry names the workshop,
  //! its maker number (16 bits) and its public signing key.
  static void create(const std::filesystem::path& path, const SigningKey& key, std::uint32_t maker,
                     const std::string& workshop_name);
  //! Opens an existing ledger. `signer` is needed to write, not to read or verify; it must be the
  //! key the ledger was created with.
  static Ledger open(const std::filesystem::path& path, const SigningKey* signer = nullptr);
  ~Ledger();
  Ledger(Ledger&&) noexcept;
  Ledger& operator=(Ledger&&) noexcept;

  std::uint32_t maker() const;
  std::string public_key_hex() const;

  void add_operator(const std::string& code, const std::string& name);
  void register_key(const std::string& key_id);
  void add_subject(const std::string& code);
  //! Consent of `subject` for `use` until `valid_until` (YYYY-MM-DD, inclusive), given by
  //! `given_by`, with the SHA-256 of the signed consent document. Returns its entry's seq.
  std::int64_t add_consent(const std::string& subject, Use use, const std::string& valid_until,
                           const std::string& document_sha256_hex, const std::string& given_by);
  //! Opens a production run; returns its number (1, 2, …; 24 bits).
  std::uint32_t open_run(Use use, const std::string& client, const std::string& prescriber,
                         const std::string& operator_code);
  void close_run(std::uint32_t run);
  //! Allocates the next identifier of `run` and records the piece with `details` (input and output
  //! file hashes, parameters, software version…), in one transaction. Throws InputError (nothing
  //! recorded) if the run is unknown or closed, the subject unknown, or no consent of the subject
  //! covers the run's use on `today` (YYYY-MM-DD; empty: the current UTC date).
  //! `likeness`: the subject whose face the piece carries when it is not the subject's own (a
  //! likeness mask: the subject wears it, the likeness subject's face is copied); then the
  //! likeness subject's consent must cover the run's use too, and both are recorded.
  Piece record_piece(std::uint32_t run, const std::string& subject, const std::string& key_id,
                     const nlohmann::json& details, const std::string& today = "", const std::string& likeness = "");

  //! Throws what record_piece() would for `run`, `subject` and `likeness` on `today` (unknown or
  //! closed run, no consent, expired consent, consent for another use) without recording
  //! anything: the check a pipeline makes before any work.
  void check_production(std::uint32_t run, const std::string& subject, const std::string& today = "",
                        const std::string& likeness = "") const;

  //! Records the files made for a piece (name → SHA-256 hex), once per piece, after they are
  //! written: a piece's identifier is allocated before its files exist (it is stamped into them).
  void record_outputs(std::uint64_t id, const nlohmann::json& files);

  //! Records the acceptance of a piece after its checks (printability, inspection): accepted or
  //! rejected, with the checks' results and who released it. Once per piece (InputError if the
  //! piece is unknown or already released).
  void release_piece(std::uint64_t id, bool accepted, const nlohmann::json& checks, const std::string& released_by,
                     const std::string& note = "");

  //! The device history record of a run: the workshop, the run (use, client, prescriber,
  //! operator, opening and closing times), each piece with its identifier, subject code, consent,
  //! marking key, files and release, the quantities made, accepted and rejected, and the ledger's
  //! verification. Throws InputError for an unknown run.
  nlohmann::json device_history(std::uint32_t run) const;

  //! Replays this ledger's entries: chain, signatures, and the rules every entry must keep (a
  //! consent names a known subject; a piece an open run, its next number in it, and a consent of
  //! its subject for the run's use valid on its date; a release or a piece's files come once,
  //! after the piece). Checks every query table against the entries, both ways, naming the table
  //! and the row that differ, and every imported workshop's chain against its own key and the
  //! import entries that attest it.
  VerifyResult verify() const;

  //! A signed checkpoint of the chain as it is now, for keeping elsewhere (another machine, a
  //! registry, a printed record): {format, workshop, key_fingerprint, maker, entries, head_hash,
  //! time_utc, signature} (docs/formats.md#ledger-checkpoint). Needs the signing key.
  nlohmann::json checkpoint() const;
  //! Why this ledger does not extend `checkpoint` ("" when it does): signed by another key (a
  //! history re-signed), shorter than it (truncated), or its entry there differs (rewritten), or
  //! the checkpoint itself is malformed or its signature invalid.
  std::string checkpoint_problem(const nlohmann::json& checkpoint) const;

  //! Imports another workshop's ledger: it must verify, have its own maker number and key; its
  //! entries are copied as they are (their hashes and signatures stay checkable), after the ones
  //! imported before (which must be unchanged), and an "import" entry of this ledger attests the
  //! count and the last hash. Its pieces become findable here. One transaction.
  ImportResult import_from(const std::filesystem::path& other);
  std::vector<Entry> entries() const;
  //! The entries after `after`, as signed (for a registry's copy of the chain).
  std::vector<SignedEntry> signed_entries(std::int64_t after = 0) const;
  //! The entry of a piece, if the identifier is in this ledger.
  std::optional<Entry> find_piece(std::uint64_t id) const;
  //! A piece's full record, this workshop's or an imported one's: the piece (subject, consent,
  //! marking key, details, outputs, release), its run (use, client, prescriber, operator, dates),
  //! the workshop, and the ledger's verification. Empty if the identifier is not in this ledger.
  std::optional<nlohmann::json> piece_record(std::uint64_t id) const;

 private:
  struct Impl;
  explicit Ledger(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

//! A workshop's chain checked outside its ledger file, entry by entry, as verify() checks it: in
//! sequence, linked to the previous hash, its hash and signature under the workshop's key, the
//! first entry naming that key, and every entry keeping the ledger's rules (a registry's copy).
class ChainCheck {
 public:
  explicit ChainCheck(const std::string& public_hex);
  ~ChainCheck();
  ChainCheck(ChainCheck&&) noexcept;
  ChainCheck& operator=(ChainCheck&&) noexcept;
  //! "" when `e` extends the chain (it is then taken in); else the problem, and the chain is as it was.
  std::string append(const SignedEntry& e);
  std::int64_t entries() const;
  std::string head_hex() const;  //!< the last entry's hash; zeros before the first
  std::uint32_t maker() const;   //!< from the first entry

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

//! What is wrong with a checkpoint by itself ("" when nothing): its format, fields, or signature
//! under the key it names. Whether a chain extends it is Ledger::checkpoint_problem().
std::string checkpoint_signature_problem(const nlohmann::json& checkpoint);

//! A workshop key's fingerprint, what people compare and print: the first 16 bytes of
//! BLAKE2b-256("tracecast key fingerprint v1" ‖ the 32-byte public key), as 8 groups of 4 hex
//! digits joined by '-'. InputError if `public_hex` is not a key.
std::string key_fingerprint(const std::string& public_hex);
//! A fingerprint as someone typed it (any case, groups joined by '-', ':' or spaces, or none) in
//! key_fingerprint()'s form; nullopt if it is not 32 hex digits.
std::optional<std::string> parse_fingerprint(const std::string& text);

//! A UTC time as YYYY-MM-DDTHH:MM:SSZ (the ledger's timestamps; they sort as text).
std::string utc_time(std::chrono::system_clock::time_point t);
std::string utc_now();  //!< utc_time(now)
//! Bytes as lowercase hex.
std::string hex(const std::uint8_t* bytes, std::size_t n);
//! Exactly 2n hex digits into n bytes; false (and `out` unspecified) otherwise.
bool unhex(const std::string& text, std::uint8_t* out, std::size_t n);

//! BLAKE2b-256(domain ‖ data): the hash every signed or chained record of tracecast uses, each
//! kind under its own domain string.
std::array<std::uint8_t, 32> domain_hash(const std::string& domain, const std::string& data);
//! SHA-256 of bytes, lowercase hex.
std::string sha256_hex(const std::string& bytes);
//! SHA-256 of a file's bytes, lowercase hex.
std::string file_sha256(const std::filesystem::path& file);

}  // namespace tracecast::ledger
