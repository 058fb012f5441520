#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace millrace::testing {

// The outcome of a finished child process.
struct ProcessResult {
  int exit_code = -1;  // the exit status, or 128 + signal number
  std::string out;
  std::string err;
};

// Runs argv (argv[0] looked up on PATH) to completion, feeding `input` to its stdin.
ProcessResult RunProcess(const std::vector<std::string>& argv, std::string_view input = {});

// A child running in the background (an operator under test), its stdout and stderr appended to
// `log_path`, with this process' environment plus `env` ("NAME=value" entries, which win). The
// destructor SIGKILLs and reaps it if it still runs.
class Subprocess {
 public:
  Subprocess(const std::vector<std::string>& argv, std::string log_path,
             const std::vector<std::string>& env = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  std::string Log() const;  // what it has written so far
  void Signal(int signal) const;
  // Waits up to `timeout` for it to exit; its exit status (128 + signal when killed) or nullopt.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool Running();

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

// Fails the current test when `process`' log holds a sanitizer's report (scripts/test runs the
// operator under AddressSanitizer and UBSan).
void ExpectNoSanitizerReport(const Subprocess& process);

}  // namespace millrace::testing
