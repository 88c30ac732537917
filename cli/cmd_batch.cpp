// tracecast batch MANIFEST.csv: many recipes on one machine, a bounded number at a time, each in
// its own process (a failure or a crash stops only its item), with a summary at the end.
#include <fmt/format.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "common.h"
#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/pipeline/recipe.h"
#include "tracecast/pipeline/run.h"

namespace tracecast::cli {

namespace {

struct Item {
  std::size_t line = 0;
  std::string name;
  std::filesystem::path recipe;
  // outcome
  std::string status = "pending";  // ok, failed, refused
  int exit_code = 0;
  std::string id, output, error;
  double seconds = 0;
};

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') cur += '"', ++i;
      else if (c == '"') quoted = false;
      else cur += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else if (c != '\r') {
      cur += c;
    }
  }
  out.push_back(cur);
  return out;
}

//! Manifest: a header naming the columns (`recipe`, required; `name`, optional), then one recipe a
//! line; paths relative to the manifest's folder; blank lines and lines starting with # ignored.
std::vector<Item> read_manifest(const std::filesystem::path& file) {
  std::ifstream f(file);
  if (!f) throw InputError(file, "cannot open the manifest");
  std::vector<Item> items;
  std::string line;
  std::vector<std::string> header;
  std::size_t n = 0;
  while (std::getline(f, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos || line[0] == '#') continue;
    const std::vector<std::string> cells = split_csv_line(line);
    if (header.empty()) {
      header = cells;
      if (std::find(header.begin(), header.end(), "recipe") == header.end())
        throw InputError(file, "the first line must name the columns, one of them \"recipe\" (and optionally \"name\")");
      continue;
    }
    Item it;
    it.line = n;
    for (std::size_t c = 0; c < header.size() && c < cells.size(); ++c) {
      if (header[c] == "recipe") it.recipe = file.parent_path() / cells[c];
      if (header[c] == "name") it.name = cells[c];
    }
    if (it.name.empty()) it.name = it.recipe.stem().string();
    items.push_back(it);
  }
  if (items.empty()) throw InputError(file, "lists no recipe");
  return items;
}

std::string read_text(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string last_line_of(const std::string& text);

//! An item's outcome from its `tracecast run --json` output and error streams.
void conclude(Item& item, int exit_code, const std::filesystem::path& out, const std::filesystem::path& err) {
  item.exit_code = exit_code;
  const auto fin = nlohmann::json::parse(last_line_of(read_text(out)), nullptr, false);
  if (exit_code == 0 && fin.is_object() && fin.value("event", "") == "finished") {
    item.status = "ok";
    item.id = fin["report"]["mold"]["mark"]["id"];
    if (item.seconds == 0) item.seconds = fin["report"].value("total_s", 0.0);
  } else {
    item.status = "failed";
    const std::string e = last_line_of(read_text(err));
    item.error = exit_code >= 128 ? fmt::format("killed by signal {}", exit_code - 128) : e.empty() ? fmt::format("exit {}", exit_code) : e;
  }
}

std::size_t available_mb() {
  std::ifstream m("/proc/meminfo");
  std::string key;
  std::size_t kb = 0;
  while (m >> key >> kb)
    if (key == "MemAvailable:") return kb / 1024;
  return 4096;
}

std::string last_line_of(const std::string& text) {
  const auto end = text.find_last_not_of("\n ");
  if (end == std::string::npos) return "";
  const auto start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
}

}  // namespace

std::function<int()> setup_batch(CLI::App& sub, GlobalOptions& g) {
  struct Args {
    std::string manifest, summary, slurm_args;
    int jobs = 0, cpus = 2;
    double memory_gb = 2.0;
    bool slurm = false;
  };
  auto a = std::make_shared<Args>();
  sub.add_option("MANIFEST", a->manifest, "CSV with a header line: recipe[,name]; one recipe a line (paths relative to the manifest)")
      ->required();
  sub.add_option("-j,--jobs", a->jobs, "Recipes run at once (default: cores, fewer if the memory available does not allow it)")
      ->check(CLI::Range(0, 256));
  sub.add_option("--memory-per-job", a->memory_gb, "Memory one recipe may take, GB: bounds the jobs run at once")
      ->check(CLI::Range(0.1, 1024.0))
      ->capture_default_str();
  sub.add_option("--summary", a->summary, "Summary to write (default: MANIFEST-summary.json beside the manifest)");
  sub.add_flag("--slurm", a->slurm, "Run the recipes as a Slurm job array (sbatch), one task a recipe, and wait for it");
  sub.add_option("--cpus-per-task", a->cpus, "With --slurm: CPUs per task")->check(CLI::Range(1, 256))->capture_default_str();
  sub.add_option("--sbatch-args", a->slurm_args, "With --slurm: more sbatch options (e.g. \"--partition=gpu --account=fx\")");
  sub.footer(
      "Each recipe runs in its own `tracecast run` process: one that fails (or crashes) does not stop the others.\n"
      "Recipes are checked before any work; those refused are reported without running. Workshops that recipes\n"
      "create are created once, before the runs. Exit 0 when every recipe made its mold, 4 when one did not.\n"
      "Example:\n  tracecast batch run-200.csv --jobs 2");
  return [a, &g] {
    const std::filesystem::path manifest(a->manifest);
    std::vector<Item> items = read_manifest(manifest);
    // Recipes checked up front; new workshops created once, not by concurrent runs.
    std::map<std::string, bool> set_up;
    std::map<std::string, std::size_t> outputs;  // output folder -> manifest line
    for (Item& it : items) {
      try {
        const pipeline::Recipe r = pipeline::read_recipe(it.recipe);
        it.output = r.output.string();
        const std::string out = std::filesystem::absolute(r.output).lexically_normal().string();
        if (const auto [at, fresh] = outputs.emplace(out, it.line); !fresh)
          throw InputError(it.recipe, fmt::format("writes into {}, as the recipe of line {} does", it.output, at->second));
        const std::string ledger = std::filesystem::absolute(r.production.ledger).lexically_normal().string();
        if (!set_up.count(ledger)) set_up[ledger] = pipeline::set_up_workshop(r);
      } catch (const Error& e) {
        it.status = "refused";
        it.exit_code = kBadInput;
        it.error = e.what();
      }
    }
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    const int by_memory = std::max(1, static_cast<int>(static_cast<double>(available_mb()) / (1024.0 * a->memory_gb)));
    const int jobs = a->jobs > 0 ? a->jobs : std::max(1, std::min(static_cast<int>(cores), by_memory));
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    const auto t0 = std::chrono::steady_clock::now();

    struct Running {
      std::size_t item;
      std::filesystem::path out, err;
      std::chrono::steady_clock::time_point start;
    };
    std::map<pid_t, Running> running;
    const auto logs = std::filesystem::temp_directory_path() / fmt::format("tracecast-batch-{}", ::getpid());
    std::filesystem::create_directories(logs);
    std::size_t next = 0, done = 0;
    const std::size_t total = items.size();
    auto launch = [&](std::size_t i) {
      Running r{i, logs / fmt::format("{}.out", i), logs / fmt::format("{}.err", i), std::chrono::steady_clock::now()};
      const pid_t pid = ::fork();
      if (pid < 0) throw ProcessingError("batch: cannot start a process");
      if (pid == 0) {  // only async-signal-safe calls until exec
        const int o = ::open(r.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600), e = ::open(r.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (o < 0 || e < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) ::_exit(127);
        ::execl(self.c_str(), self.c_str(), "run", items[i].recipe.c_str(), "--json", static_cast<char*>(nullptr));
        ::_exit(127);
      }
      items[i].status = "running";
      running[pid] = r;
    };
    if (a->slurm) {
      // One array task a recipe; the tasks' outputs are gathered as the local runs' are.
      const std::filesystem::path folder = manifest.parent_path() / (manifest.stem().string() + "-slurm");
      std::filesystem::create_directories(folder);
      std::vector<std::size_t> to_run;
      std::string list;
      for (std::size_t i = 0; i < items.size(); ++i)
        if (items[i].status == "pending") {
          to_run.push_back(i);
          list += std::filesystem::absolute(items[i].recipe).string() + "\n";
        }
      write_file_atomically(folder / "recipes.txt", list);
      const std::string f = std::filesystem::absolute(folder).string();
      const std::string script = fmt::format(
          "#!/bin/bash\n"
          "# Written by tracecast batch --slurm: task i runs the recipe on line i of recipes.txt.\n"
          "#SBATCH --job-name=tracecast-batch\n"
          "#SBATCH --array=1-{}\n"
          "#SBATCH --cpus-per-task={}\n"
          "#SBATCH --mem={}M\n"
          "#SBATCH --output={}/task-%a.out\n"
          "#SBATCH --error={}/task-%a.err\n"
          "recipe=$(sed -n \"${{SLURM_ARRAY_TASK_ID}}p\" {}/recipes.txt)\n"
          "{} run \"$recipe\" --json\n"
          "code=$?\n"
          "echo $code > {}/task-${{SLURM_ARRAY_TASK_ID}}.code\n"
          "exit $code\n",
          to_run.size(), a->cpus, static_cast<long>(1024 * a->memory_gb), f, f, f, self, f);
      write_file_atomically(folder / "job.sh", script);
      if (!to_run.empty()) {
        for (std::size_t k = 0; k < to_run.size(); ++k)
          for (const char* ext : {"out", "err", "code"}) std::filesystem::remove(folder / fmt::format("task-{}.{}", k + 1, ext));
        // --wait: sbatch returns when every task has ended (non-zero if one failed).
        const std::string cmd = fmt::format("sbatch --parsable --wait {} {} > {}/sbatch.out 2>&1", a->slurm_args, (folder / "job.sh").string(), f);
        if (!g.quiet && !g.json) fmt::print(stderr, "submitting {} tasks: {}\n", to_run.size(), cmd);
        const int rc = std::system(cmd.c_str());
        const std::string said = read_text(folder / "sbatch.out");
        if (rc != 0 && said.find_first_of("0123456789") != 0)
          throw ProcessingError(fmt::format("batch: sbatch could not run the job array: {}", last_line_of(said)));
        for (std::size_t k = 0; k < to_run.size(); ++k) {
          const auto out = folder / fmt::format("task-{}.out", k + 1), err = folder / fmt::format("task-{}.err", k + 1);
          if (!std::filesystem::exists(out)) {
            items[to_run[k]].status = "failed";
            items[to_run[k]].error = "the Slurm task did not run";
            continue;
          }
          const std::string code = read_text(folder / fmt::format("task-{}.code", k + 1));
          // No exit code written: the task was killed (time or memory limit, node failure).
          conclude(items[to_run[k]], code.empty() ? 128 + 9 : std::atoi(code.c_str()), out, err);
        }
      }
      done = total;
    }
    while (done < total) {
      while (next < total && static_cast<int>(running.size()) < jobs) {
        if (items[next].status == "pending") launch(next);
        else ++done;  // refused up front
        ++next;
      }
      if (running.empty()) continue;
      int status = 0;
      const pid_t pid = ::wait(&status);
      if (pid < 0) break;
      const auto it = running.find(pid);
      if (it == running.end()) continue;
      Item& item = items[it->second.item];
      item.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.start).count();
      conclude(item, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), it->second.out, it->second.err);
      running.erase(it);
      ++done;
      if (!g.quiet && !g.json)
        fmt::print(stderr, "[{}/{}] {} {}{}\n", done, total, item.name, item.status, item.status == "ok" ? " " + item.id : ": " + item.error);
    }
    std::filesystem::remove_all(logs);

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json list = nlohmann::json::array();
    std::size_t ok = 0;
    for (const Item& it : items) {
      ok += it.status == "ok";
      list.push_back({{"line", it.line}, {"name", it.name}, {"recipe", it.recipe.string()}, {"status", it.status}, {"exit_code", it.exit_code},
                      {"id", it.id}, {"output", it.output}, {"error", it.error}, {"seconds", it.seconds}});
    }
    const nlohmann::json summary = {{"manifest", a->manifest}, {"runner", a->slurm ? "slurm" : "local"}, {"jobs", a->slurm ? 0 : jobs}, {"recipes", items.size()}, {"made", ok},
                                    {"failed", items.size() - ok}, {"seconds", seconds}, {"items", list}};
    const std::filesystem::path summary_file =
        a->summary.empty() ? manifest.parent_path() / (manifest.stem().string() + "-summary.json") : std::filesystem::path(a->summary);
    write_file_atomically(summary_file, summary.dump(2) + "\n");
    if (g.json) {
      print_json(summary);
    } else if (!g.quiet) {
      fmt::print("{}: {} of {} recipes made their mold, {} failed ({}, {:.0f} s); summary in {}\n", a->manifest, ok, items.size(),
                 items.size() - ok, a->slurm ? std::string("as a Slurm job array") : fmt::format("{} at a time", jobs), seconds,
                 summary_file.string());
      fmt::print("  {:<24} {:<8} {:<20} {:>8}  {}\n", "name", "status", "piece", "seconds", "output or error");
      for (const Item& it : items)
        fmt::print("  {:<24} {:<8} {:<20} {:>8.1f}  {}\n", it.name, it.status, it.id.empty() ? "—" : it.id, it.seconds,
                   it.status == "ok" ? it.output : it.error.substr(0, it.error.find('\n')));
    }
    return ok == items.size() ? static_cast<int>(kOk) : static_cast<int>(kFailed);
  };
}

}  // namespace tracecast::cli
