// Test runner: Catch2 v2, plus one rule: a run that selects tests needing something outside the
// project exits 77 (CTest's "skipped") with a message when it is absent, instead of passing
// without checking anything:
//   [shared]    the third-party scans in ../shared/scans
//   [slicer]    admesh and prusa-slicer
//   [chromium]  Debian's chromium
//   [slurm]     slurm-wlm and munge, as root (the test starts a single-node cluster)
//   [postgresql] PostgreSQL's server programs (initdb, pg_ctl), and the postgres user when run as root
// CTest runs each of these tags as its own test (tests/CMakeLists.txt), so a skip never hides
// other tests.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fixtures.h"

namespace {

bool installed(const char* tool) { return std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) == 0; }

// What a tag needs, or "" when it is all here.
std::string missing_for(const std::string& tag) {
  if (tag == "[shared]") return tracecast::test::shared_scans() ? "" : "../shared/scans (third-party scans beside the project)";
  std::vector<const char*> tools;
  if (tag == "[slicer]") tools = {"admesh", "prusa-slicer"};
  if (tag == "[chromium]") tools = {"chromium"};
  if (tag == "[slurm]") {
    if (::geteuid() != 0) return "root (slurmd runs as root)";
    tools = {"sbatch", "sinfo", "scontrol", "slurmctld", "slurmd", "munged", "munge"};
  }
  if (tag == "[postgresql]") {
    if (std::system("ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1") != 0) return "PostgreSQL's server (apt-get install postgresql)";
    if (::geteuid() == 0 && std::system("id postgres >/dev/null 2>&1") != 0) return "the postgres user (apt-get install postgresql)";
  }
  for (const char* t : tools)
    if (!installed(t)) return std::string(t) + " (apt-get install admesh prusa-slicer chromium slurm-wlm munge)";
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  Catch::Session session;
  if (const int rc = session.applyCommandLine(argc, argv)) return rc;
  for (const std::string& spec : session.configData().testsOrTags)
    for (const char* tag : {"[shared]", "[slicer]", "[chromium]", "[slurm]", "[postgresql]"}) {
      const auto at = spec.find(tag);
      if (at == std::string::npos || (at > 0 && spec[at - 1] == '~')) continue;
      if (const std::string what = missing_for(tag); !what.empty()) {
        std::printf("SKIPPED: the %s tests need %s, which is not here\n", tag, what.c_str());
        return 77;
      }
    }
  return session.run();
}
