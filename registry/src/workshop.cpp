// The workshop's side of the registry: enrolment and push requests built from its ledger.
#include "tracecast/mesh/errors.h"
#include "tracecast/registry/registry.h"

namespace tracecast::registry {

using nlohmann::json;

namespace {

json sealed_keys(const std::vector<watermark::Key>& keys, const std::string& registry_public_hex) {
  std::array<std::uint8_t, 32> pub;
  if (!ledger::unhex(registry_public_hex, pub.data(), pub.size())) throw InputError("the registry's public key is not 64 hex digits");
  json out = json::array();
  for (const watermark::Key& k : keys) out.push_back({{"id", k.id()}, {"sealed", watermark::seal_key(k, pub)}});
  return out;
}

}  // namespace

json enrol_request(const ledger::Ledger& book, const std::string& name, const std::vector<watermark::Key>& keys,
                   const std::string& registry_public_hex) {
  return {{"name", name},
          {"maker", book.maker()},
          {"public_key", book.public_key_hex()},
          {"marking_keys", sealed_keys(keys, registry_public_hex)},
          {"checkpoint", book.checkpoint()},
          {"entries", book.signed_entries(0)}};
}

json push_request(const ledger::Ledger& book, std::int64_t held, const std::vector<watermark::Key>& new_keys,
                  const std::string& registry_public_hex) {
  return {{"checkpoint", book.checkpoint()}, {"entries", book.signed_entries(held)}, {"marking_keys", sealed_keys(new_keys, registry_public_hex)}};
}

}  // namespace tracecast::registry
