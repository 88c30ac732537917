// What every tracecast subcommand shares: exit codes, output mode, progress on a terminal.
#pragma once

#include <CLI/CLI.hpp>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tracecast/ledger/ledger.h"
#include "tracecast/mesh/distance.h"
#include "tracecast/mesh/face.h"
#include "tracecast/mesh/options.h"
#include "tracecast/watermark/mark.h"

namespace tracecast::cli {

//! Documented exit codes (docs/user-guide.md#exit-codes).
enum ExitCode : int {
  kOk = 0,
  kUsage = 2,          //!< bad command line
  kBadInput = 3,       //!< an input file is unreadable, malformed or out of range
  kFailed = 4,         //!< valid input, but processing or writing an output failed
  kNoMark = 5,         //!< detect: enough surface, but no mark under the key(s)
  kInsufficientSurface = 6,  //!< detect: too little, too sparse or too coarse a surface to carry a mark
  kNotInLedger = 7,    //!< trace: a mark was read, but its identifier is not in the ledger (or the registry)
  kRefused = 8,        //!< a registry refused the request (no or unknown token, wrong role, a push that does not extend its copy, …)
};

//! A bad command line found after parsing (a rule between options): exit 2, like CLI11's own.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct GlobalOptions {
  bool json = false;   //!< machine-readable output on stdout
  bool quiet = false;  //!< nothing on stdout except --json output; errors still on stderr
  bool verbose = false;  //!< the libraries' debug log on stderr
};

//! Stage progress on stderr, drawn only when stderr is a terminal and not --quiet/--json.
class Progress {
 public:
  Progress(const GlobalOptions& g, int stages);
  ~Progress();
  void stage(const std::string& name);  //!< starts the next stage
  void done();                          //!< clears the line
 private:
  bool enabled_;
  int stages_, current_ = 0;
  std::chrono::steady_clock::time_point start_;
};

//! What a subcommand's setup does: registers its options on `sub` (its args struct, shared with
//! the returned action) and returns the action, `run_X(args, global)`, to run after parsing.
using Setup = std::function<std::function<int()>(CLI::App& sub, GlobalOptions& global)>;

//! A subcommand: a leaf with its setup, or a group of subcommands (`key new`, `ledger run open`).
struct Command {
  std::string name, summary;
  Setup setup = {};               //!< a leaf's; empty for a group
  std::vector<Command> children = {};  //!< a group's
  std::string footer = {};        //!< a group's examples (a leaf's setup writes its own)
};

std::vector<Command> commands();  // the table, in the order `--help` lists them

// Groups of subcommands, each defined in its file: its name, summary, leaves and examples.
Command key_group();
Command synth_group();
Command ledger_group();
Command registry_group();

// Subcommand setups (one file each).
//! The symmetry plane's fit, one line of a command's summary (appliance, mirror, ear).
void print_symmetry(const SymmetryPlane& p);

std::function<int()> setup_info(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_convert(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_stamp(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_detect(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_trace(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_run(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_batch(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_scan(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_compare(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_repair(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_render(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_appliance(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_mirror(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_ear(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_mask(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_landmarks(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_mold(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_check(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_options(CLI::App& sub, GlobalOptions& g);
std::function<int()> setup_studio(CLI::App& sub, GlobalOptions& g);

//! One flag per option of `schema` (its flag(), help, unit, default and range), except the keys
//! in `skip`. A value is checked as it is parsed (exit 2 naming the flag) and kept in `given`
//! under its key, for apply_flags() to set after the subcommand's other inputs are read.
void add_option_flags(CLI::App& sub, const OptionSchema& schema, nlohmann::json& given, const std::vector<std::string>& skip = {});

//! Sets the options given on the command line on `t`; a rule the result breaks ("keys must be 0,
//! or 3 to 6") is a UsageError.
template <class T>
void apply_flags(const OptionTable<T>& table, const nlohmann::json& given, T& t) {
  std::vector<std::string> problems;
  table.read(given, t, "", problems);
  if (!problems.empty()) throw UsageError(problems.front());
}

//! Prints `j` (pretty) on stdout.
void print_json(const nlohmann::json& j);

//! How every reporting subcommand ends: the report written to `report_file` (if one was asked
//! for, atomically), the progress line cleared, `j` on stdout with --json. True when the caller
//! should print its text summary (neither --json nor --quiet).
bool finish_report(const nlohmann::json& j, const std::string& report_file, const GlobalOptions& g, Progress& progress);

//! The `--units mm|cm|m|in|auto` option every reading subcommand takes (default auto).
CLI::Option* add_units_option(CLI::App& sub, std::string& units, const std::string& whose);
//! "X,Y,Z" (not all zero) as a unit vector; InputError naming `option` otherwise.
Vec3 parse_direction(const std::string& text, const char* option);

//! `given` if not empty, else the environment variable `var` (empty if unset).
std::string from_env(const std::string& given, const char* var);
//! The ledger file: --ledger, else $TRACECAST_LEDGER; InputError if neither.
std::string ledger_file(const std::string& given);
//! The workshop's signing key: --signing-key, else $TRACECAST_SIGNING_KEY; InputError if neither.
ledger::SigningKey workshop_signing_key(const std::string& given);

//! A scan read for the mark under one or more key files (analysed once): the detection report
//! (docs/formats.md#detection-report), the identifier, and the exit code (0, 5 or 6).
struct ScanReading {
  nlohmann::json report;
  bool found = false;
  std::uint64_t id = 0;
  int code = kNoMark;
};
//! The key-independent analysis of a scan file (`given`: the detect table's flags).
watermark::Analysis analyse_scan(const std::string& scan, const nlohmann::json& given);
//! `given`: the detect table's flags (resampling).
ScanReading read_mark(const std::string& scan, const std::vector<std::string>& key_files, const nlohmann::json& given, const GlobalOptions& g);
//! One line about a reading: the identifier and how sure, or why there is none.
std::string reading_line(const ScanReading& r);

}  // namespace tracecast::cli
