// Running the tracecast binary from tests: exit code, stdout, stderr.
#pragma once

#include <catch2/catch.hpp>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

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

}  // namespace tracecast::test
