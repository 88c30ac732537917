// The registry: where enrolled workshops keep a copy of their ledgers' chains and escrow their
// marking keys, so that someone who holds no workshop's key (an investigator, a marketplace) can
// trace a piece of any of them, and a workshop's rewritten history is caught without its help
// (method: docs/methods/registry.md; the HTTP API: docs/formats.md#registry-api).
//
// Roles, each with its own tokens (random, stored as their BLAKE2b hash): the administrator
// creates tokens; a workshop enrols once and pushes its chain; an investigator traces. A push must
// extend exactly what the registry holds (signed by the enrolled key, linked to the held head, by
// the ledger's rules); one that does not is refused and the workshop flagged. The marking keys are
// sealed to the registry's own key (X25519) and opened only in memory, only to read a scan. Every
// action, every trace above all, goes into an append-only, hash-chained audit log.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/options.h"
#include "tracecast/watermark/key.h"

namespace tracecast::registry {

enum class Role { administrator, workshop, investigator };
std::string role_name(Role r);

//! Who is asking: from a token.
struct Caller {
  Role role = Role::investigator;
  std::string label;      //!< the token's label (who it was given to); never the token
  std::uint32_t maker = 0;  //!< the workshop a workshop token belongs to
};

//! A request the registry refuses: the HTTP status (400 malformed, 401 no or unknown token, 403
//! wrong role, 404 unknown, 409 conflicts with what is held, 413 too large) and a one-line reason.
class Refusal : public std::runtime_error {
 public:
  Refusal(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

//! The registry's own key pair (X25519, for the sealed marking keys): a file "tracecast-registry-key
//! 1", "public <hex>", "secret <hex>", mode 0600, never overwritten; read only while no other user
//! can read it.
void create_registry_key(const std::filesystem::path& file);

class Registry {
 public:
  //! Opens (creating its schema, or bringing it up to date) the database `db` ("sqlite:PATH" or
  //! "postgresql://…") with the registry's key file. InputError for a bad address, an unreadable or
  //! too widely readable key file, or a database that does not open.
  Registry(const std::string& db, const std::filesystem::path& key_file);
  ~Registry();

  //! A new administrator token when the registry has none (its first start); "" otherwise.
  std::string bootstrap_administrator(const std::string& label);

  Caller authenticate(const std::string& token) const;  //!< Refusal 401 if missing or unknown
  //! Administrator only: {"role", "label", "maker" (workshop tokens), "valid_days" (optional,
  //! 1–3650; none: until revoked)} → {"token", "id", …}. The token is shown this once.
  nlohmann::json create_token(const Caller& c, const nlohmann::json& request);
  //! Administrator only: every token's id (the start of its hash), role, label, maker, dates.
  nlohmann::json tokens(const Caller& c);
  //! Administrator only: {"id"} → the token refused from now on (401 "revoked").
  nlohmann::json revoke_token(const Caller& c, const nlohmann::json& request);
  //! The registry's public key, for sealing: {"public_key": hex}.
  nlohmann::json public_key() const;
  //! Workshop only, once per maker number: {"name", "maker", "public_key", "marking_keys":
  //! [{"id", "sealed"}], "checkpoint", "entries": [all, as signed]}.
  nlohmann::json enrol(const Caller& c, const nlohmann::json& request);
  //! Workshop only: {"checkpoint", "entries": [those after the last push], "marking_keys"?}.
  nlohmann::json push(const Caller& c, const nlohmann::json& request);
  //! Workshop only: what the registry holds of the caller's workshop: {"maker", "entries",
  //! "head_hash", "marking_keys": [ids]} (404 before enrolment): where the next push starts.
  nlohmann::json status(const Caller& c);
  //! Investigator only: {"analysis": a mark analysis (docs/formats.md#mark-analysis), "case"}:
  //! read under every escrowed key; the workshop and piece, the run's use and date, whether the
  //! workshop's log verifies, and the subject's code when a case reference is given.
  nlohmann::json trace(const Caller& c, const nlohmann::json& request);
  //! Administrator only: the audit log, and whether its chain holds.
  nlohmann::json audit(const Caller& c);
  std::string store_kind() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct ServeOptions {
  std::string bind = "127.0.0.1";   //!< loopback unless told otherwise
  int port = 8470;
  int workers = 0;                   //!< traces read at once; 0: one per core
  int queue = 64;                    //!< traces waiting beyond those; more are answered 503
  int max_request_mb = 4;            //!< larger requests are refused (413)
  std::string cert, cert_key;        //!< HTTPS when both are given (PEM files)
};
const OptionTable<ServeOptions>& serve_option_table();

//! Serves the registry over HTTP(S) until `stop` is called from another thread (or SIGTERM
//! through the caller). `ready(port)` is called once it listens (the port chosen when 0).
void serve(Registry& registry, const ServeOptions& options, const std::function<void(int port)>& ready,
           std::function<void()>* stop = nullptr);

// What a workshop sends (`tracecast registry enrol|push`). The ledger must be opened with its
// signing key (the checkpoint is signed); the marking keys are sealed to `registry_public_hex`.
//! Enrolment: the whole chain, a checkpoint of it, the name, maker number and key, the marking keys.
nlohmann::json enrol_request(const ledger::Ledger& book, const std::string& name, const std::vector<watermark::Key>& keys,
                             const std::string& registry_public_hex);
//! A push: the entries after the `held` the registry holds, a checkpoint, and marking keys new since.
nlohmann::json push_request(const ledger::Ledger& book, std::int64_t held, const std::vector<watermark::Key>& new_keys,
                            const std::string& registry_public_hex);

//! A client of a registry's HTTP API (what `tracecast registry enrol|push` and `tracecast trace
//! --registry` use). Each call throws Refusal with the registry's status and message, or
//! ProcessingError when the registry cannot be reached.
class Client {
 public:
  //! `ca_cert`: a PEM file of the certificate authority (or the self-signed certificate) an
  //! https:// registry's certificate must chain to; empty: the system's authorities.
  Client(const std::string& url, const std::string& token, const std::string& ca_cert = "");
  ~Client();
  //! How many times a read or a trace is sent again after its connection failed (default 5,
  //! 0.5–8 s apart); a busy registry's 503 is waited out whatever this says.
  void set_retries(int n);
  nlohmann::json get(const std::string& path);
  nlohmann::json post(const std::string& path, const nlohmann::json& body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tracecast::registry
