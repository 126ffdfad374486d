#pragma once
// One database of one service, chosen by DATABASE_URL:
//   sqlite:///var/lib/mercado/orders.db[?synchronous=full|normal]   (embedded default)
//   sqlite://relative/orders.db
//   postgres://user:pass@host:5432/orders[?sslmode=...]              (postgresql:// too)
//
// The unit of work is a transaction function. It runs on a worker of the BlockingPool,
// with one connection, inside BEGIN ... COMMIT, and never on an io thread (except SQLite
// read transactions with DatabaseOptions::inline_reads, which run on the caller's thread):
//
//   Result<OrderId> id = co_await db.transaction([&](storage::Tx& tx) -> Result<OrderId> {
//     auto r = tx.query("INSERT INTO orders(customer) VALUES ($1) RETURNING id", customer);
//     if (!r) return std::unexpected(r.error());
//     outbox.add(tx, "OrderCreated", {...});              // same transaction
//     return OrderId{r->front().get<std::int64_t>(0)};
//   });
//
// The function's Result decides the outcome: a value commits, an error rolls back and is
// returned unchanged. If COMMIT itself fails, its error is returned and nothing is applied.
// An exception thrown by the function rolls back and propagates to the awaiting coroutine.
// The function must not co_await (it is a plain function) and must not start another
// transaction on the same Database (it would hold two connections; with a pool of one it
// would deadlock until acquire_timeout).
//
// SQLite: WAL journal, busy timeout, foreign keys on; write transactions take the write
// lock up front (BEGIN IMMEDIATE) and writers of one process queue on a mutex instead of
// spinning in the busy handler; readers run concurrently. synchronous=full (default) makes
// each commit durable across power loss; normal only across process crashes.
// PostgreSQL: a pool of up to max_connections connections, READ COMMITTED, statements
// prepared per connection; a broken connection is dropped and replaced on next use.
//
// Thread-safety: a Database may be used from any number of threads and coroutines.

#include <chrono>
#include <cstddef>
#include <functional>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <boost/asio/awaitable.hpp>

#include <mercado/core/blocking_pool.hpp>
#include <mercado/core/error.hpp>
#include <mercado/storage/tx.hpp>

namespace mercado::storage {

enum class TxMode : std::uint8_t {
  write,  // may write; SQLite takes the write lock at BEGIN
  read,   // read-only; SQLite runs concurrently with the writer, PostgreSQL BEGIN READ ONLY
  // A write whose commit survives a process crash but may be lost with the machine (power
  // loss): it returns without waiting for the disk. SQLite commits it with synchronous=NORMAL
  // (WAL mode: no sync at commit, checkpoints still synced, so the file is never corrupted;
  // the next synced commit, by anyone, makes it durable too), PostgreSQL with
  // synchronous_commit=off. Only for writes whose loss is repaired anyway -- a bus
  // consumer's claims and acks: a lost one means a redelivery, which consumers deduplicate.
  // Never grouped with other writes (a group commit is synced).
  write_unsynced,
};
inline constexpr bool writes(TxMode m) noexcept { return m != TxMode::read; }

// Whether a write function may be run more than once (group commit only; see
// DatabaseOptions::group_commit). `allowed` promises that running it again in a fresh
// transaction is harmless: it acts through the Tx, its return value and on_commit hooks
// only, and whatever it writes outside (a captured flag, an output) it writes on every run
// or resets when it starts, so that only the last run counts. Such functions share their
// group's transaction without a savepoint each.
enum class Rerun : std::uint8_t { never, allowed };

struct DatabaseOptions {
  // PostgreSQL: pool size. SQLite: connections kept open -- one that every write runs on
  // (its page cache stays valid from one write to the next) and up to max_connections - 1,
  // at least one, for reads, which run in parallel.
  std::size_t max_connections = 4;
  // How long a transaction waits for a free connection before Errc::unavailable.
  std::chrono::milliseconds acquire_timeout{10000};
  // SQLite: how long a writer waits for another process's write lock.
  std::chrono::milliseconds busy_timeout{10000};
  // PostgreSQL: TCP connect timeout.
  std::chrono::seconds connect_timeout{5};
  // SQLite: page cache per connection in KiB (PRAGMA cache_size = -N); 0 keeps SQLite's
  // default (2000 KiB). In WAL mode a connection drops its cache whenever another one has
  // committed, so with concurrent writers a large cache mostly costs memory.
  std::size_t cache_kib = 0;
  // SQLite: page cache of the connection writes run on, in KiB; 0: cache_kib. Only that
  // connection commits, so its cache stays valid from one write to the next, and a larger
  // one saves reading pages again.
  std::size_t writer_cache_kib = 0;
  // Group commit: write transactions that arrive while another is running are executed
  // together, each function in its own SAVEPOINT, under one BEGIN ... COMMIT (at most
  // group_commit_max at a time). One commit (one fsync) then serves many callers. A
  // function's error or exception undoes only its own savepoint; a failed COMMIT fails every
  // member. Functions of one group run one after another, so they see each other's writes
  // as in any serial order. Off by default.
  //
  // A group whose functions all allow a rerun (Rerun::allowed) runs them without
  // savepoints: a savepoint makes SQLite copy every page a function changes, again for each
  // function (8-10 % of a busy service's instructions). If one of them then fails (error,
  // exception or failed statement), the whole transaction rolls back and the group runs
  // again in a fresh transaction, each function in its own savepoint, so a failing function
  // undoes only itself there (db_group_reruns_total counts these; a group of one is not
  // run again: its rollback undid just it). A caller reads what its function captured only
  // when the transaction succeeded, or when it failed with the function's own error: a run
  // that was rolled back may have seen others' uncommitted writes.
  bool group_commit = false;
  std::size_t group_commit_max = 64;
  // SQLite: read transactions run on the calling thread (an io thread) instead of a pool
  // worker. A WAL reader never waits for writers, and a point read takes microseconds, less
  // than the two thread hand-offs -- and than waiting for a worker busy with a write group's
  // fsync. Only for databases whose reads are short (the services' are: by key, or LIMITed).
  // Ignored for PostgreSQL (every call waits for the server).
  bool inline_reads = false;
  // SQLite: unsynced write transactions (TxMode::write_unsynced) run on the calling thread
  // too. Such a commit writes its pages to the kernel and waits for no disk: like a point
  // read it takes microseconds, unless another connection holds the write lock (it then
  // waits for that writer, as any writer does) or the commit crosses the log's
  // checkpoint threshold (it then runs the checkpoint). For databases whose unsynced writes
  // are short and whose other writers are too (the SQLite bus's publishes, claims and acks).
  // Ignored for PostgreSQL.
  bool inline_unsynced_writes = false;
};

// Counters of one Database since it was opened, for metrics (service::Backend exports them
// as db_* on /metrics). Times are nanoseconds. "Queued" is from a transaction() call until
// its work starts on a pool worker (for a group-commit member: until its group starts);
// "busy" is from BEGIN to the end of COMMIT or ROLLBACK (for a write without group commit it
// includes waiting for the process's writer lock). Every transaction counts, whether it came
// through transaction() or transaction_blocking(); a group commit counts its members as
// write transactions and itself as one commit (when it committed).
struct DatabaseStats {
  std::atomic<std::uint64_t> read_transactions{0};
  std::atomic<std::uint64_t> write_transactions{0};
  std::atomic<std::uint64_t> write_commits{0};
  std::atomic<std::uint64_t> read_queued_ns{0};
  std::atomic<std::uint64_t> read_busy_ns{0};
  std::atomic<std::uint64_t> write_queued_ns{0};
  std::atomic<std::uint64_t> write_busy_ns{0};
  // Pages the commits wrote to the log (SQLite: WAL frames; PostgreSQL: not counted).
  std::atomic<std::uint64_t> pages_written{0};
  // Groups run again with a savepoint per function, because one of their functions failed
  // in the run without savepoints (see DatabaseOptions::group_commit).
  std::atomic<std::uint64_t> group_reruns{0};
};

template <class R>
struct IsResult : std::false_type {};
template <class T>
struct IsResult<Result<T>> : std::true_type {};

class Database {
 public:
  virtual ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  virtual Dialect dialect() const noexcept = 0;
  // The URL with any password removed, for logs.
  virtual std::string describe() const = 0;
  core::BlockingPool& pool() const noexcept { return pool_; }
  // Whether write transactions share commits (DatabaseOptions::group_commit).
  bool groups_writes() const noexcept { return group_max_ > 0; }
  const DatabaseStats& stats() const noexcept { return stats_; }

  // Runs `f(Tx&)` in a transaction on a pool worker; see the file comment. With
  // DatabaseOptions::group_commit, write transactions may share a commit with others, and
  // `rerun` says whether f may be run more than once (see Rerun).
  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F&, Tx&>> transaction(F f, TxMode mode = TxMode::write,
                                                                     Rerun rerun = Rerun::never) {
    using R = std::invoke_result_t<F&, Tx&>;
    if ((mode == TxMode::read && inline_reads_) || (mode == TxMode::write_unsynced && inline_unsynced_writes_)) {
      account_queued(mode, Clock::duration::zero());
      co_return transaction_blocking(f, mode);
    }
    if (mode != TxMode::write || group_max_ == 0) {  // reads and unsynced writes are not grouped
      const auto queued = Clock::now();
      co_return co_await pool_.run([this, &f, mode, queued] {  // coro-capture-ok
        account_queued(mode, Clock::now() - queued);
        return transaction_blocking(f, mode);
      });
    }
    std::optional<R> out;
    std::exception_ptr thrown;
    Result<void> committed = co_await run_grouped(
        [&](Tx& tx, bool isolated) {
          // Isolated: in a savepoint of its own, keeping its outcome. Otherwise (a group of
          // rerunnable functions) a failure of any kind makes the group run again.
          thrown = nullptr;
          try {
            if (isolated) {
              out.emplace(tx.savepoint(f));
            } else {
              out.emplace(f(tx));
            }
          } catch (...) {
            thrown = std::current_exception();
            return isolated;
          }
          return isolated || (out->has_value() && !tx.failure());
        },
        rerun == Rerun::allowed);
    if (thrown) std::rethrow_exception(thrown);
    if (out && !out->has_value()) co_return std::move(*out);  // the function's own error
    if (!committed) co_return R(std::unexpected(std::move(committed.error())));
    co_return std::move(*out);
  }

  // Makes every transaction committed so far durable, the unsynced ones included (SQLite:
  // syncs the write-ahead log through a connection's handle of it; PostgreSQL: commits a
  // transaction that writes a commit record, which flushes the log up to it). Runs on a pool
  // worker. For a writer that let others see its writes before they were durable and must
  // know that they are before it acts on them (the outbox relay, see messaging).
  boost::asio::awaitable<Result<void>> sync_log();

  // The same, on the calling thread, which must not be an io thread (a pool worker or a
  // thread of its own).
  template <class F>
  std::invoke_result_t<F&, Tx&> transaction_blocking(F&& f, TxMode mode = TxMode::write) {
    using R = std::invoke_result_t<F&, Tx&>;
    static_assert(IsResult<R>::value, "the transaction function must return mercado::Result<T>");
    std::optional<R> out;
    const auto started = Clock::now();
    Result<void> status = run(mode, [&](Tx& tx) -> Result<void> {
      out.emplace(f(tx));
      if (out->has_value()) return {};
      return std::unexpected(out->error());
    });
    account_run(mode, Clock::now() - started, status.has_value());
    if (out && !out->has_value()) return std::move(*out);  // the function's own error
    if (!status) return R(std::unexpected(std::move(status.error())));
    return std::move(*out);
  }

 protected:
  DatabaseStats& counters() noexcept { return stats_; }  // for backends
  using Clock = std::chrono::steady_clock;
  void account_queued(TxMode mode, Clock::duration waited) noexcept;
  void account_run(TxMode mode, Clock::duration ran, bool committed) noexcept;

  // group_max > 0 turns group commit on (see DatabaseOptions).
  explicit Database(core::BlockingPool& pool, std::size_t group_max = 0, bool inline_reads = false,
                    bool inline_unsynced_writes = false);
  // Runs body between BEGIN and COMMIT (or ROLLBACK when it, or a statement, failed), then
  // the commit hooks. Returns body's error, or the BEGIN/COMMIT error.
  virtual Result<void> run(TxMode mode, const std::function<Result<void>(Tx&)>& body) = 0;
  // sync_log() on a pool worker.
  virtual Result<void> sync_log_blocking() = 0;

 private:
  struct Group;
  // Queues `member` for the next group transaction; completes with the group's COMMIT
  // result once the member has run. member(tx, isolated): isolated, it runs in a savepoint
  // of its own and keeps its outcome (returns true); otherwise (only when `rerunnable`) it
  // runs plainly and returns whether it succeeded -- false makes the group run again.
  boost::asio::awaitable<Result<void>> run_grouped(std::function<bool(Tx&, bool)> member, bool rerunnable);
  void drain_group();

  core::BlockingPool& pool_;
  DatabaseStats stats_;
  std::size_t group_max_ = 0;
  bool inline_reads_ = false;
  bool inline_unsynced_writes_ = false;
  std::shared_ptr<Group> group_;
};

// Opens the database named by `url` (see the file comment). Blocking: it opens or connects
// once to check the URL, so call it at start-up or from a pool worker. Errors:
// invalid_argument for a malformed or unsupported URL, unavailable when the database cannot
// be opened or reached. `pool` must outlive the Database.
Result<std::shared_ptr<Database>> open_database(std::string_view url, core::BlockingPool& pool,
                                                const DatabaseOptions& options = {});

}  // namespace mercado::storage
