// Exceptions thrown by the tracecast libraries.
//
// The CLI maps them to its documented exit codes: InputError -> 3 (the input file or its
// content is unusable), ProcessingError -> 4 (valid input, but a step could not finish, or an
// output could not be written). Messages are one line and name the file they are about.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>

namespace tracecast {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

//! The input (a file, or a value read from one) is missing, malformed or out of range.
class InputError : public Error {
 public:
  InputError(const std::filesystem::path& file, const std::string& problem)
      : Error(file.string() + ": " + problem), file_(file), problem_(problem) {}
  explicit InputError(const std::string& problem) : Error(problem), problem_(problem) {}
  const std::filesystem::path& file() const noexcept { return file_; }
  const std::string& problem() const noexcept { return problem_; }

 private:
  std::filesystem::path file_;
  std::string problem_;
};

//! A step failed on input that was valid, or an output could not be written.
class ProcessingError : public Error {
 public:
  using Error::Error;
};

}  // namespace tracecast
