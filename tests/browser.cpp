#include "browser.h"

#include <catch2/catch.hpp>
#include <open3d/geometry/Image.h>
#include <open3d/io/ImageIO.h>

#include <cstdlib>
#include <sstream>

#include "fixtures.h"

namespace tracecast::test {

BrowserRun open_in_chromium(const std::string& url, const std::filesystem::path& screenshot) {
  BrowserRun b;
  const auto dir = temp_dir("chromium");
  // Software WebGL (SwiftShader): no GPU needed. Root needs --no-sandbox.
  const std::string common = "chromium --headless --no-sandbox --disable-gpu --enable-unsafe-swiftshader --use-angle=swiftshader "
                             "--window-size=1400,1000 --virtual-time-budget=20000 --enable-logging=stderr --v=0 ";
  const int dom = std::system((common + "--dump-dom '" + url + "' >" + (dir / "dom.html").string() + " 2>" + (dir / "dom.log").string()).c_str());
  const int shot = std::system((common + "--screenshot=" + screenshot.string() + " '" + url + "' >/dev/null 2>" + (dir / "shot.log").string()).c_str());
  b.ran = dom == 0 && shot == 0 && std::filesystem::exists(screenshot);
  b.rendered = read_bytes(dir / "dom.html").find("data-rendered=\"yes\"") != std::string::npos;
  for (const char* log : {"dom.log", "shot.log"}) {
    std::istringstream in(read_bytes(dir / log));
    for (std::string line; std::getline(in, line);)
      if (line.find("CONSOLE") != std::string::npos && (line.find(":ERROR:CONSOLE") != std::string::npos || line.find("Uncaught") != std::string::npos))
        b.console_errors.push_back(line);
  }
  return b;
}

double share_not(const std::filesystem::path& png, int x0, int y0, int x1, int y1, std::array<int, 3> background) {
  open3d::geometry::Image img;
  REQUIRE(open3d::io::ReadImage(png.string(), img));
  REQUIRE(img.width_ >= x1);
  REQUIRE(img.height_ >= y1);
  std::size_t other = 0, all = 0;
  for (int y = y0; y < y1; ++y)
    for (int x = x0; x < x1; ++x) {
      const std::uint8_t* p = img.PointerAt<std::uint8_t>(x, y, 0);
      bool differs = false;
      for (int c = 0; c < 3; ++c) differs = differs || std::abs(static_cast<int>(p[c]) - background[static_cast<std::size_t>(c)]) > 30;
      other += differs;
      ++all;
    }
  return static_cast<double>(other) / static_cast<double>(all);
}

}  // namespace tracecast::test
