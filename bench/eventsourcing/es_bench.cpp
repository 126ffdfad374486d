// Event store and saga throughput, each against a raw baseline measured in the same run.
//
//   es_bench [--postgres URL] [--events N]
//
// For SQLite (a fresh file, WAL, synchronous=full: every commit is durable) and, when a URL
// is given, PostgreSQL:
//   raw insert        the same rows INSERTed directly, one transaction per row (or per 10)
//   append            EventStore::append of one event (or a batch of 10), each awaited
//   sequential        one writer after the other
//   concurrent(64)    64 coroutines appending to their own streams at once: the store groups
//                     them into shared transactions (group commit); the raw baseline runs
//                     64 threads inserting at once
// plus the rebuild time of a 10 000-event BankAccount stream and sagas/s with in-process steps.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <mercado/core/blocking_pool.hpp>
#include <mercado/core/io_runtime.hpp>
#include <mercado/eventsourcing/aggregate.hpp>
#include <mercado/eventsourcing/event_store.hpp>
#include <mercado/observability/log.hpp>
#include <mercado/saga/saga.hpp>
#include <mercado/storage/database.hpp>
#include <mercado/storage/migrations.hpp>

#include "domain/bank_account.hpp"

namespace asio = boost::asio;
namespace json = boost::json;
using namespace mercado;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string payload(int i) {
  return json::serialize(json::object{{"amount", 100 + i}, {"payment_id", "pay-" + std::to_string(i)}});
}

const std::vector<storage::Migration> kRaw = {
    {1, "raw", "",
     "CREATE TABLE raw_events (position BIGSERIAL PRIMARY KEY, stream_id TEXT NOT NULL, version BIGINT NOT NULL, "
     "event_id TEXT NOT NULL UNIQUE, event_type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, "
     "recorded_at BIGINT NOT NULL, UNIQUE (stream_id, version))",
     "CREATE TABLE raw_events (position INTEGER PRIMARY KEY AUTOINCREMENT, stream_id TEXT NOT NULL, version INTEGER NOT "
     "NULL, event_id TEXT NOT NULL UNIQUE, event_type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, "
     "recorded_at INTEGER NOT NULL, UNIQUE (stream_id, version))"},
};

// Raw baseline: `writers` threads each inserting rows/writers rows, `per_tx` rows per transaction.
double raw_rate(storage::Database& db, int rows, int per_tx, int writers, const std::string& tag) {
  std::atomic<int> next{0};
  auto start = Clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      int version = 0;
      const std::string stream = tag + "-raw-" + std::to_string(w);
      for (;;) {
        int first = next.fetch_add(per_tx);
        if (first >= rows) return;
        auto r = db.transaction_blocking([&](storage::Tx& tx) -> Result<bool> {
          for (int k = 0; k < per_tx; ++k) {
            auto n = tx.exec(
                "INSERT INTO raw_events (stream_id, version, event_id, event_type, data, metadata, recorded_at) "
                "VALUES ($1, $2, $3, $4, $5, '{}', $6)",
                stream, ++version, tag + "-e-" + std::to_string(first + k), "MoneyDeposited", payload(first + k),
                std::int64_t{0});
            if (!n) return fail(n.error());
          }
          return true;
        });
        if (!r) std::fprintf(stderr, "raw insert failed: %s\n", r.error().message.c_str());
      }
    });
  }
  for (auto& t : threads) t.join();
  return rows / seconds_since(start);
}

// Appends `rows` events in appends of `per_append` events, from `writers` coroutines.
double append_rate(es::EventStore& store, core::IoRuntime& rt, int rows, int per_append, int writers,
                   const std::string& tag) {
  std::atomic<int> next{0};
  std::atomic<int> done_writers{0};
  auto all_done = std::make_shared<std::promise<void>>();  // shared: it outlives a running set_value()
  auto finished = all_done->get_future();
  auto start = Clock::now();
  for (int w = 0; w < writers; ++w) {
    asio::co_spawn(rt.next(), [&, w, all_done]() -> asio::awaitable<void> {
      const std::string stream = tag + "-" + std::to_string(w);
      std::int64_t version = 0;
      for (;;) {
        int first = next.fetch_add(per_append);
        if (first >= rows) break;
        std::vector<es::NewEvent> events;
        for (int k = 0; k < per_append; ++k) {
          events.push_back(es::NewEvent{tag + "-" + std::to_string(first + k), "MoneyDeposited", payload(first + k), "{}"});
        }
        auto r = co_await store.append(stream, std::move(events), es::ExpectedVersion::exact(version));
        if (!r) {
          std::fprintf(stderr, "append failed: %s\n", r.error().error.message.c_str());
          break;
        }
        version = r->version;
      }
      if (++done_writers == writers) all_done->set_value();
    }, asio::detached);
  }
  finished.wait();
  return rows / seconds_since(start);
}

void run_backend(const std::string& name, const std::string& url, int events) {
  core::BlockingPool pool(4);
  auto opened = storage::open_database(url, pool, {.max_connections = 8});
  if (!opened) {
    std::fprintf(stderr, "%s: %s\n", name.c_str(), opened.error().message.c_str());
    return;
  }
  auto db = *opened;
  storage::migrate_blocking(*db, "mercado_eventstore", es::EventStore::migrations());
  storage::migrate_blocking(*db, "mercado_saga", saga::Orchestrator::migrations());
  storage::migrate_blocking(*db, "bench_raw", kRaw);
  core::IoRuntime rt(2);
  rt.start();
  es::EventStore store(db);

  std::printf("\n== %s (%d events per case)\n", name.c_str(), events);
  std::printf("%-34s %12s %12s %8s\n", "case", "raw rows/s", "es events/s", "es/raw");
  struct Case {
    const char* label;
    int per;
    int writers;
  };
  // (A std::vector, not a C array: GCC 12 fails on C arrays in functions with coroutine lambdas.)
  const std::vector<Case> cases = {{"single events, sequential", 1, 1},
                                   {"single events, 64 concurrent", 1, 64},
                                   {"batches of 10, sequential", 10, 1},
                                   {"batches of 10, 64 concurrent", 10, 64}};
  int n = 0;
  for (const auto& c : cases) {
    const std::string tag = name + std::to_string(n++);
    const int rows = c.writers == 1 && c.per == 1 ? events / 4 : events;
    double raw = raw_rate(*db, rows, c.per, c.writers == 1 ? 1 : 8, tag + "r");
    double es_rate = append_rate(store, rt, rows, c.per, c.writers, tag + "e");
    std::printf("%-34s %12.0f %12.0f %7.2fx\n", c.label, raw, es_rate, es_rate / raw);
  }

  // Rebuild a 10 000-event stream.
  {
    const std::string stream = name + "-account";
    std::int64_t version = 0;
    auto opened_event = es::NewEvent::make("AccountCreated", json::object{{"customer_id", "c"}});
    auto written = std::make_shared<std::promise<void>>();
    auto written_future = written->get_future();
    const json::object one_cent{{"amount", 1}};  // built outside the coroutine (GCC 12 bug with braced lists inside)
    asio::co_spawn(rt.context(0), [&, written]() -> asio::awaitable<void> {
      std::vector<es::NewEvent> first;
      first.push_back(opened_event);
      auto r = co_await store.append(stream, std::move(first), es::ExpectedVersion::no_stream());
      version = r ? r->version : 0;
      for (int i = 0; i < 9999; i += 100) {
        std::vector<es::NewEvent> chunk;
        for (int k = i; k < std::min(i + 100, 9999); ++k) {
          chunk.push_back(es::NewEvent::make("MoneyDeposited", one_cent));
        }
        auto a = co_await store.append(stream, std::move(chunk), es::ExpectedVersion::exact(version));
        if (a) version = a->version;
      }
      written->set_value();
    }, asio::detached);
    written_future.wait();
    auto rebuilt = std::make_shared<std::promise<std::pair<double, std::int64_t>>>();
    auto rebuilt_future = rebuilt->get_future();
    asio::co_spawn(rt.context(0), [&, rebuilt]() -> asio::awaitable<void> {
      auto start = Clock::now();
      auto account = co_await es::load<payment::domain::BankAccount>(store, stream);
      rebuilt->set_value({seconds_since(start), account ? account->balance() : -1});
    }, asio::detached);
    auto [secs, balance] = rebuilt_future.get();
    std::printf("rebuild of a %lld-event stream: %.1f ms (balance %lld)\n", static_cast<long long>(version),
                secs * 1000, static_cast<long long>(balance));
  }

  // Sagas with three in-process steps.
  {
    obs::Registry metrics;
    saga::Orchestrator orchestrator(db, rt.context(1).get_executor(), {.metrics = &metrics});
    saga::Definition d{"bench", {}};
    for (std::string s : {"reserve", "charge", "ship"}) {
      d.steps.push_back(saga::Step{s, [](const saga::StepContext&) -> asio::awaitable<saga::StepResult> {
                                     co_return saga::StepResult::ok();
                                   }, {}});
    }
    orchestrator.define(d);
    const int sagas = events / 10;
    std::atomic<int> finished{0};
    auto all = std::make_shared<std::promise<void>>();
    auto all_future = all->get_future();
    orchestrator.on_finished([&finished, sagas, all](const saga::State&) {
      if (++finished == sagas) all->set_value();
    });
    auto start = Clock::now();
    asio::co_spawn(rt.context(1), [&]() -> asio::awaitable<void> {
      for (int i = 0; i < sagas; ++i) co_await orchestrator.start("bench", name + "-saga-" + std::to_string(i), {});
    }, asio::detached);
    all_future.wait();
    const double secs = seconds_since(start);
    std::printf("sagas (3 in-process steps, each transition persisted): %d in %.2f s = %.0f sagas/s\n", sagas, secs,
                sagas / secs);
    auto stopped = std::make_shared<std::promise<bool>>();
    auto stopped_future = stopped->get_future();
    asio::co_spawn(rt.context(1), [&orchestrator, stopped]() -> asio::awaitable<void> {
      stopped->set_value(co_await orchestrator.shutdown(std::chrono::seconds(10)));
    }, asio::detached);
    stopped_future.wait();  // drivers gone before the registry and the database go
  }
  rt.stop();
  rt.join();
}

}  // namespace

int main(int argc, char** argv) {
  log::init({.service = "es_bench", .level = log::Level::warn});
  std::string pg;
  int events = 20000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--postgres") pg = argv[i + 1];
    if (a == "--events") events = std::stoi(argv[i + 1]);
  }
  auto dir = std::filesystem::temp_directory_path() / ("es_bench_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  run_backend("sqlite", "sqlite://" + (dir / "events.db").string(), events);
  if (!pg.empty()) run_backend("postgres", pg, events / 4);
  std::filesystem::remove_all(dir);
  return 0;
}
