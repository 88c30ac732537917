// `tracecast run`: a recipe's stages, scan → appliance → mold (stamped, recorded) → previews →
// report, each cached in the output folder by the content hash of what it depends on.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "tracecast/pipeline/recipe.h"

namespace tracecast::pipeline {

struct StageEvent {
  enum Kind { Start, Done } kind = Start;
  std::string stage;
  int index = 0, count = 0;   //!< 1-based position among the stages
  bool cached = false;        //!< Done: the outputs of an earlier run were reused
  double seconds = 0;         //!< Done: time spent
  double expected_s = 0;      //!< Start: the time the stage took when it last ran (0: unknown)
};

struct RunResult {
  nlohmann::json report;      //!< what report.json holds (docs/formats.md#run-report)
  std::uint64_t id = 0;       //!< the piece's identifier
};

//! When the recipe says what to create and its ledger does not exist: creates the ledger (and the
//! signing and marking keys where their files do not exist), the operator, the subject, its
//! consent and run 1. Returns whether it created the ledger.
bool set_up_workshop(const Recipe& recipe);

//! Runs the recipe into recipe.output. Stage outputs are written atomically and recorded in
//! OUTPUT/.tracecast/STAGE.json with the hash of their inputs and options: a stage whose record
//! matches (and whose files are intact) is not redone, so a run that was interrupted resumes and
//! a changed option redoes only the stages it affects. A new mold is a new piece in the ledger.
RunResult run_recipe(const Recipe& recipe, const std::function<void(const StageEvent&)>& progress = {});

}  // namespace tracecast::pipeline
