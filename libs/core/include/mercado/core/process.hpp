#pragma once
// Child processes for launchers and end-to-end tests: spawn with extra environment and
// output redirected to a file, signal, wait with a timeout, and always reap.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <mercado/core/error.hpp>

namespace mercado::core {

struct ProcessOptions {
  std::string path;                                         // executable
  std::vector<std::string> args;                            // argv[1..]
  std::vector<std::pair<std::string, std::string>> env;     // added to (or replacing in) the parent's
  std::string output_path;                                  // stdout+stderr appended here; empty: inherit
};

// Owns one child. Not thread-safe. The destructor kills (SIGKILL) and reaps a child that is
// still running.
class Process {
 public:
  static Result<Process> spawn(const ProcessOptions& options);

  Process() = default;
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  pid_t pid() const noexcept { return pid_; }
  bool running();
  void signal(int signo);
  // Waits up to `timeout` for the child to exit. Returns its exit code, or 128 + signal
  // when a signal ended it; nullopt if it is still running.
  std::optional<int> wait_for(std::chrono::milliseconds timeout);
  // SIGTERM, up to `grace` for it to exit, then SIGKILL. Returns the exit status.
  int terminate(std::chrono::milliseconds grace);

 private:
  explicit Process(pid_t pid) : pid_(pid) {}
  bool reap(int flags);
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Blocks until `path` exists (inotify; no polling) or the timeout passes. True if it exists.
bool wait_for_file(const std::string& path, std::chrono::milliseconds timeout);

}  // namespace mercado::core
