// Many recipes at once: a manifest of recipes, each checked before any work and run in its own
// `tracecast run` process (a failure or a crash stops only its item), a bounded number at a time
// on this machine, or as one Slurm job array; then one summary.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace tracecast::pipeline {

struct BatchItem {
  std::size_t line = 0;              //!< in the manifest
  std::string name;
  std::filesystem::path recipe;
  std::string status = "pending";    //!< pending, running, then ok, failed or refused (before any work)
  int exit_code = 0;                 //!< the run's exit code (3 for a refused recipe)
  std::string id, output, error;     //!< the piece's identifier, the output folder, or what went wrong
  double seconds = 0;
};
void to_json(nlohmann::json& j, const BatchItem& item);

//! The manifest: a CSV whose first line names the columns (`recipe`, required; `name`,
//! optional), then one recipe a line, paths relative to the manifest's folder; blank lines and
//! lines starting with # are skipped. Throws InputError for an unreadable or empty manifest.
std::vector<BatchItem> read_manifest(const std::filesystem::path& file);

//! Reads every recipe before any work: a recipe with a problem, or writing into another's output
//! folder, is marked refused with the error; the workshops recipes create are created once here,
//! not by concurrent runs.
void check_batch(std::vector<BatchItem>& items);

//! How many recipes run at once: `requested` if above 0, else the cores, fewer if the memory
//! available (MemAvailable) does not hold that many jobs of `memory_gb`.
int batch_jobs(int requested, double memory_gb);

//! Runs the pending items as `executable run RECIPE --json`, `jobs` at a time, each in its own
//! process; `finished` is called after each item ends with the count done so far.
void run_batch_local(std::vector<BatchItem>& items, int jobs, const std::filesystem::path& executable,
                     const std::function<void(const BatchItem&, std::size_t done)>& finished = {});

struct SlurmOptions {
  int cpus_per_task = 2;
  double memory_gb = 2.0;
  std::string sbatch_args;           //!< more sbatch options, as typed
};
//! Runs the pending items as one Slurm job array (a script and the recipe list in
//! `folder`), waits for it (sbatch --wait) and reads each task's outcome. `submitting` is told
//! the command before it runs. Throws ProcessingError if sbatch cannot submit the array.
void run_batch_slurm(std::vector<BatchItem>& items, const std::filesystem::path& folder, const SlurmOptions& options,
                     const std::filesystem::path& executable, const std::function<void(const std::string&)>& submitting = {});

}  // namespace tracecast::pipeline
