// Seconds per step of a long job, for the reports' `timings_s`.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace tracecast {

class StepTimer {
 public:
  explicit StepTimer(std::vector<std::pair<std::string, double>>& out) : out_(out) {}
  //! Records the time since the previous lap (or construction) under `step`.
  void lap(const char* step) {
    const auto now = std::chrono::steady_clock::now();
    out_.emplace_back(step, std::chrono::duration<double>(now - t0_).count());
    t0_ = now;
  }

 private:
  std::vector<std::pair<std::string, double>>& out_;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

}  // namespace tracecast
