// Housekeeping of deduplication records: idempotency keys and inbox records older than the
// retention are deleted in batches, younger ones stay, and the Housekeeper does it on its
// own until stopped. On SQLite and on PostgreSQL (MERCADO_TEST_POSTGRES_URL).

#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <mercado/core/blocking_pool.hpp>
#include <mercado/core/clock.hpp>
#include <mercado/http/request.hpp>
#include <mercado/http/response.hpp>
#include <mercado/messaging/inbox.hpp>
#include <mercado/service/housekeeping.hpp>
#include <mercado/service/idempotency.hpp>
#include <mercado/storage/migrations.hpp>

#include "run_coroutine.hpp"
#include "scratch_database.hpp"

namespace mercado::service {
namespace {

namespace asio = boost::asio;
using storage::testing::Backend;
using storage::testing::run_coroutine;
using storage::testing::ScratchDatabase;
using namespace std::chrono_literals;

class HousekeepingTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    MERCADO_SCRATCH_OR_SKIP(scratch_, GetParam());
    auto db = storage::open_database(scratch_->url(), pool_, {.group_commit = true});
    ASSERT_TRUE(db) << db.error().message;
    db_ = *db;
    ASSERT_TRUE(storage::migrate_blocking(*db_, "mercado_idempotency", idempotency_migrations()));
    ASSERT_TRUE(storage::migrate_blocking(*db_, "mercado_inbox", messaging::Inbox::migrations()));
  }

  // `n` keys and `n` inbox records (two consumers) written `age` ago, named by `prefix`.
  void write(const std::string& prefix, int n, std::chrono::milliseconds age) {
    const std::int64_t at = core::unix_millis() - age.count();
    auto r = db_->transaction_blocking([&](storage::Tx& tx) -> Result<void> {
      for (int i = 0; i < n; ++i) {
        const std::string id = prefix + std::to_string(i);
        auto k = tx.exec(
            "INSERT INTO idempotency_keys (key, fingerprint, status, content_type, body, "
            "created_at) "
            "VALUES ($1, 'fp', 201, 'application/json', '{}', $2)",
            id, at);
        if (!k) return fail(std::move(k.error()));
        auto m = tx.exec(
            "INSERT INTO mercado_inbox (consumer, message_id, processed_at) VALUES ($1, $2, $3)",
            i % 2 ? "payments" : "inventory", id, at);
        if (!m) return fail(std::move(m.error()));
      }
      return {};
    });
    ASSERT_TRUE(r) << r.error().message;
  }
  std::vector<std::string> column(const char* sql) {
    std::vector<std::string> out;
    auto r = db_->transaction_blocking(
        [&](storage::Tx& tx) -> Result<void> {
          auto rows = tx.query(sql);
          if (!rows) return fail(std::move(rows.error()));
          for (const auto& row : *rows) out.push_back(row.get<std::string>(0));
          return {};
        },
        storage::TxMode::read);
    EXPECT_TRUE(r) << r.error().message;
    return out;
  }
  std::vector<std::string> keys() {
    return column("SELECT key FROM idempotency_keys ORDER BY key");
  }
  std::vector<std::string> inbox() {
    return column("SELECT message_id FROM mercado_inbox ORDER BY message_id");
  }

  core::BlockingPool pool_{2};
  std::optional<ScratchDatabase> scratch_;
  std::shared_ptr<storage::Database> db_;
};

TEST_P(HousekeepingTest, PurgesWhatIsOlderThanTheCutoffInBatchesAndKeepsTheRest) {
  write("old-", 7, 2h);
  write("new-", 3, 1min);
  const std::int64_t cutoff = core::unix_millis() - std::chrono::milliseconds(1h).count();
  auto k = run_coroutine(purge_idempotency_keys(*db_, cutoff, 2));  // four batches: 2, 2, 2, 1
  ASSERT_TRUE(k) << k.error().message;
  EXPECT_EQ(*k, 7);
  auto m = run_coroutine(purge_inbox(*db_, cutoff, 2));
  ASSERT_TRUE(m) << m.error().message;
  EXPECT_EQ(*m, 7);
  const std::vector<std::string> young = {"new-0", "new-1", "new-2"};
  EXPECT_EQ(keys(), young);
  EXPECT_EQ(inbox(), young);
  // Nothing older is left: a second purge deletes nothing.
  EXPECT_EQ(run_coroutine(purge_idempotency_keys(*db_, cutoff, 2)).value_or(-1), 0);
  EXPECT_EQ(run_coroutine(purge_inbox(*db_, cutoff, 2)).value_or(-1), 0);
}

// What the window means for a client: within it a retry is answered from the key; after the
// key was purged, the same request runs again.
TEST_P(HousekeepingTest, ARetryAfterItsKeyWasPurgedRunsTheCommandAgain) {
  int runs = 0;  // the command's runs (each call is alone in its commit group: never run twice)
  auto command = [&runs](storage::Tx&) -> Result<http::Response> {
    ++runs;
    return http::Response(201, "application/json", R"({"run":)" + std::to_string(runs) + "}");
  };
  http::Headers headers;
  headers.add("Idempotency-Key", "retry-1");
  auto req = http::Request::make(http::Method::post, "/things", headers, R"({"a":1})");
  EXPECT_EQ(run_coroutine(idempotent(*db_, req, command)).body, R"({"run":1})");
  EXPECT_EQ(run_coroutine(idempotent(*db_, req, command)).body, R"({"run":1})");  // a replay
  EXPECT_EQ(runs, 1);
  auto purged = run_coroutine(purge_idempotency_keys(*db_, core::unix_millis() + 1));
  ASSERT_TRUE(purged);
  EXPECT_EQ(*purged, 1);
  EXPECT_EQ(run_coroutine(idempotent(*db_, req, command)).body, R"({"run":2})");
  EXPECT_EQ(runs, 2);
}

TEST_P(HousekeepingTest, TheHousekeeperPurgesOnItsOwnUntilStopped) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  write("old-", 5, 2h);
  write("new-", 2, 1min);
  auto keeper = Housekeeper::start(
      db_, io.get_executor(), {.retention = 1h, .every = 20ms, .first_after = 0ms, .batch = 2});
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while ((keys().size() > 2 || inbox().size() > 2) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(keys(), (std::vector<std::string>{"new-0", "new-1"}));
  EXPECT_EQ(inbox(), (std::vector<std::string>{"new-0", "new-1"}));
  // It goes on: rows that age past the retention later are purged by a later pass.
  write("later-", 3, 3h);
  while ((keys().size() > 2 || inbox().size() > 2) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(keys().size(), 2U);
  EXPECT_EQ(inbox().size(), 2U);
  run_coroutine(keeper->stop());
  EXPECT_GE(keeper->passes(), 2U);
  EXPECT_GE(keeper->deleted(), 16U);
  // Stopped: nothing is purged any more.
  write("after-", 1, 3h);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(keys().size(), 3U);
  work.reset();
  runner.join();
}

TEST_P(HousekeepingTest, ARetentionOfZeroKeepsEverything) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  write("old-", 3, 24h * 365);
  auto keeper = Housekeeper::start(db_, io.get_executor(),
                                   {.retention = 0ms, .every = 1ms, .first_after = 0ms});
  std::this_thread::sleep_for(100ms);
  run_coroutine(keeper->stop());
  EXPECT_EQ(keeper->passes(), 0U);
  EXPECT_EQ(keys().size(), 3U);
  EXPECT_EQ(inbox().size(), 3U);
  work.reset();
  runner.join();
}

INSTANTIATE_TEST_SUITE_P(Databases, HousekeepingTest,
                         ::testing::Values(Backend::sqlite, Backend::postgres),
                         [](const auto& p) { return storage::testing::to_string(p.param); });

}  // namespace
}  // namespace mercado::service
