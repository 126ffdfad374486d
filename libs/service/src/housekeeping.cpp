#include <atomic>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <mercado/core/clock.hpp>
#include <mercado/core/notifier.hpp>
#include <mercado/observability/log.hpp>
#include <mercado/service/housekeeping.hpp>

namespace mercado::service {

namespace asio = boost::asio;

namespace {

constexpr const char* kPurgeKeys =
    "DELETE FROM idempotency_keys WHERE key IN "
    "(SELECT key FROM idempotency_keys WHERE created_at < $1 ORDER BY created_at LIMIT $2)";
constexpr const char* kPurgeInbox =
    "DELETE FROM mercado_inbox WHERE (consumer, message_id) IN "
    "(SELECT consumer, message_id FROM mercado_inbox WHERE processed_at < $1 ORDER BY processed_at "
    "LIMIT $2)";

// Runs `sql` (a DELETE of at most $2 rows older than $1) until it deletes fewer than `batch`
// or `stop` is set.
asio::awaitable<Result<std::int64_t>> purge_in_batches(storage::Database& db, const char* sql,
                                                       std::int64_t cutoff_ms, std::int64_t batch,
                                                       const std::atomic<bool>* stop = nullptr) {
  if (batch <= 0) co_return fail(Errc::invalid_argument, "the purge batch must be positive");
  std::int64_t total = 0;
  while (stop == nullptr || !stop->load()) {
    auto n =
        co_await db.transaction([&](storage::Tx& tx) { return tx.exec(sql, cutoff_ms, batch); });
    if (!n) co_return fail(std::move(n.error()));
    total += *n;
    if (*n < batch) break;
  }
  co_return total;
}

}  // namespace

asio::awaitable<Result<std::int64_t>> purge_idempotency_keys(storage::Database& db,
                                                             std::int64_t cutoff_ms,
                                                             std::int64_t batch) {
  co_return co_await purge_in_batches(db, kPurgeKeys, cutoff_ms, batch);
}

asio::awaitable<Result<std::int64_t>> purge_inbox(storage::Database& db, std::int64_t cutoff_ms,
                                                  std::int64_t batch) {
  co_return co_await purge_in_batches(db, kPurgeInbox, cutoff_ms, batch);
}

struct Housekeeper::State {
  std::shared_ptr<storage::Database> db;
  HousekeepingOptions options;
  asio::steady_timer timer;  // used on its executor only
  std::atomic<bool> stopping{false};
  std::atomic<bool> finished{false};  // the loop has ended (or never started)
  core::Notifier finished_notifier;
  std::atomic<std::uint64_t> passes{0};
  std::atomic<std::uint64_t> deleted{0};

  State(std::shared_ptr<storage::Database> d, asio::any_io_executor ex, HousekeepingOptions o)
      : db(std::move(d)), options(o), timer(std::move(ex)) {}

  asio::awaitable<void> pass() {
    const std::int64_t cutoff =
        core::unix_millis() -
        std::chrono::duration_cast<std::chrono::milliseconds>(options.retention).count();
    auto keys = co_await purge_in_batches(*db, kPurgeKeys, cutoff, options.batch, &stopping);
    if (!keys)
      log::warn("housekeeping: purging idempotency keys failed",
                {{"error", keys.error().internal}});
    auto inbox = co_await purge_in_batches(*db, kPurgeInbox, cutoff, options.batch, &stopping);
    if (!inbox)
      log::warn("housekeeping: purging inbox records failed", {{"error", inbox.error().internal}});
    const std::int64_t n = keys.value_or(0) + inbox.value_or(0);
    if (n > 0) {
      log::info("housekeeping: purged deduplication records",
                {{"idempotency_keys", keys.value_or(0)}, {"inbox", inbox.value_or(0)}});
    }
    deleted.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    passes.fetch_add(1, std::memory_order_relaxed);
  }

  asio::awaitable<void> loop() {
    auto wait = options.first_after;
    while (!stopping.load()) {
      timer.expires_after(wait);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (stopping.load()) break;
      co_await pass();
      wait = options.every;
    }
  }
};

std::shared_ptr<Housekeeper> Housekeeper::start(std::shared_ptr<storage::Database> db,
                                                asio::any_io_executor executor,
                                                HousekeepingOptions options) {
  auto state = std::make_shared<State>(std::move(db), executor, options);
  if (options.retention > std::chrono::milliseconds::zero() && options.batch > 0) {
    // The completion handler marks the end however the loop ended (an exception too), so
    // that stop() never waits for a loop that is gone.
    asio::co_spawn(
        executor, [state]() -> asio::awaitable<void> { co_await state->loop(); },
        [state](std::exception_ptr e) {
          if (e) log::error("housekeeping: the loop ended with an exception");
          state->finished = true;
          state->finished_notifier.notify_all();
        });
  } else {
    state->finished = true;  // nothing to purge: no loop
  }
  return std::make_shared<Housekeeper>(state);
}

asio::awaitable<void> Housekeeper::stop() {
  auto state = state_;
  state->stopping = true;
  // The timer belongs to the loop's executor: cancel it there (a loop between passes wakes
  // and sees `stopping`; one in a pass stops after its current batch).
  asio::post(state->timer.get_executor(), [state] { state->timer.cancel(); });
  while (true) {
    const auto seen = state->finished_notifier.generation();
    if (state->finished) break;
    co_await state->finished_notifier.wait(seen, std::chrono::hours(1));
  }
}

std::uint64_t Housekeeper::passes() const noexcept {
  return state_->passes.load(std::memory_order_relaxed);
}
std::uint64_t Housekeeper::deleted() const noexcept {
  return state_->deleted.load(std::memory_order_relaxed);
}

}  // namespace mercado::service
