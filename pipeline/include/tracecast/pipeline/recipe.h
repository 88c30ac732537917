// A recipe: everything `tracecast run` needs to go from scan to traceable mold, in one small JSON
// file (format and defaults: docs/formats.md#recipe). Paths are relative to the recipe's folder.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tracecast/mesh/appliance.h"
#include "tracecast/pipeline/traceable.h"
#include "tracecast/print/casting.h"
#include "tracecast/print/mold.h"
#include "tracecast/scan/reconstruct.h"
#include "tracecast/sculpt/ear.h"
#include "tracecast/sculpt/mask.h"

namespace tracecast::pipeline {

//! What to create when the recipe's ledger does not exist yet (a first run, an example, a trial):
//! the ledger and its signing key, the marking key, the operator, the subject's consent and the run.
struct Setup {
  std::uint32_t maker = 0;
  std::string workshop, use = "film", client, prescriber, operator_code, operator_name;
  std::filesystem::path consent_document;
  std::string consent_valid_until, consent_given_by;
};

struct Recipe {
  std::filesystem::path file;                 //!< the recipe itself
  std::vector<std::filesystem::path> scans;   //!< one scan, or several views of one face
  std::string units = "auto";
  scan::ReconstructOptions reconstruct;
  nlohmann::json scan_options;                //!< as given, with defaults filled in (echoed in the report)
  //! The piece the mold is made for, from the recipe's one piece section: "appliance" (the
  //! default), "mask" (the scan is the wearer's closed head) or "ear" (the scan is a head lacking one ear).
  std::string piece = "appliance";
  ApplianceSpec appliance;
  sculpt::MaskOptions mask;
  std::filesystem::path likeness_scan;        //!< the mask's "likeness": another head's scan, or empty (the wearer's own)
  sculpt::EarOptions ear;
  nlohmann::json appliance_options;           //!< the piece's section as used (whichever it is)
  print::MoldOptions mold;
  print::SiliconeOptions silicone;
  nlohmann::json mold_options;                //!< both tables' values, as used
  Production production;
  std::optional<Setup> setup;
  std::filesystem::path output;               //!< the output folder
  nlohmann::json echo;                        //!< the whole recipe as used, defaults included
};

//! Every option table a recipe's sections read, in the recipe's order (scan; one piece section:
//! appliance, mask or ear; mold and the casting sheet's silicone, both in "mold"): for
//! `tracecast options`, the docs and front ends.
std::vector<const OptionSchema*> recipe_option_schemas();
//! The recipe's tables and those of subcommands outside recipes (repair).
std::vector<const OptionSchema*> option_schemas();

//! Reads and checks a recipe before any work: every problem found (unknown keys, wrong types,
//! values out of range, missing files) is listed in one InputError, one per line.
Recipe read_recipe(const std::filesystem::path& file);

}  // namespace tracecast::pipeline
