// A child process for saga_crash_test: drives N order-like sagas whose steps have real,
// idempotent effects in a separate SQLite "ledger" database (standing in for the other
// services), and SIGKILLs itself at the CRASH_AT-th boundary (before an action, after it,
// after a persist). Run again without CRASH_AT, it resumes and finishes every saga.
//   saga_crash_worker <saga DATABASE_URL> <ledger file> <sagas>
#include <csignal>
#include <cstdlib>
#include <iostream>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <mercado/core/blocking_pool.hpp>
#include <mercado/saga/saga.hpp>
#include <mercado/storage/database.hpp>
#include <mercado/storage/migrations.hpp>

namespace asio = boost::asio;
using namespace mercado;

namespace {

// Applies a step's effect once per idempotency key: records the key and moves the ledger
// in the same transaction.
asio::awaitable<saga::StepResult> effect(storage::Database& ledger, const saga::StepContext& c, std::int64_t delta) {
  auto r = co_await ledger.transaction([&](storage::Tx& tx) -> Result<bool> {
    auto n = tx.exec("INSERT INTO effects (key) VALUES ($1) ON CONFLICT (key) DO NOTHING", c.idempotency_key);
    if (!n) return fail(n.error());
    if (*n == 0) return false;  // already applied
    auto u = tx.exec("UPDATE ledger SET value = value + $1 WHERE name = $2", delta, c.step);
    if (!u) return fail(u.error());
    return true;
  });
  if (!r) co_return saga::StepResult::retry(r.error().message);
  co_return saga::StepResult::ok();
}

asio::awaitable<void> drive_all(saga::Orchestrator& orchestrator, int sagas, int& exit_code) {
  auto resumed = co_await orchestrator.resume_all();
  if (!resumed) exit_code = 6;
  for (int i = 0; i < sagas; ++i) {
    boost::json::object input;  // (built apart: GCC 12 mis-compiles braced lists inside co_await)
    input["fail_at"] = i % 4;
    auto s = co_await orchestrator.start("order", "order-" + std::to_string(i), std::move(input));
    if (!s) exit_code = 7;
  }
  for (int i = 0; i < sagas; ++i) {
    auto s = co_await orchestrator.wait("order-" + std::to_string(i), std::chrono::seconds(60));
    if (!s || !saga::terminal(s->status)) exit_code = 8;
  }
  orchestrator.stop();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) return 2;
  const long crash_at = std::getenv("CRASH_AT") ? std::atol(std::getenv("CRASH_AT")) : 0;
  const int sagas = std::atoi(argv[3]);
  core::BlockingPool pool(2);
  auto db = storage::open_database(argv[1], pool);
  auto ledger = storage::open_database(std::string("sqlite://") + argv[2], pool);
  if (!db || !ledger) return 3;
  if (!storage::migrate_blocking(**db, "mercado_saga", saga::Orchestrator::migrations())) return 4;
  static const storage::Migration kLedger[] = {
      {1, "ledger", "CREATE TABLE effects (key TEXT PRIMARY KEY); CREATE TABLE ledger (name TEXT PRIMARY KEY, value BIGINT NOT NULL);"
                    "INSERT INTO ledger VALUES ('reserve', 0), ('charge', 0), ('ship', 0);"}};
  if (!storage::migrate_blocking(**ledger, "ledger", kLedger)) return 5;

  long boundaries = 0;
  asio::io_context ctx(1);
  obs::Registry metrics;
  const std::string mode = std::getenv("FORWARD_CHECKPOINT") != nullptr ? std::getenv("FORWARD_CHECKPOINT") : "";
  const auto checkpoint = mode == "background" ? saga::ForwardCheckpoint::background
                          : mode == "deferred" ? saga::ForwardCheckpoint::deferred
                                               : saga::ForwardCheckpoint::awaited;
  saga::Orchestrator orchestrator(*db, ctx.get_executor(), {.owner = "worker-1",
                                                            .forward_checkpoint = checkpoint,
                                                            .metrics = &metrics,
                                                            .on_boundary = [&](std::string_view) {
                                                              if (++boundaries == crash_at) std::raise(SIGKILL);
                                                            }});
  saga::Definition order{"order", {}};
  order.initial_backoff = std::chrono::milliseconds(1);
  for (std::string step : {"reserve", "charge", "ship"}) {
    order.steps.push_back(saga::Step{
        step,
        [&, step](const saga::StepContext& c) -> asio::awaitable<saga::StepResult> {
          // Saga i refuses at step (i % 4): 0..2 compensate, 3 completes.
          const auto fail_at = c.data.at("fail_at").as_int64();
          const std::int64_t index = step == "reserve" ? 0 : step == "charge" ? 1 : 2;
          if (index == fail_at) co_return saga::StepResult::failed("refused");
          co_return co_await effect(**ledger, c, 10);
        },
        [&](const saga::StepContext& c) -> asio::awaitable<saga::StepResult> { co_return co_await effect(**ledger, c, -10); }});
  }
  orchestrator.define(order);

  int exit_code = 0;
  asio::co_spawn(ctx, drive_all(orchestrator, sagas, exit_code), asio::detached);
  ctx.run();
  std::cout << "boundaries " << boundaries << "\n";
  return exit_code;
}
