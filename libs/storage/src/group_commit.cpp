// Group commit (DatabaseOptions::group_commit): concurrent write transactions share one
// BEGIN ... COMMIT, each function in its own savepoint -- or, when every function of the
// group allows a rerun, none in a savepoint, and the group runs again with savepoints if one
// of them fails. Callers queue a member; one pool worker at a time drains the queue, group
// by group.

#include <algorithm>
#include <mutex>
#include <optional>
#include <vector>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <mercado/storage/database.hpp>

namespace mercado::storage {

namespace asio = boost::asio;

struct Database::Group {
  struct Member {
    std::function<bool(Tx&, bool)> run;       // see run_grouped
    std::function<void(Result<void>)> done;  // thread-safe: resumes the caller on its executor
    std::chrono::steady_clock::time_point queued;
    bool rerunnable = false;
  };
  std::mutex mutex;
  std::vector<Member> queue;
  bool draining = false;
};

Database::Database(core::BlockingPool& pool, std::size_t group_max, bool inline_reads, bool inline_unsynced_writes)
    : pool_(pool),
      group_max_(group_max),
      inline_reads_(inline_reads),
      inline_unsynced_writes_(inline_unsynced_writes),
      group_(group_max > 0 ? std::make_shared<Group>() : nullptr) {}

Database::~Database() = default;

void Database::account_queued(TxMode mode, Clock::duration waited) noexcept {
  const auto ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(waited).count());
  (writes(mode) ? stats_.write_queued_ns : stats_.read_queued_ns).fetch_add(ns, std::memory_order_relaxed);
}

void Database::account_run(TxMode mode, Clock::duration ran, bool committed) noexcept {
  const auto ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(ran).count());
  if (writes(mode)) {
    stats_.write_transactions.fetch_add(1, std::memory_order_relaxed);
    if (committed) stats_.write_commits.fetch_add(1, std::memory_order_relaxed);
    stats_.write_busy_ns.fetch_add(ns, std::memory_order_relaxed);
  } else {
    stats_.read_transactions.fetch_add(1, std::memory_order_relaxed);
    stats_.read_busy_ns.fetch_add(ns, std::memory_order_relaxed);
  }
}

asio::awaitable<Result<void>> Database::run_grouped(std::function<bool(Tx&, bool)> member, bool rerunnable) {
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(Result<void>)>(
      [this, rerunnable](auto handler, std::function<bool(Tx&, bool)> fn) {
        using Handler = decltype(handler);
        struct Waiter {
          std::optional<Handler> handler;
          std::optional<asio::executor_work_guard<asio::associated_executor_t<Handler>>> work;
        };
        auto waiter = std::make_shared<Waiter>();
        waiter->work.emplace(asio::get_associated_executor(handler));
        waiter->handler.emplace(std::move(handler));
        Group::Member m{std::move(fn), [waiter](Result<void> r) {
                          // The work guard stays here until post() has returned: released by
                          // the handler instead, the io_context could finish run() and be
                          // destroyed while this thread is still inside post() signalling it.
                          auto work = std::move(*waiter->work);
                          waiter->work.reset();
                          asio::post(work.get_executor(), [waiter, r = std::move(r)]() mutable {
                            auto h = std::move(*waiter->handler);
                            waiter->handler.reset();
                            std::move(h)(std::move(r));
                          });
                          work.reset();
                        },
                        Clock::now(), rerunnable};
        bool start = false;
        {
          std::lock_guard lock(group_->mutex);
          group_->queue.push_back(std::move(m));
          start = !group_->draining;
          group_->draining = true;
        }
        if (start) pool_.post([this] { drain_group(); });
      },
      asio::use_awaitable, std::move(member));
}

void Database::drain_group() {
  while (true) {
    std::vector<Group::Member> batch;
    {
      std::lock_guard lock(group_->mutex);
      std::size_t n = std::min(group_->queue.size(), group_max_);
      batch.assign(std::make_move_iterator(group_->queue.begin()), std::make_move_iterator(group_->queue.begin() + n));
      group_->queue.erase(group_->queue.begin(), group_->queue.begin() + static_cast<std::ptrdiff_t>(n));
    }
    const auto started = Clock::now();
    // Without savepoints when every member allows a rerun. If one fails, the transaction
    // rolls back and the group runs again in a fresh transaction, each member in its own
    // savepoint: a member that fails then undoes only itself, and the others keep their
    // outcomes. A group of one needs no second run: the rollback undid just that member, as
    // its savepoint would have (it keeps its error, or the failed statement's).
    bool plain = std::all_of(batch.begin(), batch.end(), [](const Group::Member& m) { return m.rerunnable; });
    Result<void> committed;
    for (;;) {
      bool failed = false;
      committed = run(TxMode::write, [&batch, &failed, plain](Tx& tx) -> Result<void> {
        for (auto& m : batch) {
          if (!m.run(tx, !plain)) {
            failed = true;
            if (tx.failure()) return std::unexpected(*tx.failure());
            return fail(Errc::internal, "a group member failed; the group runs again with savepoints");
          }
        }
        return {};
      });
      if (!failed || batch.size() == 1) break;
      plain = false;
      stats_.group_reruns.fetch_add(1, std::memory_order_relaxed);
    }
    const auto ended = Clock::now();
    std::uint64_t queued_ns = 0;
    for (const auto& m : batch) {
      queued_ns += static_cast<std::uint64_t>(std::chrono::nanoseconds(started - m.queued).count());
    }
    stats_.write_transactions.fetch_add(batch.size(), std::memory_order_relaxed);
    if (committed) stats_.write_commits.fetch_add(1, std::memory_order_relaxed);
    stats_.write_queued_ns.fetch_add(queued_ns, std::memory_order_relaxed);
    stats_.write_busy_ns.fetch_add(static_cast<std::uint64_t>(std::chrono::nanoseconds(ended - started).count()),
                                   std::memory_order_relaxed);
    bool more = false;
    {
      std::lock_guard lock(group_->mutex);
      more = !group_->queue.empty();
      if (!more) group_->draining = false;
    }
    // Completing the last members may let their callers destroy this Database: nothing
    // below may touch `this` unless members are still queued (their callers keep it alive).
    for (auto& m : batch) m.done(committed);
    if (!more) return;
  }
}

}  // namespace mercado::storage
