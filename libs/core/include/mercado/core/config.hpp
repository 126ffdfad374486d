#pragma once
// 12-factor configuration: every option has an environment variable (the chapter's PORT,
// HOST, INSTANCE_ID, DATABASE_URL, ...) and a command-line flag; the flag wins over the
// environment, the environment over the default. `--help` lists both names.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

namespace mercado::core {

// The options every Mercado executable shares.
struct ServiceOptions {
  std::string service_name;                 // fixed by the executable
  std::string host = "127.0.0.1";           // --host / HOST
  std::uint16_t port = 8000;                // --port / PORT (0 = ephemeral)
  std::string instance_id;                  // --instance-id / INSTANCE_ID (default name-pid)
  std::string database_url;                 // --database-url / DATABASE_URL
  std::string broker_url;                   // --broker-url / BROKER_URL
  std::string registry_url;                 // --registry-url / REGISTRY_URL
  unsigned io_threads = 0;                  // --io-threads / IO_THREADS (0 = one per core)
  unsigned io_yield_every = 0;              // --io-yield-every / IO_YIELD_EVERY (0 = never)
  unsigned blocking_threads = 0;            // --blocking-threads / BLOCKING_THREADS (0 = by database)
  std::string log_level = "info";           // --log-level / LOG_LEVEL
  bool access_log = true;                   // --access-log / ACCESS_LOG
  double shutdown_grace_seconds = 10.0;     // --shutdown-grace / SHUTDOWN_GRACE_SECONDS
  std::string otlp_endpoint;                // --otlp-endpoint / OTEL_EXPORTER_OTLP_ENDPOINT
  std::string ready_file;                   // --ready-file / READY_FILE: written with the URL once serving
  std::string data_dir = ".";               // --data-dir / DATA_DIR: default home of SQLite files
  double dedupe_retention_hours = 168;      // --dedupe-retention-hours / DEDUPE_RETENTION_HOURS (0 = forever)
  double outbox_retention_hours = 168;      // --outbox-retention-hours / OUTBOX_RETENTION_HOURS (0 = forever)

  std::chrono::milliseconds shutdown_grace() const {
    return std::chrono::milliseconds(static_cast<std::int64_t>(shutdown_grace_seconds * 1000));
  }
  std::chrono::milliseconds dedupe_retention() const { return hours(dedupe_retention_hours); }
  std::chrono::milliseconds outbox_retention() const { return hours(outbox_retention_hours); }

 private:
  static std::chrono::milliseconds hours(double h) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(h * 3'600'000.0));
  }
};

// Parses the shared options plus whatever the executable adds through cli().
// Not thread-safe; used once in main().
class Config {
 public:
  Config(std::string service_name, std::string description);

  // Add executable-specific options: cli().add_option("--greeting", g, "...")->envname("GREETING").
  CLI::App& cli() { return *app_; }
  ServiceOptions& service() { return options_; }
  const ServiceOptions& service() const { return options_; }

  // Reads the environment and argv. Returns std::nullopt to go on, or the exit code the
  // process should return now (0 after --help, 2 after a bad flag; the message is printed).
  std::optional<int> parse(int argc, const char* const* argv);

 private:
  std::unique_ptr<CLI::App> app_;
  ServiceOptions options_;
};

}  // namespace mercado::core
