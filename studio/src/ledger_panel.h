// The studio's view of the workshop's ledger and the changes the page makes to it: create it, add
// operators, subjects, consents with their signed documents, open and close runs. Internal to the
// studio; every change goes through the ledger library's own checks (InputError on a refusal).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace tracecast::studio::detail {

//! The workshop's ledger as the page shows it: {exists, workshop {name, maker, key_fingerprint},
//! operators, subjects, consents, runs, pieces, verify {ok, problem}} (docs/formats.md#studio-ledger).
nlohmann::json ledger_view(const std::filesystem::path& workshop);

//! One change, `what` ∈ init, operator, subject, consent, run, run-close, with the page's fields;
//! returns {done: one line, ledger: ledger_view()}. InputError naming the field or the refusal;
//! nothing is written then (a consent's document is kept only once its entry is recorded).
nlohmann::json ledger_change(const std::filesystem::path& workshop, const std::string& what, const nlohmann::json& body);

}  // namespace tracecast::studio::detail
