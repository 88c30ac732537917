// tracecast batch MANIFEST.csv: many recipes, each in its own process, on this machine a bounded
// number at a time or as a Slurm job array (pipeline/batch.h), with a summary at the end.
#include <fmt/format.h>

#include <chrono>

#include "common.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/pipeline/batch.h"

namespace tracecast::cli {

namespace {

struct BatchArgs {
  std::string manifest, summary;
  int jobs = 0;
  bool slurm = false;
  pipeline::SlurmOptions slurm_options;
};

void print_summary(const BatchArgs& a, const std::vector<pipeline::BatchItem>& items, std::size_t ok, int jobs, double seconds,
                   const std::filesystem::path& summary_file) {
  fmt::print("{}: {} of {} recipes made their mold, {} failed ({}, {:.0f} s); summary in {}\n", a.manifest, ok, items.size(),
             items.size() - ok, a.slurm ? std::string("as a Slurm job array") : fmt::format("{} at a time", jobs), seconds,
             summary_file.string());
  fmt::print("  {:<24} {:<8} {:<20} {:>8}  {}\n", "name", "status", "piece", "seconds", "output or error");
  for (const pipeline::BatchItem& it : items)
    fmt::print("  {:<24} {:<8} {:<20} {:>8.1f}  {}\n", it.name, it.status, it.id.empty() ? "—" : it.id, it.seconds,
               it.status == "ok" ? it.output : it.error.substr(0, it.error.find('\n')));
}

int run_batch(const BatchArgs& a, const GlobalOptions& g) {
  const std::filesystem::path manifest(a.manifest);
  std::vector<pipeline::BatchItem> items = pipeline::read_manifest(manifest);
  pipeline::check_batch(items);
  const int jobs = pipeline::batch_jobs(a.jobs, a.slurm_options.memory_gb);
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe");
  const bool talk = !g.quiet && !g.json;
  const auto t0 = std::chrono::steady_clock::now();
  if (a.slurm) {
    pipeline::run_batch_slurm(items, manifest.parent_path() / (manifest.stem().string() + "-slurm"), a.slurm_options, self,
                              [&](const std::string& cmd) {
                                if (talk) fmt::print(stderr, "submitting the job array: {}\n", cmd);
                              });
  } else {
    pipeline::run_batch_local(items, jobs, self, [&](const pipeline::BatchItem& item, std::size_t done) {
      if (talk)
        fmt::print(stderr, "[{}/{}] {} {}{}\n", done, items.size(), item.name, item.status, item.status == "ok" ? " " + item.id : ": " + item.error);
    });
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::size_t ok = 0;
  for (const pipeline::BatchItem& it : items) ok += it.status == "ok";
  const nlohmann::json summary = {{"manifest", a.manifest}, {"runner", a.slurm ? "slurm" : "local"}, {"jobs", a.slurm ? 0 : jobs},
                                  {"recipes", items.size()}, {"made", ok}, {"failed", items.size() - ok}, {"seconds", seconds},
                                  {"items", items}};
  const std::filesystem::path summary_file =
      a.summary.empty() ? manifest.parent_path() / (manifest.stem().string() + "-summary.json") : std::filesystem::path(a.summary);
  write_file_atomically(summary_file, summary.dump(2) + "\n");
  if (g.json) print_json(summary);
  else if (!g.quiet) print_summary(a, items, ok, jobs, seconds, summary_file);
  return ok == items.size() ? static_cast<int>(kOk) : static_cast<int>(kFailed);
}

}  // namespace

std::function<int()> setup_batch(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<BatchArgs>();
  sub.add_option("MANIFEST", a->manifest, "CSV with a header line: recipe[,name]; one recipe a line (paths relative to the manifest)")
      ->required();
  sub.add_option("-j,--jobs", a->jobs, "Recipes run at once (default: cores, fewer if the memory available does not allow it)")
      ->check(CLI::Range(0, 256));
  sub.add_option("--memory-per-job", a->slurm_options.memory_gb, "Memory one recipe may take, GB: bounds the jobs run at once")
      ->check(CLI::Range(0.1, 1024.0))
      ->capture_default_str();
  sub.add_option("--summary", a->summary, "Summary to write (default: MANIFEST-summary.json beside the manifest)");
  sub.add_flag("--slurm", a->slurm, "Run the recipes as a Slurm job array (sbatch), one task a recipe, and wait for it");
  sub.add_option("--cpus-per-task", a->slurm_options.cpus_per_task, "With --slurm: CPUs per task")->check(CLI::Range(1, 256))->capture_default_str();
  sub.add_option("--sbatch-args", a->slurm_options.sbatch_args, "With --slurm: more sbatch options (e.g. \"--partition=gpu --account=fx\")");
  sub.footer(
      "Each recipe runs in its own `tracecast run` process: one that fails (or crashes) does not stop the others.\n"
      "Recipes are checked before any work; those refused are reported without running. Workshops that recipes\n"
      "create are created once, before the runs. Exit 0 when every recipe made its mold, 4 when one did not.\n"
      "Example:\n  tracecast batch run-200.csv --jobs 2");
  return [a, &g] { return run_batch(*a, g); };
}

}  // namespace tracecast::cli
