#include <mercado/storage/migrations.hpp>

#include <gtest/gtest.h>

#include <thread>

#include "run_coroutine.hpp"
#include "scratch_database.hpp"

namespace mercado::storage {
namespace {

using testing::Backend;
using testing::run_coroutine;

class MigrationsTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    MERCADO_SCRATCH_OR_SKIP(scratch_, GetParam());
    db_ = open();
  }
  std::shared_ptr<Database> open() {
    auto db = open_database(scratch_->url(), pool_);
    if (!db) throw std::runtime_error(db.error().internal);
    return *db;
  }
  bool table_exists(const std::string& name) {
    auto r = db_->transaction_blocking([&](Tx& tx) -> Result<bool> {
      auto rows = tx.dialect() == Dialect::postgres
                      ? tx.query("SELECT 1 FROM information_schema.tables WHERE table_name = $1"
                                 " AND table_schema = current_schema()", name)
                      : tx.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1", name);
      if (!rows) return std::unexpected(rows.error());
      return !rows->empty();
    });
    EXPECT_TRUE(r);
    return r && *r;
  }
  std::vector<std::int64_t> recorded(const std::string& scope) {
    auto r = db_->transaction_blocking([&](Tx& tx) -> Result<std::vector<std::int64_t>> {
      auto rows = tx.query("SELECT version FROM mercado_schema_migrations WHERE scope = $1 ORDER BY version", scope);
      if (!rows) return std::unexpected(rows.error());
      std::vector<std::int64_t> v;
      for (const Row& row : *rows) v.push_back(row.get<std::int64_t>(0));
      return v;
    });
    EXPECT_TRUE(r);
    return r ? *r : std::vector<std::int64_t>{};
  }

  core::BlockingPool pool_{4};
  std::optional<testing::ScratchDatabase> scratch_;
  std::shared_ptr<Database> db_;
};

const std::vector<Migration> kV1 = {
    {1, "orders", "CREATE TABLE orders (id TEXT PRIMARY KEY, status TEXT NOT NULL)"},
    {2, "lines", "CREATE TABLE order_lines (order_id TEXT NOT NULL, sku TEXT NOT NULL, qty BIGINT NOT NULL);"
                 "CREATE INDEX order_lines_order ON order_lines (order_id)"},
};

TEST_P(MigrationsTest, AppliedOnceAndRecorded) {
  auto first = run_coroutine(migrate(*db_, "orders", kV1));
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first->applied, (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(first->version, 2);
  EXPECT_TRUE(table_exists("orders"));
  EXPECT_TRUE(table_exists("order_lines"));

  // Start-up again (a new process): nothing to do.
  auto db2 = open();
  auto second = migrate_blocking(*db2, "orders", kV1);
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_TRUE(second->applied.empty());
  EXPECT_EQ(second->version, 2);

  // A later release adds version 3 only.
  auto v2 = kV1;
  v2.push_back({3, "orders.total", "ALTER TABLE orders ADD COLUMN total BIGINT NOT NULL DEFAULT 0"});
  auto third = migrate_blocking(*db_, "orders", v2);
  ASSERT_TRUE(third) << third.error().message;
  EXPECT_EQ(third->applied, (std::vector<std::int64_t>{3}));
  EXPECT_EQ(recorded("orders"), (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_TRUE(db_->transaction_blocking(
      [](Tx& tx) { return tx.exec("INSERT INTO orders (id, status, total) VALUES ('o1', 'new', 5)"); }));
}

TEST_P(MigrationsTest, ScopesAreIndependent) {
  ASSERT_TRUE(migrate_blocking(*db_, "orders", kV1));
  const std::vector<Migration> other = {{1, "outbox", "CREATE TABLE other_outbox (id TEXT PRIMARY KEY)"}};
  auto r = migrate_blocking(*db_, "other", other);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->applied, (std::vector<std::int64_t>{1}));
  EXPECT_EQ(recorded("orders"), (std::vector<std::int64_t>{1, 2}));
  EXPECT_EQ(recorded("other"), (std::vector<std::int64_t>{1}));
}

TEST_P(MigrationsTest, AFailingMigrationLeavesNoTrace) {
  std::vector<Migration> broken = kV1;
  broken[1].sql = "CREATE TABLE order_lines (order_id TEXT NOT NULL); CREATE INDEX bad ON missing_table (x)";
  auto r = migrate_blocking(*db_, "orders", broken);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::internal);
  EXPECT_NE(r.error().message.find("orders/2"), std::string::npos) << r.error().message;
  // Version 1 committed; version 2 is all-or-nothing: its first statement was rolled back.
  EXPECT_TRUE(table_exists("orders"));
  EXPECT_FALSE(table_exists("order_lines"));
  EXPECT_EQ(recorded("orders"), (std::vector<std::int64_t>{1}));
  // Fixed in the next release: version 2 now applies.
  auto fixed = migrate_blocking(*db_, "orders", kV1);
  ASSERT_TRUE(fixed) << fixed.error().message;
  EXPECT_EQ(fixed->applied, (std::vector<std::int64_t>{2}));
}

TEST_P(MigrationsTest, AChangedAppliedMigrationIsRefused) {
  ASSERT_TRUE(migrate_blocking(*db_, "orders", kV1));
  auto edited = kV1;
  edited[0].sql = "CREATE TABLE orders (id TEXT PRIMARY KEY, status TEXT, extra TEXT)";
  auto r = migrate_blocking(*db_, "orders", edited);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::internal);
  EXPECT_NE(r.error().message.find("changed"), std::string::npos);
}

TEST_P(MigrationsTest, VersionsMustIncrease) {
  const std::vector<Migration> bad = {{2, "b", "SELECT 1"}, {1, "a", "SELECT 1"}};
  auto r = migrate_blocking(*db_, "orders", bad);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
  const std::vector<Migration> zero = {{0, "zero", "SELECT 1"}};
  EXPECT_FALSE(migrate_blocking(*db_, "orders", zero));
}

TEST_P(MigrationsTest, DialectSpecificSqlIsUsed) {
  const std::vector<Migration> m = {{1, "seq",
                                     /*sql=*/"",
                                     /*postgres_sql=*/"CREATE TABLE seq (id BIGSERIAL PRIMARY KEY, v TEXT)",
                                     /*sqlite_sql=*/"CREATE TABLE seq (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)"}};
  ASSERT_TRUE(migrate_blocking(*db_, "seq", m));
  auto ids = db_->transaction_blocking([](Tx& tx) -> Result<std::vector<std::int64_t>> {
    std::vector<std::int64_t> out;
    for (const char* v : {"a", "b"}) {
      auto id = tx.query_value<std::int64_t>("INSERT INTO seq (v) VALUES ($1) RETURNING id", v);
      if (!id) return std::unexpected(id.error());
      out.push_back(**id);
    }
    return out;
  });
  ASSERT_TRUE(ids) << ids.error().internal;
  EXPECT_EQ(ids->at(1), ids->at(0) + 1);
}

// A table rebuilt WITHOUT ROWID keeps its rows, its constraints and (through `after`) its
// indexes; on SQLite it has no rowid any more, on PostgreSQL nothing changes.
TEST_P(MigrationsTest, WithoutRowidKeepsRowsConstraintsAndIndexes) {
  constexpr std::string_view kColumns =
      "id TEXT PRIMARY KEY, order_id TEXT NOT NULL UNIQUE, qty BIGINT NOT NULL CHECK (qty > 0)";
  const std::vector<Migration> m = {
      {1, "lines", "CREATE TABLE lines (" + std::string(kColumns) + "); CREATE INDEX lines_qty ON lines (qty)"},
      {2, "rows", "INSERT INTO lines (id, order_id, qty) VALUES ('l-1', 'o-1', 2), ('l-2', 'o-2', 3)"},
      without_rowid(3, "lines", kColumns, "CREATE INDEX lines_qty ON lines (qty)"),
  };
  auto report = migrate_blocking(*db_, "lines", m);
  ASSERT_TRUE(report) << report.error().internal;
  EXPECT_EQ(report->applied, (std::vector<std::int64_t>{1, 2, 3}));
  auto checked = db_->transaction_blocking([](Tx& tx) -> Result<void> {
    auto n = tx.query_value<std::int64_t>("SELECT SUM(qty) FROM lines WHERE id IN ('l-1', 'l-2')");
    if (!n) return std::unexpected(n.error());
    EXPECT_EQ(n->value_or(0), 5);
    return {};
  });
  ASSERT_TRUE(checked) << checked.error().internal;
  auto insert = [&](const char* id, const char* order, std::int64_t qty) {
    return db_->transaction_blocking(
        [&](Tx& tx) { return tx.exec("INSERT INTO lines (id, order_id, qty) VALUES ($1, $2, $3)", id, order, qty); });
  };
  EXPECT_FALSE(insert("l-1", "o-9", 1));  // primary key
  EXPECT_FALSE(insert("l-9", "o-1", 1));  // unique
  EXPECT_FALSE(insert("l-9", "o-9", 0));  // check
  EXPECT_TRUE(insert("l-3", "o-3", 4));
  auto schema = db_->transaction_blocking([](Tx& tx) -> Result<std::pair<std::int64_t, std::int64_t>> {
    if (tx.dialect() == Dialect::postgres) {
      auto idx = tx.query_value<std::int64_t>("SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'lines_qty'");
      if (!idx) return std::unexpected(idx.error());
      return std::pair{idx->value_or(0), std::int64_t{0}};
    }
    auto idx = tx.query_value<std::int64_t>("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'lines_qty'");
    if (!idx) return std::unexpected(idx.error());
    auto no_rowid = tx.query_value<std::int64_t>("SELECT \"wr\" FROM pragma_table_list WHERE name = 'lines'");
    if (!no_rowid) return std::unexpected(no_rowid.error());
    return std::pair{idx->value_or(0), no_rowid->value_or(0)};
  });
  ASSERT_TRUE(schema) << schema.error().internal;
  EXPECT_EQ(schema->first, 1);
  EXPECT_EQ(schema->second, db_->dialect() == Dialect::sqlite ? 1 : 0);
  EXPECT_FALSE(table_exists("lines__without_rowid"));
  EXPECT_EQ(migrate_blocking(*db_, "lines", m)->applied.size(), 0U);
}

TEST_P(MigrationsTest, ConcurrentStartUpsApplyEachMigrationOnce) {
  constexpr int kProcesses = 4;
  std::vector<std::thread> threads;
  std::vector<Result<MigrationReport>> reports(kProcesses, fail(Errc::internal, "not run"));
  for (int i = 0; i < kProcesses; ++i) {
    threads.emplace_back([&, i] {
      auto db = open();  // each "process" has its own Database
      reports[static_cast<std::size_t>(i)] = migrate_blocking(*db, "orders", kV1);
    });
  }
  for (auto& t : threads) t.join();
  std::size_t applied = 0;
  for (const auto& r : reports) {
    ASSERT_TRUE(r) << r.error().message << " " << r.error().internal;
    applied += r->applied.size();
  }
  EXPECT_EQ(applied, 2U);
  EXPECT_EQ(recorded("orders"), (std::vector<std::int64_t>{1, 2}));
}

INSTANTIATE_TEST_SUITE_P(Backends, MigrationsTest, ::testing::Values(Backend::sqlite, Backend::postgres),
                         [](const auto& p) { return testing::to_string(p.param); });

}  // namespace
}  // namespace mercado::storage
