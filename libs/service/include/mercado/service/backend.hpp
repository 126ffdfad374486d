#pragma once
// The data side every shop service shares, wired in one call from main():
//   - its own database: DATABASE_URL, default sqlite://<DATA_DIR>/<service>.db
//   - migrations: the outbox's, the inbox's, then the service's own
//   - the event bus: BROKER_URL, default sqlite://<DATA_DIR>/bus.db
//   - an outbox relay publishing what the service's transactions stored, and deleting what it
//     published --outbox-retention-hours after it was written
//   - readiness checks "database" and "bus"; shutdown hooks closing all of it in order
//   - housekeeping: idempotency keys and inbox records older than --dedupe-retention-hours
//     are deleted (service::Housekeeper)
//
//   auto backend = service::Backend::open(app, {.migrations = kShippingMigrations});
//   if (!backend) { log::error(...); return 1; }
//   co_await (*backend)->db().transaction([&](storage::Tx& tx) -> Result<void> {
//     ... change state ...
//     return (*backend)->outbox().add(tx, "ShipmentCreated", data).transform([](auto&&) {});
//   });
//
// Thread-safety: the accessors are safe from any thread once open() returned.

#include <memory>
#include <span>
#include <string>
#include <vector>

#include <mercado/core/blocking_pool.hpp>
#include <mercado/core/error.hpp>
#include <mercado/messaging/event_bus.hpp>
#include <mercado/messaging/inbox.hpp>
#include <mercado/messaging/outbox.hpp>
#include <mercado/service/app.hpp>
#include <mercado/service/housekeeping.hpp>
#include <mercado/storage/database.hpp>
#include <mercado/storage/migrations.hpp>

namespace mercado::service {

struct BackendOptions {
  std::span<const storage::Migration> migrations;  // the service's own, scope = service name
  // Blocking pool threads (database, bus). --blocking-threads wins; 0 = by database: one
  // for SQLite (its writes are serial anyway, a transaction takes microseconds, and on the
  // 2-core benchmark host more threads only added hand-offs and contention: alternating
  // runs gave 878–997 confirmed orders/s with one, 740–805 with four, bench/RESULTS.md),
  // four for PostgreSQL (each call waits for the server).
  std::size_t workers = 0;
  std::size_t max_connections = 8;                 // database connections
  // SQLite page cache per connection (KiB). Services write from many connections at once,
  // and WAL drops a connection's cache whenever another one commits, so SQLite's default
  // 2000 KiB per connection bought memory (up to 16 MiB) and no speed.
  std::size_t sqlite_cache_kib = 512;
  // The page cache of the connection writes run on (and reads, when no write holds or
  // waits for it): only it commits, so its cache stays valid. With 1024 KiB the shop's
  // benchmark read 11 pages per order from the file system, against 17 when writes took
  // any pooled connection (bench/RESULTS.md).
  std::size_t sqlite_writer_cache_kib = 1024;
  // Concurrent write transactions share one commit (storage::DatabaseOptions): durable
  // commits cost one fsync per group instead of one per request.
  bool group_commit = true;
  // SQLite reads on the io thread (storage::DatabaseOptions::inline_reads): with one
  // blocking thread, a read would otherwise wait behind a write group's fsync.
  bool inline_reads = true;
};

class Backend {
 public:
  // Blocking (opens files, connects, migrates): call from main() after app.init(). A
  // failure is logged ("cannot open the backend", with the internal detail) and returned.
  static Result<std::unique_ptr<Backend>> open(App& app, BackendOptions options);
  ~Backend();

  storage::Database& db() noexcept { return *db_; }
  const std::shared_ptr<storage::Database>& shared_db() const noexcept { return db_; }
  messaging::EventBus& bus() noexcept { return *bus_; }
  const std::shared_ptr<messaging::EventBus>& shared_bus() const noexcept { return bus_; }
  const messaging::Outbox& outbox() const noexcept { return *outbox_; }
  core::BlockingPool& pool() noexcept { return *pool_; }

  // Subscribes once the io threads run (retrying while the broker is unreachable); the
  // subscription is stopped at shutdown, before the bus closes.
  void subscribe(messaging::SubscribeOptions options);

 private:
  Backend() = default;
  static Result<std::unique_ptr<Backend>> open_unlogged(App& app, BackendOptions options);
  App* app_ = nullptr;
  std::unique_ptr<core::BlockingPool> pool_;
  std::shared_ptr<storage::Database> db_;
  std::shared_ptr<messaging::EventBus> bus_;
  std::unique_ptr<messaging::Outbox> outbox_;
  std::shared_ptr<messaging::OutboxRelay> relay_;
  std::shared_ptr<Housekeeper> housekeeper_;
  std::vector<std::shared_ptr<messaging::Subscription>> subscriptions_;
  std::mutex mutex_;
};

}  // namespace mercado::service
