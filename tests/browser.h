// Headless Chromium for the tests of pages (report.html, the studio): Debian's chromium with
// software WebGL, no GPU, no browser download.
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <vector>

namespace tracecast::test {

//! Whether the page ran its script to the end (body data-rendered="yes"), the console's errors,
//! and a screenshot. `ran` false if chromium could not run.
struct BrowserRun {
  bool ran = false, rendered = false;
  std::vector<std::string> console_errors;
};
BrowserRun open_in_chromium(const std::string& url, const std::filesystem::path& screenshot);

//! Share of the pixels in a rectangle that differ from `background` by more than 30 in a channel.
double share_not(const std::filesystem::path& png, int x0, int y0, int x1, int y1, std::array<int, 3> background);

}  // namespace tracecast::test
