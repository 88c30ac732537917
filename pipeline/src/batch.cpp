#include "tracecast/pipeline/batch.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "tracecast/mesh/atomic_file.h"
#include "tracecast/mesh/errors.h"
#include "tracecast/pipeline/recipe.h"
#include "tracecast/pipeline/run.h"

namespace tracecast::pipeline {

namespace fs = std::filesystem;

namespace {

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

std::string last_line_of(const std::string& text) {
  const auto end = text.find_last_not_of("\n ");
  if (end == std::string::npos) return "";
  const auto start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
}

//! An item's outcome from its `tracecast run --json` output and error streams.
void conclude(BatchItem& item, int exit_code, const fs::path& out, const fs::path& err) {
  item.exit_code = exit_code;
  const auto fin = nlohmann::json::parse(last_line_of(read_file_or_empty(out)), nullptr, false);
  if (exit_code == 0 && fin.is_object() && fin.value("event", "") == "finished") {
    item.status = "ok";
    item.id = fin["report"]["mold"]["mark"]["id"];
    if (item.seconds == 0) item.seconds = fin["report"].value("total_s", 0.0);
  } else {
    item.status = "failed";
    const std::string e = last_line_of(read_file_or_empty(err));
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

std::string slurm_script(std::size_t tasks, const SlurmOptions& o, const std::string& folder, const std::string& exe) {
  return fmt::format(
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
      tasks, o.cpus_per_task, static_cast<long>(1024 * o.memory_gb), folder, folder, folder, exe, folder);
}

}  // namespace

void to_json(nlohmann::json& j, const BatchItem& it) {
  j = {{"line", it.line}, {"name", it.name}, {"recipe", it.recipe.string()}, {"status", it.status}, {"exit_code", it.exit_code},
       {"id", it.id}, {"output", it.output}, {"error", it.error}, {"seconds", it.seconds}};
}

std::vector<BatchItem> read_manifest(const fs::path& file) {
  std::ifstream f(file);
  if (!f) throw InputError(file, "cannot open the manifest");
  std::vector<BatchItem> items;
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
    BatchItem it;
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

void check_batch(std::vector<BatchItem>& items) {
  std::map<std::string, bool> set_up;
  std::map<std::string, std::size_t> outputs;  // output folder -> manifest line
  for (BatchItem& it : items) {
    try {
      const Recipe r = read_recipe(it.recipe);
      it.output = r.output.string();
      const std::string out = fs::absolute(r.output).lexically_normal().string();
      if (const auto [at, fresh] = outputs.emplace(out, it.line); !fresh)
        throw InputError(it.recipe, fmt::format("writes into {}, as the recipe of line {} does", it.output, at->second));
      const std::string ledger = fs::absolute(r.production.ledger).lexically_normal().string();
      if (!set_up.count(ledger)) set_up[ledger] = set_up_workshop(r);
    } catch (const Error& e) {
      it.status = "refused";
      it.exit_code = 3;  // as `tracecast run` exits for a bad recipe
      it.error = e.what();
    }
  }
}

int batch_jobs(int requested, double memory_gb) {
  if (requested > 0) return requested;
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const int by_memory = std::max(1, static_cast<int>(static_cast<double>(available_mb()) / (1024.0 * memory_gb)));
  return std::max(1, std::min(static_cast<int>(cores), by_memory));
}

void run_batch_local(std::vector<BatchItem>& items, int jobs, const fs::path& executable,
                     const std::function<void(const BatchItem&, std::size_t)>& finished) {
  struct Running {
    std::size_t item;
    fs::path out, err;
    std::chrono::steady_clock::time_point start;
  };
  std::map<pid_t, Running> running;
  const fs::path logs = fs::temp_directory_path() / fmt::format("tracecast-batch-{}", ::getpid());
  fs::create_directories(logs);
  const std::string exe = executable.string();
  auto launch = [&](std::size_t i) {
    Running r{i, logs / fmt::format("{}.out", i), logs / fmt::format("{}.err", i), std::chrono::steady_clock::now()};
    const pid_t pid = ::fork();
    if (pid < 0) throw ProcessingError("batch: cannot start a process");
    if (pid == 0) {  // only async-signal-safe calls until exec
      const int o = ::open(r.out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600), e = ::open(r.err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      if (o < 0 || e < 0 || ::dup2(o, 1) < 0 || ::dup2(e, 2) < 0) ::_exit(127);
      ::execl(exe.c_str(), exe.c_str(), "run", items[i].recipe.c_str(), "--json", static_cast<char*>(nullptr));
      ::_exit(127);
    }
    items[i].status = "running";
    running[pid] = r;
  };
  std::size_t next = 0, done = 0;
  const std::size_t total = items.size();
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
    BatchItem& item = items[it->second.item];
    item.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - it->second.start).count();
    conclude(item, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), it->second.out, it->second.err);
    running.erase(it);
    ++done;
    if (finished) finished(item, done);
  }
  fs::remove_all(logs);
}

void run_batch_slurm(std::vector<BatchItem>& items, const fs::path& folder, const SlurmOptions& o, const fs::path& executable,
                     const std::function<void(const std::string&)>& submitting) {
  fs::create_directories(folder);
  std::vector<std::size_t> to_run;
  std::string list;
  for (std::size_t i = 0; i < items.size(); ++i)
    if (items[i].status == "pending") {
      to_run.push_back(i);
      list += fs::absolute(items[i].recipe).string() + "\n";
    }
  write_file_atomically(folder / "recipes.txt", list);
  const std::string f = fs::absolute(folder).string();
  write_file_atomically(folder / "job.sh", slurm_script(to_run.size(), o, f, executable.string()));
  if (to_run.empty()) return;
  for (std::size_t k = 0; k < to_run.size(); ++k)
    for (const char* ext : {"out", "err", "code"}) fs::remove(folder / fmt::format("task-{}.{}", k + 1, ext));
  // --wait: sbatch returns when every task has ended (non-zero if one failed).
  const std::string cmd = fmt::format("sbatch --parsable --wait {} {} > {}/sbatch.out 2>&1", o.sbatch_args, (folder / "job.sh").string(), f);
  if (submitting) submitting(cmd);
  const int rc = std::system(cmd.c_str());
  const std::string said = read_file_or_empty(folder / "sbatch.out");
  if (rc != 0 && said.find_first_of("0123456789") != 0)
    throw ProcessingError(fmt::format("batch: sbatch could not run the job array: {}", last_line_of(said)));
  for (std::size_t k = 0; k < to_run.size(); ++k) {
    const fs::path out = folder / fmt::format("task-{}.out", k + 1), err = folder / fmt::format("task-{}.err", k + 1);
    if (!fs::exists(out)) {
      items[to_run[k]].status = "failed";
      items[to_run[k]].error = "the Slurm task did not run";
      continue;
    }
    const std::string code = read_file_or_empty(folder / fmt::format("task-{}.code", k + 1));
    // No exit code written: the task was killed (time or memory limit, node failure).
    conclude(items[to_run[k]], code.empty() ? 128 + 9 : std::atoi(code.c_str()), out, err);
  }
}

}  // namespace tracecast::pipeline
