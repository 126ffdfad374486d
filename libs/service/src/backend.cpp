#include <mercado/service/backend.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>
#include <filesystem>
#include <mutex>

#include <mercado/observability/log.hpp>
#include <mercado/observability/metrics.hpp>
#include <mercado/service/idempotency.hpp>

namespace mercado::service {

namespace asio = boost::asio;

namespace {

// The database's counters as db_* metrics: rate(db_write_seconds_total) is how busy the
// single SQLite writer is, db_write_queue_seconds_total / db_write_transactions_total the
// mean wait before a write starts (event-store appends are group members like any other
// write), db_write_transactions_total / db_write_commits_total the mean group-commit size,
// db_pages_written_total / db_write_commits_total the pages per commit. SQLite reads run on
// the io thread (inline_reads): they count, with no queueing. A process exports the
// counters of its latest Backend's database (a service has one; tests may open several
// Backends in one process, and a metric name is registered once).
void register_database_metrics(const std::shared_ptr<storage::Database>& db) {
  static std::mutex mutex;
  static std::weak_ptr<storage::Database> current;
  {
    std::lock_guard lock(mutex);
    current = db;
  }
  static std::once_flag once;
  std::call_once(once, [] {
    using S = storage::DatabaseStats;
    auto read = [](std::atomic<std::uint64_t> S::*field, double scale) {
      return [field, scale]() -> double {
        std::shared_ptr<storage::Database> d;
        {
          std::lock_guard lock(mutex);
          d = current.lock();
        }
        return d ? static_cast<double>((d->stats().*field).load(std::memory_order_relaxed)) * scale : 0.0;
      };
    };
    auto& reg = obs::Registry::global();
    reg.counter_callback("db_read_transactions_total", "Read transactions run", read(&S::read_transactions, 1));
    reg.counter_callback("db_write_transactions_total", "Write transactions run (each group-commit member counts)",
                         read(&S::write_transactions, 1));
    reg.counter_callback("db_write_commits_total", "Write commits (a group commit counts once)",
                         read(&S::write_commits, 1));
    reg.counter_callback("db_read_queue_seconds_total", "Time read transactions waited for a pool worker",
                         read(&S::read_queued_ns, 1e-9));
    reg.counter_callback("db_read_seconds_total", "Time read transactions ran", read(&S::read_busy_ns, 1e-9));
    reg.counter_callback("db_write_queue_seconds_total", "Time write transactions waited before they started",
                         read(&S::write_queued_ns, 1e-9));
    reg.counter_callback("db_write_seconds_total", "Time write transactions (or their groups) ran, to COMMIT",
                         read(&S::write_busy_ns, 1e-9));
    reg.counter_callback("db_pages_written_total", "Pages written to the log by commits (SQLite's WAL frames)",
                         read(&S::pages_written, 1));
    reg.counter_callback("db_group_reruns_total",
                         "Commit groups run again with a savepoint per transaction because one failed without",
                         read(&S::group_reruns, 1));
  });
}

}  // namespace

Result<std::unique_ptr<Backend>> Backend::open(App& app, BackendOptions options) {
  auto b = open_unlogged(app, std::move(options));
  if (!b) {
    // The internal detail says which file or server and why (a client never sees it).
    log::error("cannot open the backend", {{"error", b.error().message}, {"detail", b.error().internal}});
  }
  return b;
}

Result<std::unique_ptr<Backend>> Backend::open_unlogged(App& app, BackendOptions options) {
  const auto& o = app.options();
  std::unique_ptr<Backend> b(new Backend());
  b->app_ = &app;
  std::error_code ec;
  std::filesystem::create_directories(o.data_dir, ec);
  const std::string db_url =
      o.database_url.empty() ? "sqlite://" + (std::filesystem::path(o.data_dir) / (o.service_name + ".db")).string()
                             : o.database_url;
  std::size_t workers = o.blocking_threads != 0 ? o.blocking_threads : options.workers;  // the flag wins
  if (workers == 0) workers = db_url.starts_with("sqlite:") ? 1 : 4;
  b->pool_ = std::make_unique<core::BlockingPool>(workers);
  const std::string bus_url =
      o.broker_url.empty() ? "sqlite://" + (std::filesystem::path(o.data_dir) / "bus.db").string() : o.broker_url;

  auto db = storage::open_database(db_url, *b->pool_,
                                   {.max_connections = options.max_connections,
                                    .cache_kib = options.sqlite_cache_kib,
                                    .writer_cache_kib = options.sqlite_writer_cache_kib,
                                    .group_commit = options.group_commit,
                                    .inline_reads = options.inline_reads});
  if (!db) return fail(std::move(db.error()));
  b->db_ = *db;
  for (auto [scope, migrations] : {std::pair{std::string("mercado_outbox"), messaging::Outbox::migrations()},
                                   std::pair{std::string("mercado_inbox"), messaging::Inbox::migrations()},
                                   std::pair{std::string("mercado_idempotency"), idempotency_migrations()},
                                   std::pair{o.service_name, options.migrations}}) {
    if (migrations.empty()) continue;
    auto m = storage::migrate_blocking(*b->db_, scope, migrations);
    if (!m) return fail(std::move(m.error()));
  }

  auto bus = messaging::open_event_bus(bus_url, {.source = o.service_name,
                                                 .executor = app.runtime().context(0).get_executor(),
                                                 .pool = b->pool_.get()});
  if (!bus) return fail(std::move(bus.error()));
  b->bus_ = *bus;
  b->outbox_ = std::make_unique<messaging::Outbox>(o.service_name);
  b->relay_ = messaging::OutboxRelay::start(b->db_, b->bus_, *b->outbox_, app.runtime().context(0).get_executor(),
                                            {.retention = o.outbox_retention(), .relay_id = o.instance_id});

  // Deduplication records older than the retention go, hourly -- or twice per retention
  // when that is shorter (a short window is for tests and demos).
  const std::chrono::milliseconds retention = o.dedupe_retention();
  const auto every = std::clamp<std::chrono::milliseconds>(retention / 2, std::chrono::milliseconds(100),
                                                           std::chrono::hours(1));
  b->housekeeper_ = Housekeeper::start(b->db_, app.runtime().context(0).get_executor(),
                                       {.retention = retention,
                                        .every = every,
                                        .first_after = std::min<std::chrono::milliseconds>(every, std::chrono::seconds(10))});

  auto* raw = b.get();
  register_database_metrics(raw->db_);
  app.readiness().add("database", [raw]() -> asio::awaitable<Result<void>> {
    co_return co_await raw->db_->transaction(
        [](storage::Tx& tx) -> Result<void> {
          auto r = tx.query("SELECT 1");
          if (!r) return fail(std::move(r.error()));
          return {};
        },
        storage::TxMode::read);
  });
  app.readiness().add_sync("bus", [raw]() -> Result<void> {
    if (raw->bus_->healthy()) return {};
    return fail(Errc::unavailable, "the event bus is not connected");
  });
  // Shutdown, in this order (hooks run last-registered first): subscriptions, housekeeper,
  // relay, bus.
  app.on_shutdown([raw]() -> asio::awaitable<void> { co_await raw->bus_->close(); });
  app.on_shutdown([raw]() -> asio::awaitable<void> { co_await raw->relay_->stop(); });
  app.on_shutdown([raw]() -> asio::awaitable<void> { co_await raw->housekeeper_->stop(); });
  app.on_shutdown([raw]() -> asio::awaitable<void> {
    std::vector<std::shared_ptr<messaging::Subscription>> subs;
    {
      std::lock_guard lock(raw->mutex_);
      subs = raw->subscriptions_;
    }
    for (auto& s : subs) co_await s->stop();
  });
  log::info("backend ready", {{"database", b->db_->describe()}, {"bus", std::string(b->bus_->transport())}});
  return b;
}

Backend::~Backend() = default;

void Backend::subscribe(messaging::SubscribeOptions options) {
  asio::co_spawn(app_->runtime().context(0), [this, options = std::move(options)]() -> asio::awaitable<void> {
    std::chrono::milliseconds backoff{100};
    for (;;) {
      auto sub = co_await bus_->subscribe(options);
      if (sub) {
        std::lock_guard lock(mutex_);
        subscriptions_.push_back(*sub);
        co_return;
      }
      log::warn("subscribe failed; retrying", {{"queue", options.queue}, {"error", sub.error().message}});
      asio::steady_timer t(co_await asio::this_coro::executor, backoff);
      co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }, asio::detached);
}

}  // namespace mercado::service
