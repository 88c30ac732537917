// tracecast registry: the registry's server, its administration, and a workshop's enrolment and pushes.
#include <fmt/format.h>

#include <csignal>
#include <thread>

#include "common.h"
#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/registry/registry.h"
#include "tracecast/watermark/key.h"

namespace tracecast::cli {

namespace {

struct RegistryArgs {
  std::string db = "sqlite:registry.db", key_file = "registry.key", label = "administrator";
  registry::ServeOptions serve;
  nlohmann::json given = nlohmann::json::object();
  std::string url, token, ca, role, ledger, signing_key, name;
  std::vector<std::string> keys;
  std::uint32_t maker = 0;
  int valid_days = 0;
  std::string id;
};

std::string registry_url(const std::string& given) {
  const std::string u = from_env(given, "TRACECAST_REGISTRY");
  if (u.empty()) throw InputError("no registry: give --registry URL or set TRACECAST_REGISTRY");
  return u;
}

//! A client of the registry the arguments name: --registry or $TRACECAST_REGISTRY, the token from
//! --token or $TRACECAST_REGISTRY_TOKEN (kept out of the process list), --ca-cert or $TRACECAST_REGISTRY_CA.
registry::Client client_of(const RegistryArgs& a) {
  return registry::Client(registry_url(a.url), from_env(a.token, "TRACECAST_REGISTRY_TOKEN"), from_env(a.ca, "TRACECAST_REGISTRY_CA"));
}

//! A warning line when the workshop's chain names marking keys the registry does not hold.
void warn_missing_keys(const nlohmann::json& r, const GlobalOptions& g) {
  if (!g.quiet && !g.json && !r["keys_missing"].empty())
    fmt::print("warning: pieces are marked under keys the registry does not hold ({}): push them with --key, or they cannot be traced there\n",
               r["keys_missing"].dump());
}

int registry_init(const RegistryArgs& a, const GlobalOptions& g) {
  if (std::filesystem::exists(a.key_file)) throw InputError(a.key_file, "exists already: a registry is initialised once");
  registry::create_registry_key(a.key_file);
  registry::Registry reg(a.db, a.key_file);
  const std::string token = reg.bootstrap_administrator(a.label);
  if (token.empty()) throw InputError(fmt::format("{}: the database already has an administrator (a registry's database belongs to one key)", a.db));
  if (g.json) print_json({{"db", a.db}, {"key_file", a.key_file}, {"administrator_token", token}, {"store", reg.store_kind()}});
  else if (!g.quiet)
    fmt::print("registry {} ({}) with key {}\nadministrator token (shown once; keep it secret): {}\n", a.db, reg.store_kind(), a.key_file, token);
  return kOk;
}

std::function<void()> g_stop;

int registry_serve(const RegistryArgs& a, const GlobalOptions& g) {
  registry::ServeOptions o = a.serve;
  apply_flags(registry::serve_option_table(), a.given, o);
  registry::Registry reg(a.db, a.key_file);
  const auto ready = [&](int port) {
    const std::string url = fmt::format("{}://{}:{}", o.cert.empty() ? "http" : "https", o.bind, port);
    if (g.json) print_json({{"url", url}, {"port", port}, {"store", reg.store_kind()}});
    else if (!g.quiet) fmt::print("tracecast registry: serving {} ({}); Ctrl-C stops it\n", url, reg.store_kind());
    std::fflush(stdout);
  };
  for (const int sig : {SIGINT, SIGTERM})
    std::signal(sig, [](int) {
      if (g_stop) std::thread([] { g_stop(); }).detach();
    });
  registry::serve(reg, o, ready, &g_stop);
  return kOk;
}

int registry_token_cmd(const RegistryArgs& a, const GlobalOptions& g) {
  registry::Client c = client_of(a);
  nlohmann::json req = {{"role", a.role}, {"label", a.label}};
  if (a.maker) req["maker"] = a.maker;
  if (a.valid_days) req["valid_days"] = a.valid_days;
  const nlohmann::json r = c.post("/v1/tokens", req);
  if (g.json) print_json(r);
  else if (!g.quiet)
    fmt::print("{} token {} for '{}'{}{} (shown once): {}\n", a.role, r["id"].get<std::string>(), a.label, a.maker ? fmt::format(", maker {}", a.maker) : "",
               a.valid_days ? ", valid until " + r["expires_utc"].get<std::string>() : "", r["token"].get<std::string>());
  return kOk;
}

int registry_tokens(const RegistryArgs& a, const GlobalOptions& g) {
  registry::Client c = client_of(a);
  const nlohmann::json r = c.get("/v1/tokens");
  if (g.json) print_json(r);
  else if (!g.quiet)
    for (const auto& t : r["tokens"])
      fmt::print("{}  {:<13} {:<24} maker {:<5} made {}{}{}\n", t["id"].get<std::string>(), t["role"].get<std::string>(), t["label"].get<std::string>(),
                 t["maker"].get<long>(), t["created_utc"].get<std::string>(),
                 t["expires_utc"].get<std::string>().empty() ? "" : ", expires " + t["expires_utc"].get<std::string>(),
                 t["revoked_utc"].get<std::string>().empty() ? "" : ", REVOKED " + t["revoked_utc"].get<std::string>());
  return kOk;
}

int registry_revoke(const RegistryArgs& a, const GlobalOptions& g) {
  registry::Client c = client_of(a);
  const nlohmann::json r = c.post("/v1/tokens/revoke", {{"id", a.id}});
  if (g.json) print_json(r);
  else if (!g.quiet) fmt::print("token {} ('{}') revoked on {}\n", r["id"].get<std::string>(), r["label"].get<std::string>(), r["revoked_utc"].get<std::string>());
  return kOk;
}

std::vector<watermark::Key> read_keys(const std::vector<std::string>& files) {
  std::vector<watermark::Key> keys;
  for (const std::string& f : files) keys.push_back(watermark::read_key(f));
  return keys;
}

//! What a workshop sends from: its marking keys, and its ledger opened with its signing key (which
//! signs the checkpoint), refused when it does not verify.
struct WorkshopSide {
  std::vector<watermark::Key> keys;
  ledger::SigningKey signer;
  ledger::Ledger book;
  explicit WorkshopSide(const RegistryArgs& a)
      : keys(read_keys(a.keys)), signer(workshop_signing_key(a.signing_key)), book(ledger::Ledger::open(ledger_file(a.ledger), &signer)) {
    if (const ledger::VerifyResult v = book.verify(); !v.ok) throw InputError(ledger_file(a.ledger), "does not verify: " + v.problem);
  }
};

int registry_enrol(const RegistryArgs& a, const GlobalOptions& g) {
  const WorkshopSide w(a);
  const std::vector<watermark::Key>& keys = w.keys;
  const ledger::Ledger& book = w.book;
  registry::Client c = client_of(a);
  const std::string pub = c.get("/v1/registry-key")["public_key"].get<std::string>();
  std::string name = a.name;
  if (name.empty()) name = nlohmann::json::parse(book.entries().front().body).value("name", std::string("workshop"));
  const nlohmann::json r = c.post("/v1/enrol", registry::enrol_request(book, name, keys, pub));
  if (g.json) print_json(r);
  else if (!g.quiet)
    fmt::print("enrolled maker {} ('{}', key {}): {} entries, {} pieces, {} marking keys escrowed\n", r["maker"].get<unsigned>(),
               r["name"].get<std::string>(), r["key_fingerprint"].get<std::string>(), r["entries"].get<long>(), r["pieces"].get<long>(),
               r["marking_keys"].get<long>());
  warn_missing_keys(r, g);
  return kOk;
}

int registry_push(const RegistryArgs& a, const GlobalOptions& g) {
  const WorkshopSide w(a);
  const std::vector<watermark::Key>& keys = w.keys;
  const ledger::Ledger& book = w.book;
  registry::Client c = client_of(a);
  const nlohmann::json held = c.get("/v1/workshop");
  std::vector<watermark::Key> fresh;
  for (const watermark::Key& k : keys)
    if (std::find(held["marking_keys"].begin(), held["marking_keys"].end(), k.id()) == held["marking_keys"].end()) fresh.push_back(k);
  if (held["entries"].get<std::int64_t>() == book.entries().back().seq && fresh.empty()) {
    if (!g.quiet) fmt::print("nothing to push: the registry holds all {} entries\n", held["entries"].get<std::int64_t>());
    return kOk;
  }
  const std::string pub = c.get("/v1/registry-key")["public_key"].get<std::string>();
  const nlohmann::json r = c.post("/v1/push", registry::push_request(book, held["entries"].get<std::int64_t>(), fresh, pub));
  if (g.json) print_json(r);
  else if (!g.quiet) fmt::print("pushed {} entries ({} pieces); the registry holds {}\n", r["added"].get<long>(), r["pieces"].get<long>(), r["entries"].get<long>());
  warn_missing_keys(r, g);
  return kOk;
}

int registry_audit(const RegistryArgs& a, const GlobalOptions& g) {
  registry::Client c = client_of(a);
  const nlohmann::json r = c.get("/v1/audit");
  if (g.json) print_json(r);
  else if (!g.quiet) {
    for (const auto& row : r["rows"])
      fmt::print("{:>6}  {}  {:<13} {:<20} {:<9} {}{}\n", row["seq"].get<long>(), row["time_utc"].get<std::string>(), row["role"].get<std::string>(),
                 row["label"].get<std::string>(), row["action"].get<std::string>(),
                 row["case"].get<std::string>().empty() ? "" : "case " + row["case"].get<std::string>() + " ", row["result"].dump());
    fmt::print("{}\n", r["verifies"].get<bool>() ? "audit log: chain verifies" : "audit log DOES NOT VERIFY: " + r["problem"].get<std::string>());
  }
  return r["verifies"].get<bool>() ? kOk : kFailed;
}

using Run = int (*)(const RegistryArgs&, const GlobalOptions&);
using Options = void (*)(CLI::App&, RegistryArgs&);

Command leaf(const char* name, const char* summary, Run run, Options options) {
  return {name, summary, [run, options](CLI::App& s, GlobalOptions& g) -> std::function<int()> {
            auto a = std::make_shared<RegistryArgs>();
            options(s, *a);
            return [a, &g, run] { return run(*a, g); };
          }};
}

void server_side(CLI::App& s, RegistryArgs& a) {
  s.add_option("--db", a.db, "sqlite:PATH (embedded) or postgresql://USER@HOST:PORT/DB")->default_val(a.db);
  s.add_option("--key-file", a.key_file, "The registry's own key file (mode 0600)")->default_val(a.key_file);
}
void client_side(CLI::App& s, RegistryArgs& a) {
  s.add_option("--registry", a.url, "The registry's address, http(s)://HOST:PORT (default: $TRACECAST_REGISTRY)");
  s.add_option("--token", a.token, "Your token (default: $TRACECAST_REGISTRY_TOKEN, which keeps it out of the process list)");
  s.add_option("--ca-cert", a.ca, "For an https:// registry with its own certificate: the PEM file it must chain to (default: $TRACECAST_REGISTRY_CA)");
}
void workshop_side(CLI::App& s, RegistryArgs& a) {
  client_side(s, a);
  s.add_option("--ledger", a.ledger, "The workshop's ledger (default: $TRACECAST_LEDGER)");
  s.add_option("--signing-key", a.signing_key, "The workshop's signing key (default: $TRACECAST_SIGNING_KEY): it signs the checkpoint");
}

}  // namespace

Command registry_group() {
  const char* examples =
      "Examples:\n  tracecast registry init --db sqlite:/srv/registry.db --key-file /srv/registry.key\n"
      "  tracecast registry serve --db sqlite:/srv/registry.db --key-file /srv/registry.key --port 8470\n"
      "  tracecast registry token --registry http://127.0.0.1:8470 --role workshop --label \"Shop\" --maker 42\n"
      "  tracecast registry tokens --registry http://127.0.0.1:8470\n"
      "  tracecast registry revoke 3f2a91c077de0b14 --registry http://127.0.0.1:8470\n"
      "  tracecast registry enrol --registry http://127.0.0.1:8470 --ledger shop.ledger --signing-key shop.sign --key shop.key\n"
      "  tracecast registry push --registry http://127.0.0.1:8470 --ledger shop.ledger --signing-key shop.sign\n"
      "  tracecast trace cast-scan.ply --registry http://127.0.0.1:8470 --case CASE-2026-0142\n"
      "Tokens come from --token or $TRACECAST_REGISTRY_TOKEN. Exit 8 when the registry refuses a request.";
  return {"registry", "The registry: enrolled workshops' chains and escrowed keys; tracing any enrolled workshop's piece",
          {},
          {leaf("init", "Create the registry's key and database; prints the first administrator token", registry_init,
                [](CLI::App& s, RegistryArgs& a) {
                  server_side(s, a);
                  s.add_option("--label", a.label, "Who the administrator token is for")->default_val(a.label);
                }),
           leaf("serve", "Serve the registry's HTTP API until interrupted", registry_serve,
                [](CLI::App& s, RegistryArgs& a) {
                  server_side(s, a);
                  s.add_option("--bind", a.serve.bind, "Address to listen on; other than 127.0.0.1 makes the registry reachable from the network")
                      ->default_val(a.serve.bind);
                  s.add_option("--cert", a.serve.cert, "TLS certificate (PEM): serve HTTPS");
                  s.add_option("--cert-key", a.serve.cert_key, "The certificate's private key (PEM)");
                  add_option_flags(s, registry::serve_option_table(), a.given);
                }),
           leaf("token", "Create a token (administrator): for a workshop, an investigator or another administrator", registry_token_cmd,
                [](CLI::App& s, RegistryArgs& a) {
                  client_side(s, a);
                  s.add_option("--role", a.role, "administrator, workshop or investigator")->required()->check(CLI::IsMember({"administrator", "workshop", "investigator"}));
                  s.add_option("--label", a.label, "Who it is for")->required();
                  s.add_option("--maker", a.maker, "The workshop's maker number (workshop tokens)")->check(CLI::Range(1, 65535));
                  s.add_option("--valid-days", a.valid_days, "Days the token is valid (default: until revoked)")->check(CLI::Range(1, 3650));
                }),
           leaf("tokens", "List the tokens (administrator): id, role, label, maker, made, expiry, revocation; never the tokens", registry_tokens,
                [](CLI::App& s, RegistryArgs& a) { client_side(s, a); }),
           leaf("revoke", "Revoke a token by its id (administrator): refused from then on", registry_revoke,
                [](CLI::App& s, RegistryArgs& a) {
                  client_side(s, a);
                  s.add_option("ID", a.id, "The token's id, as `registry tokens` and `registry token` print it")->required();
                }),
           leaf("enrol", "Enrol this workshop: its chain, its signing key, its marking keys sealed to the registry", registry_enrol,
                [](CLI::App& s, RegistryArgs& a) {
                  workshop_side(s, a);
                  s.add_option("--key", a.keys, "Marking key file; repeat for each")->required();
                  s.add_option("--name", a.name, "The workshop's name (default: the ledger's)");
                }),
           leaf("push", "Push the ledger's entries since the last push, with a signed checkpoint", registry_push,
                [](CLI::App& s, RegistryArgs& a) {
                  workshop_side(s, a);
                  s.add_option("--key", a.keys, "Marking key files: those the registry does not hold yet are escrowed");
                }),
           leaf("audit", "Print the audit log (administrator) and check its chain", registry_audit,
                [](CLI::App& s, RegistryArgs& a) { client_side(s, a); })},
          examples};
}

}  // namespace tracecast::cli
