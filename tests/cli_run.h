// Running the tracecast binary from tests: exit code, stdout, stderr.
#pragma once

#include <catch2/catch.hpp>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "fixtures.h"

namespace tracecast::test {

struct Run {
  int code;
  std::string out;  // stdout; stderr is captured into err
  std::string err;
};

//! `env` prefixes the command (e.g. "env VAR=value ").
inline Run run_env(const std::string& env, const std::string& args) {
  const auto dir = temp_dir("cli-stderr");
  const std::string cmd = env + std::string(TRACECAST_BIN) + " " + args + " 2>" + (dir / "err").string();
  Run r{};
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::array<char, 4096> buf;
  std::size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.err = read_bytes(dir / "err");
  return r;
}

//! Without the workshop's environment variables.
inline Run run(const std::string& args) {
  return run_env("env -u TRACECAST_LEDGER -u TRACECAST_SIGNING_KEY -u TRACECAST_MARK_KEY ", args);
}

//! A workshop set up through the CLI: its ledger (maker 42) and signing key, a marking key,
//! subject S-001 with a film consent, and film run 1 open; `tc` runs a command with all three
//! files in its environment, `mold_flags` are what a mold in run 1 for S-001 adds.
struct Workshop {
  std::filesystem::path dir;
  std::string env;
  const std::string mold_flags = " --run 1 --subject S-001";
  explicit Workshop(const std::string& name) : dir(temp_dir(name)) {
    env = "env TRACECAST_LEDGER=" + (dir / "shop.ledger").string() + " TRACECAST_SIGNING_KEY=" + (dir / "shop.sign").string() +
          " TRACECAST_MARK_KEY=" + (dir / "shop.key").string() + " ";
    write_bytes(dir / "consent.txt", "S-001 agrees to a film appliance.");
    for (const std::string& c : {std::string("ledger init -q --maker 42 --name Shop"), "key new -q -o " + (dir / "shop.key").string(),
                                 std::string("ledger operator -q op1 --name \"Alex Moreau\""), std::string("ledger subject -q S-001"),
                                 "ledger consent -q --subject S-001 --use film --valid-until 2099-12-31 --given-by S-001 --document " +
                                     (dir / "consent.txt").string(),
                                 std::string("ledger run open -q --use film --client Studio --operator op1")})
      REQUIRE(tc(c).code == 0);
  }
  Run tc(const std::string& args) const { return run_env(env, args); }
  std::size_t entries() const { return nlohmann::json::parse(tc("ledger show --json").out).size(); }
};

}  // namespace tracecast::test
