// Test runner: Catch2 v2, plus one rule: a run selecting "[shared]" tests exits 77 (CTest's
// "skipped") with a message when the third-party scans folder is absent.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "fixtures.h"

int main(int argc, char** argv) {
  Catch::Session session;
  if (const int rc = session.applyCommandLine(argc, argv)) return rc;
  for (const std::string& spec : session.configData().testsOrTags)
    if (spec.find("[shared]") != std::string::npos && spec.find("~[shared]") == std::string::npos &&
        !tracecast::test::shared_scans()) {
      std::printf("SKIPPED: ../shared/scans (third-party scans beside the project) is not present\n");
      return 77;
    }
  return session.run();
}
