#pragma once
// Housekeeping of a service's deduplication records: idempotency keys
// (service::idempotent) and inbox records (messaging::Inbox). Both grow by a row per keyed
// command or consumed message; kept for ever, the tables grow without bound (the shop's
// saga alone adds two keys per order). They are kept for a retention window
// (--dedupe-retention-hours, 7 days by default) and then deleted:
//
//   auto keeper = service::Housekeeper::start(db, executor, {.retention =
//   std::chrono::hours(168)});
//   ...
//   co_await keeper->stop();
//
// - Every `every` (an hour by default; the first pass soon after start) rows older than the
//   retention are deleted, at most `batch` per transaction, so that the service's writes
//   never wait long behind a purge.
// - A retry of a command whose key was purged runs again, and a message redelivered after
//   its inbox record was purged is applied again. The window must therefore outlast any
//   retry: bus redeliveries come within minutes, and a saga's steps are retried with their
//   keys while it runs (the shop's callees are idempotent by the order id as well: a step
//   repeated after the window still has its effect once).
// - A retention of zero keeps everything (no purge).
//
// Thread-safety: start() and stop() from any thread; stop() once.

#include <chrono>
#include <cstdint>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <mercado/core/error.hpp>
#include <mercado/storage/database.hpp>

namespace mercado::service {

inline constexpr std::int64_t kPurgeBatch = 5000;  // rows per delete transaction, by default

struct HousekeepingOptions {
  std::chrono::milliseconds retention = std::chrono::hours(24 * 7);  // zero: keep everything
  std::chrono::milliseconds every = std::chrono::hours(1);
  std::chrono::milliseconds first_after = std::chrono::seconds(10);
  std::int64_t batch = kPurgeBatch;  // rows per delete transaction (> 0)
};

// Deletes idempotency keys created before `cutoff_ms` (Unix milliseconds), `batch` rows per
// transaction until none is left. Returns how many were deleted.
boost::asio::awaitable<Result<std::int64_t>> purge_idempotency_keys(
    storage::Database& db, std::int64_t cutoff_ms, std::int64_t batch = kPurgeBatch);
// The same for inbox records (every consumer's) processed before `cutoff_ms`.
boost::asio::awaitable<Result<std::int64_t>> purge_inbox(storage::Database& db,
                                                         std::int64_t cutoff_ms,
                                                         std::int64_t batch = kPurgeBatch);

class Housekeeper {
 public:
  static std::shared_ptr<Housekeeper> start(std::shared_ptr<storage::Database> db,
                                            boost::asio::any_io_executor executor,
                                            HousekeepingOptions options = {});
  // Ends the loop (a purge under way finishes its current batch first) and waits for it.
  boost::asio::awaitable<void> stop();
  // Passes completed so far, and rows deleted by them (for tests and logs).
  std::uint64_t passes() const noexcept;
  std::uint64_t deleted() const noexcept;

  struct State;
  explicit Housekeeper(std::shared_ptr<State> state) : state_(std::move(state)) {}

 private:
  std::shared_ptr<State> state_;
};

}  // namespace mercado::service
