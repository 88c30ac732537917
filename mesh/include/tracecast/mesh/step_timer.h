// Seconds per step of a long job, for the reports' `timings_s`.
#pragma once

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace tracecast {

//! Seconds per step, in the order the steps ran; a step run more than once is listed each time
//! (reports sum them: timings_json() in report_json.h).
using Timings = std::vector<std::pair<std::string, double>>;

//! The sum of every step's seconds.
inline double total_seconds(const Timings& t) {
  double s = 0;
  for (const auto& step : t) s += step.second;
  return s;
}

class StepTimer {
 public:
  explicit StepTimer(Timings& out) : out_(out) {}
  //! Records the time since the previous lap (or construction) under `step`.
  void lap(const std::string& step) {
    const auto now = std::chrono::steady_clock::now();
    out_.emplace_back(step, std::chrono::duration<double>(now - t0_).count());
    t0_ = now;
  }

 private:
  Timings& out_;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

}  // namespace tracecast
