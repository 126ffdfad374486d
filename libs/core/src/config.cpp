#include <mercado/core/config.hpp>

#include <unistd.h>

#include <thread>

namespace mercado::core {

Config::Config(std::string service_name, std::string description)
    : app_(std::make_unique<CLI::App>(std::move(description), service_name)) {
  options_.service_name = std::move(service_name);
  auto& a = *app_;
  a.option_defaults()->always_capture_default();
  a.add_option("--host", options_.host, "Address to listen on")->envname("HOST");
  a.add_option("--port", options_.port, "Port to listen on (0 = any free port)")->envname("PORT");
  a.add_option("--instance-id", options_.instance_id, "Instance id (default: <service>-<pid>)")
      ->envname("INSTANCE_ID");
  a.add_option("--database-url", options_.database_url,
               "sqlite:///path/file.db or postgres://user:pass@host:5432/db")
      ->envname("DATABASE_URL");
  a.add_option("--broker-url", options_.broker_url,
               "sqlite:///path/bus.db or amqp://user:pass@host:5672/vhost")
      ->envname("BROKER_URL");
  a.add_option("--registry-url", options_.registry_url, "Service registry (Consul API) base URL")
      ->envname("REGISTRY_URL");
  a.add_option("--io-threads", options_.io_threads, "I/O threads (0 = one per core)")
      ->envname("IO_THREADS");
  a.add_option("--io-yield-every", options_.io_yield_every,
               "An io thread offers its CPU to other runnable threads after this many handlers without "
               "blocking (0 = never)")
      ->envname("IO_YIELD_EVERY");
  a.add_option("--blocking-threads", options_.blocking_threads,
               "Threads for blocking work: database calls, the SQLite bus (0 = 1 on SQLite, 4 on PostgreSQL)")
      ->envname("BLOCKING_THREADS");
  a.add_option("--log-level", options_.log_level, "trace|debug|info|warn|error|off")
      ->envname("LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  a.add_option("--access-log", options_.access_log, "Log one line per request")
      ->envname("ACCESS_LOG");
  a.add_option("--shutdown-grace", options_.shutdown_grace_seconds,
               "Seconds in-flight requests get to finish on SIGTERM")
      ->envname("SHUTDOWN_GRACE_SECONDS")
      ->check(CLI::NonNegativeNumber);
  a.add_option("--otlp-endpoint", options_.otlp_endpoint,
               "OTLP/HTTP base URL for spans, e.g. http://127.0.0.1:4318 (empty = off)")
      ->envname("OTEL_EXPORTER_OTLP_ENDPOINT");
  a.add_option("--data-dir", options_.data_dir,
               "Directory for the default SQLite database and bus files")
      ->envname("DATA_DIR");
  a.add_option("--dedupe-retention-hours", options_.dedupe_retention_hours,
               "Hours idempotency keys and inbox records are kept; a retry or redelivery after that is not "
               "recognised (0 = keep them for ever)")
      ->envname("DEDUPE_RETENTION_HOURS")
      ->check(CLI::Range(0.0, 876000.0));  // up to a hundred years
  a.add_option("--outbox-retention-hours", options_.outbox_retention_hours,
               "Hours published events are kept in the outbox table, for inspection and replay, before the "
               "relay deletes them (0 = keep them for ever)")
      ->envname("OUTBOX_RETENTION_HOURS")
      ->check(CLI::Range(0.0, 876000.0));
  a.add_option("--ready-file", options_.ready_file,
               "File written with the base URL once the service serves (for launchers)")
      ->envname("READY_FILE");
}

std::optional<int> Config::parse(int argc, const char* const* argv) {
  try {
    app_->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_->exit(e);
  }
  if (options_.instance_id.empty()) {
    options_.instance_id = options_.service_name + "-" + std::to_string(::getpid());
  }
  if (options_.io_threads == 0) {
    options_.io_threads = std::max(1U, std::thread::hardware_concurrency());
  }
  return std::nullopt;
}

}  // namespace mercado::core
