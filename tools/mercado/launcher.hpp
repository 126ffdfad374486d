#pragma once
// `mercado up`: runs the five shop services as child processes on loopback with embedded
// defaults (one SQLite file per service and the SQLite bus under a data directory, a JWT
// secret generated once), waits for every /ready, prints the URLs, restarts a child that
// dies (with backoff), and on Ctrl-C / SIGTERM stops them gracefully (SIGTERM, then
// SIGKILL after the grace period).

#include <chrono>
#include <string>
#include <vector>

namespace mercado::cli {

struct ServiceSpec {
  std::string name;    // also the executable's name
  int port = 0;
  std::vector<std::pair<std::string, std::string>> env;
};

struct LaunchOptions {
  std::string data_dir = "mercado-data";
  std::string bin_dir;           // where the service executables are (default: next to mercado)
  std::string host = "127.0.0.1";
  int base_port = 8001;          // user 8001, inventory 8002, payment 8003, shipping 8004, order 8005
  std::string log_level = "info";
  // Per service; 0 = the services' own default (one per core). The five services share the
  // machine, so one each: fewer cross-thread wake-ups (bench/RESULTS.md, shop section).
  unsigned io_threads = 1;
  bool access_log = true;
  // SQLite durability of the services' databases and the bus: "full" (default: every commit
  // survives power loss) or "normal" (WAL: commits survive process crashes, the last ones
  // may be lost on power loss or an OS crash).
  std::string sqlite_synchronous = "full";
  std::chrono::seconds grace{10};
};

// The shop's services with their ports and environment.
std::vector<ServiceSpec> shop_services(const LaunchOptions& o);
std::string url_of(const LaunchOptions& o, std::string_view service);
// Creates the data directory and the JWT secret file (0600) if missing; returns its path.
std::string ensure_secret(const std::string& data_dir);

// Runs until a signal; returns the exit code.
int run_up(const LaunchOptions& options);

}  // namespace mercado::cli
