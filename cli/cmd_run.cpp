// tracecast run RECIPE.json: scan → appliance → stamped, recorded mold → previews → report, with
// one progress display across the stages, cached stage outputs and a report people look at.
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <iostream>
#include <mutex>
#include <thread>

#include "common.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/pipeline/recipe.h"
#include "tracecast/pipeline/run.h"

namespace tracecast::cli {

namespace {

std::string clock_text(double s) {
  const int t = static_cast<int>(std::lround(s));
  return fmt::format("{}:{:02d}", t / 60, t % 60);
}

//! The terminal line: stage, bar, elapsed, ETA (from the stage's last run), redrawn while it runs.
class StageLine {
 public:
  explicit StageLine(bool enabled) : enabled_(enabled), start_(std::chrono::steady_clock::now()) {
    if (enabled_) ticker_ = std::thread([this] { tick(); });
  }
  ~StageLine() {
    {
      std::lock_guard<std::mutex> lock(m_);
      stop_ = true;
    }
    cv_.notify_all();
    if (ticker_.joinable()) ticker_.join();
    if (enabled_) fmt::print(stderr, "\r\x1b[2K");
  }
  void event(const pipeline::StageEvent& e) {
    std::lock_guard<std::mutex> lock(m_);
    if (e.kind == pipeline::StageEvent::Start) {
      current_ = e;
      stage_start_ = std::chrono::steady_clock::now();
      draw();
    } else if (enabled_) {
      fmt::print(stderr, "\r\x1b[2K  {}/{} {:<10} {}\n", e.index, e.count, e.stage,
                 e.cached ? "reused from the last run" : fmt::format("{:.1f} s", e.seconds));
      current_.stage.clear();
    }
  }

 private:
  void draw() {
    if (!enabled_ || current_.stage.empty()) return;
    const auto now = std::chrono::steady_clock::now();
    const double total = std::chrono::duration<double>(now - start_).count();
    const double in_stage = std::chrono::duration<double>(now - stage_start_).count();
    const double frac = current_.expected_s > 0 ? std::min(0.99, in_stage / current_.expected_s) : 0.0;
    const int width = 24;
    const int filled = static_cast<int>(width * ((current_.index - 1) + frac) / std::max(1, current_.count));
    const std::string eta = current_.expected_s > 0 ? fmt::format(", about {} left in this stage", clock_text(std::max(0.0, current_.expected_s - in_stage))) : "";
    fmt::print(stderr, "\r\x1b[2K[{}{}] {}/{} {} — {} elapsed{}", std::string(static_cast<std::size_t>(filled), '#'),
               std::string(static_cast<std::size_t>(width - filled), '.'), current_.index, current_.count, current_.stage, clock_text(total), eta);
    std::fflush(stderr);
  }
  void tick() {
    std::unique_lock<std::mutex> lock(m_);
    while (!stop_) {
      cv_.wait_for(lock, std::chrono::milliseconds(250));
      if (!stop_) draw();
    }
  }
  bool enabled_;
  std::chrono::steady_clock::time_point start_, stage_start_;
  pipeline::StageEvent current_;
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread ticker_;
};

//! One JSON line per stage event (--json).
void print_event(const pipeline::StageEvent& e) {
  std::cout << nlohmann::json{{"event", e.kind == pipeline::StageEvent::Start ? "start" : "done"},
                              {"stage", e.stage},
                              {"index", e.index},
                              {"stages", e.count},
                              {"cached", e.cached},
                              {"seconds", e.seconds},
                              {"expected_s", e.expected_s}}
                   .dump()
            << std::endl;
}

//! The run's summary: the piece, the mold's parts, warnings, stages, where the report is.
void print_summary(const std::string& recipe, const pipeline::Recipe& r, const nlohmann::json& rep) {
  const auto& mold = rep["mold"];
  const auto& c = mold["casting"];
  fmt::print("{} -> {}/\n", recipe, r.output.string());
  fmt::print("  piece        {} (run {}, subject {}{}), recorded in {}{}\n", mold["mark"]["id"].get<std::string>(), r.production.run,
             r.production.subject, r.production.likeness.empty() ? "" : ", likeness " + r.production.likeness, r.production.ledger.string(),
             rep["created_workshop"].get<bool>() ? " (created)" : "");
  fmt::print("  mold         mold.3mf and {} piece(s) as STL; cavity {:.2f} ml: mix {:.1f} g of silicone\n", mold["parts"].size(),
             c["cavity_ml"].get<double>(), c["silicone_g"].get<double>());
  for (const auto& p : mold["parts"])
    fmt::print("  {:<12} {:.1f} ml of resin, min wall {:.2f} mm, {}\n", p["name"].get<std::string>(), p["resin_ml"].get<double>(),
               p["min_wall_mm"].get<double>(), p["printable"].get<bool>() ? "printable" : "NOT printable (see the warnings)");
  if (const auto& b = mold["bolts"]; b["count"].get<std::size_t>() > 0)
    fmt::print("  bolts        {} × M{:g} × {:g} mm with washers and nuts, through bosses in the frame\n", b["count"].get<std::size_t>(),
               b["diameter_mm"].get<double>(), b["length_mm"].get<double>());
  for (const auto& w : mold["warnings"]) fmt::print("  warning      {}\n", w.get<std::string>());
  std::string stages;
  for (const auto& s : rep["stages"])
    stages += fmt::format("{}{} {}", stages.empty() ? "" : ", ", s["stage"].get<std::string>(),
                          s["cached"].get<bool>() ? "reused" : fmt::format("{:.1f} s", s["seconds"].get<double>()));
  fmt::print("  stages       {}; total {:.1f} s\n", stages, rep["total_s"].get<double>());
  fmt::print("  report       {}\n", (r.output / "report.html").string());
}

struct RunArgs {
  std::string recipe;
};

int run_run(const RunArgs& a, const GlobalOptions& g) {
  const pipeline::Recipe r = pipeline::read_recipe(a.recipe);
  const bool terminal = !g.quiet && !g.json && ::isatty(STDERR_FILENO);
  pipeline::RunResult result;
  {
    StageLine line(terminal);
    result = pipeline::run_recipe(r, [&](const pipeline::StageEvent& e) {
      line.event(e);
      if (g.json) print_event(e);
    });
  }
  if (g.json) std::cout << nlohmann::json{{"event", "finished"}, {"report", result.report}}.dump() << std::endl;
  else if (!g.quiet) print_summary(a.recipe, r, result.report);
  return kOk;
}

}  // namespace

std::function<int()> setup_run(CLI::App& sub, GlobalOptions& g) {
  auto a = std::make_shared<RunArgs>();
  sub.add_option("RECIPE", a->recipe, "Recipe file (JSON): inputs, appliance, mold, production (docs/formats.md#recipe)")->required();
  sub.footer(
      "Runs scan → appliance → stamped and recorded mold → previews → report.html into the recipe's output folder.\n"
      "Stages whose inputs and options did not change since the last run are reused; an interrupted run resumes.\n"
      "--json prints one JSON line per stage event, then the report. Exit 3 lists every problem of a bad recipe.\n"
      "Example:\n  tracecast run assets/example-recipe.json");
  return [a, &g] { return run_run(*a, g); };
}

}  // namespace tracecast::cli
