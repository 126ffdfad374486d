// The storage suite: the same tests against SQLite (a scratch file) and PostgreSQL (a scratch
// schema on the test server).

#include <mercado/storage/database.hpp>
#include <mercado/storage/errors.hpp>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <atomic>
#include <future>
#include <numeric>
#include <set>
#include <thread>

#include "run_coroutine.hpp"
#include "sqlite_wal_writes.hpp"
#include "scratch_database.hpp"

namespace mercado::storage {
namespace {

namespace asio = boost::asio;
using testing::Backend;
using testing::run_coroutine;

// A write transaction on a thread of its own: runs `sql`, then stays open until `release`
// is ready. Returns (the thread, to join) once the statement has run.
std::thread hold_write_open(Database& db, std::string sql, std::shared_future<void> release) {
  std::promise<void> inside;
  auto ran = inside.get_future();
  std::thread t([&db, sql = std::move(sql), release, inside = std::move(inside)]() mutable {
    auto r = db.transaction_blocking([&](Tx& tx) {
      auto u = tx.exec(sql);
      inside.set_value();
      release.wait();
      return u;
    });
    EXPECT_TRUE(r);
  });
  ran.wait();
  return t;
}

class DatabaseTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    MERCADO_SCRATCH_OR_SKIP(scratch_, GetParam());
    db_ = open();
    auto r = db_->transaction_blocking([](Tx& tx) -> Result<void> {
      // The one dialect difference the suite needs: SQLite has no BYTEA.
      std::string blob = tx.dialect() == Dialect::postgres ? "BYTEA" : "BLOB";
      return tx.exec_script(
          "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT NOT NULL UNIQUE, price DOUBLE PRECISION,"
          " note TEXT, flag BOOLEAN, payload " + blob + ", qty BIGINT CHECK (qty >= 0));"
          "CREATE TABLE counter (id BIGINT PRIMARY KEY, n BIGINT NOT NULL);"
          "INSERT INTO counter VALUES (1, 0);");
    });
    ASSERT_TRUE(r) << r.error().internal;
  }

  std::shared_ptr<Database> open(DatabaseOptions options = {}) {
    auto db = open_database(scratch_->url(), pool_, options);
    if (!db) throw std::runtime_error(db.error().message + ": " + db.error().internal);
    return *db;
  }

  std::int64_t count(const char* table) {
    auto n = db_->transaction_blocking([&](Tx& tx) {
      return tx.query_value<std::int64_t>(std::string("SELECT COUNT(*) FROM ") + table);
    }, TxMode::read);
    EXPECT_TRUE(n);
    return n && *n ? **n : -1;
  }

  // Declared before the pool, so destroyed after it: a pool thread may still be inside
  // Asio's post() (signalling the io_context's condvar) when io_.run() has returned.
  asio::io_context io_;
  core::BlockingPool pool_{4};
  std::optional<testing::ScratchDatabase> scratch_;
  std::shared_ptr<Database> db_;
};

TEST_P(DatabaseTest, CommitsAndReadsBackEveryType) {
  const Blob payload{std::byte{0}, std::byte{0xff}, std::byte{'x'}};
  auto inserted = run_coroutine(db_->transaction([&](Tx& tx) -> Result<std::int64_t> {
    return tx.exec("INSERT INTO items (id, name, price, note, flag, payload, qty) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                   1, "tea", 2.5, std::optional<std::string>(), true, payload, std::uint32_t{3});
  }));
  ASSERT_TRUE(inserted) << inserted.error().internal;
  EXPECT_EQ(*inserted, 1);

  auto rows = run_coroutine(db_->transaction([&](Tx& tx) {
    return tx.query("SELECT id, name, price, note, flag, payload, qty FROM items WHERE name = $1", "tea");
  }, TxMode::read));
  ASSERT_TRUE(rows) << rows.error().internal;
  ASSERT_EQ(rows->size(), 1U);
  Row r = rows->front();
  EXPECT_EQ(r.get<std::int64_t>("id"), 1);
  EXPECT_EQ(r.get<std::string>("name"), "tea");
  EXPECT_DOUBLE_EQ(r.get<double>("price"), 2.5);
  EXPECT_FALSE(r.get<std::optional<std::string>>("note"));
  EXPECT_TRUE(r.get<bool>("flag"));
  EXPECT_EQ(r.get<Blob>("payload"), payload);
  EXPECT_EQ(r.get<int>("qty"), 3);
}

TEST_P(DatabaseTest, PlaceholdersBindByNumber) {
  auto rows = db_->transaction_blocking([](Tx& tx) { return tx.query("SELECT CAST($2 AS TEXT) || '-' || CAST($1 AS TEXT) AS s", "a", "b"); });
  ASSERT_TRUE(rows) << rows.error().internal;
  EXPECT_EQ(rows->front().get<std::string>("s"), "b-a");
}

TEST_P(DatabaseTest, RollsBackWhenTheFunctionFails) {
  auto r = run_coroutine(db_->transaction([](Tx& tx) -> Result<int> {
    if (auto i = tx.exec("INSERT INTO items (id, name) VALUES (1, 'a')"); !i) return std::unexpected(i.error());
    if (auto i = tx.exec("UPDATE counter SET n = 42"); !i) return std::unexpected(i.error());
    return fail(Errc::unprocessable, "insufficient stock");
  }));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unprocessable);
  EXPECT_EQ(r.error().message, "insufficient stock");
  EXPECT_EQ(count("items"), 0);
  auto n = db_->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT n FROM counter"); });
  EXPECT_EQ(**n, 0);
}

TEST_P(DatabaseTest, RollsBackWhenTheFunctionThrows) {
  EXPECT_THROW(run_coroutine(db_->transaction([](Tx& tx) -> Result<void> {
                 (void)tx.exec("INSERT INTO items (id, name) VALUES (1, 'a')");
                 throw std::logic_error("bug");
               })),
               std::logic_error);
  EXPECT_EQ(count("items"), 0);
  // The connection went back to the pool in a clean state.
  auto ok = db_->transaction_blocking([](Tx& tx) { return tx.exec("INSERT INTO items (id, name) VALUES (2, 'b')"); });
  EXPECT_TRUE(ok);
  EXPECT_EQ(count("items"), 1);
}

TEST_P(DatabaseTest, UniqueViolationIsAConflictAndAbortsTheTransaction) {
  ASSERT_TRUE(db_->transaction_blocking([](Tx& tx) { return tx.exec("INSERT INTO items (id, name) VALUES (1, 'a')"); }));
  std::optional<Error> later;
  auto r = db_->transaction_blocking([&](Tx& tx) -> Result<void> {
    (void)tx.exec("INSERT INTO items (id, name) VALUES (2, 'b')");
    auto dup = tx.exec("INSERT INTO items (id, name) VALUES (3, 'a')");
    EXPECT_FALSE(dup);
    if (dup) return {};
    EXPECT_EQ(dup.error().code, Errc::conflict);
    EXPECT_TRUE(is_unique_violation(dup.error())) << dup.error().internal;
    auto next = tx.exec("INSERT INTO items (id, name) VALUES (4, 'd')");
    if (!next) later = next.error();
    return {};  // ignoring the failure does not commit a half-applied transaction
  });
  ASSERT_FALSE(r);
  EXPECT_TRUE(is_unique_violation(r.error()));
  ASSERT_TRUE(later);
  EXPECT_TRUE(is_unique_violation(*later));
  EXPECT_EQ(count("items"), 1);
}

TEST_P(DatabaseTest, ASavepointUndoesOnlyItsOwnPart) {
  auto r = db_->transaction_blocking([](Tx& tx) -> Result<void> {
    if (auto i = tx.exec("INSERT INTO items (id, name) VALUES (1, 'a')"); !i) return std::unexpected(i.error());
    auto dup = tx.savepoint([](Tx& t) -> Result<void> {
      if (auto i = t.exec("INSERT INTO items (id, name) VALUES (2, 'b')"); !i) return std::unexpected(i.error());
      auto d = t.exec("INSERT INTO items (id, name) VALUES (3, 'a')");  // duplicate name
      if (!d) return std::unexpected(d.error());
      return {};
    });
    EXPECT_FALSE(dup);
    if (!dup) {
      EXPECT_TRUE(is_unique_violation(dup.error()));
    }
    auto refused = tx.savepoint([](Tx&) -> Result<int> { return fail(Errc::conflict, "wrong version"); });
    EXPECT_EQ(refused.error().message, "wrong version");
    auto kept = tx.savepoint([](Tx& t) { return t.exec("INSERT INTO items (id, name) VALUES (4, 'd')"); });
    EXPECT_TRUE(kept);
    return {};
  });
  ASSERT_TRUE(r) << r.error().internal;
  auto ids = db_->transaction_blocking([](Tx& tx) { return tx.query("SELECT id FROM items ORDER BY id"); });
  ASSERT_EQ(ids->size(), 2U);
  EXPECT_EQ((*ids)[0].get<int>(0), 1);
  EXPECT_EQ((*ids)[1].get<int>(0), 4);
}

// Savepoints share one name: RELEASE and ROLLBACK TO must reach the innermost open one.
TEST_P(DatabaseTest, NestedSavepointsUndoOnlyTheirOwnLevel) {
  auto r = db_->transaction_blocking([](Tx& tx) -> Result<void> {
    auto outer = tx.savepoint([](Tx& t) -> Result<void> {
      if (auto i = t.exec("INSERT INTO items (id, name) VALUES (1, 'a')"); !i) return std::unexpected(i.error());
      auto inner = t.savepoint([](Tx& u) -> Result<void> {
        if (auto i = u.exec("INSERT INTO items (id, name) VALUES (2, 'b')"); !i) return std::unexpected(i.error());
        return fail(Errc::conflict, "inner refused");
      });
      EXPECT_FALSE(inner);
      auto kept = t.savepoint([](Tx& u) { return u.exec("INSERT INTO items (id, name) VALUES (3, 'c')"); });
      EXPECT_TRUE(kept);
      return {};
    });
    EXPECT_TRUE(outer);
    // A savepoint whose inner one succeeded but which fails itself undoes both.
    auto undone = tx.savepoint([](Tx& t) -> Result<void> {
      auto inner = t.savepoint([](Tx& u) { return u.exec("INSERT INTO items (id, name) VALUES (4, 'd')"); });
      EXPECT_TRUE(inner);
      if (auto i = t.exec("INSERT INTO items (id, name) VALUES (5, 'e')"); !i) return std::unexpected(i.error());
      return fail(Errc::conflict, "outer refused");
    });
    EXPECT_FALSE(undone);
    return tx.savepoint([](Tx& t) -> Result<void> {
      if (auto i = t.exec("INSERT INTO items (id, name) VALUES (6, 'f')"); !i) return std::unexpected(i.error());
      return {};
    });
  });
  ASSERT_TRUE(r) << r.error().internal;
  auto ids = db_->transaction_blocking([](Tx& tx) { return tx.query("SELECT id FROM items ORDER BY id"); });
  ASSERT_TRUE(ids);
  std::vector<int> got;
  for (const auto& row : *ids) got.push_back(row.get<int>(0));
  EXPECT_EQ(got, (std::vector<int>{1, 3, 6}));
}

TEST_P(DatabaseTest, ConstraintFailuresAreTyped) {
  auto not_null = db_->transaction_blocking([](Tx& tx) { return tx.exec("INSERT INTO items (id) VALUES (1)"); });
  ASSERT_FALSE(not_null);
  EXPECT_EQ(not_null.error().code, Errc::unprocessable);
  EXPECT_EQ(not_null.error().type, kNotNullViolation);
  auto check = db_->transaction_blocking(
      [](Tx& tx) { return tx.exec("INSERT INTO items (id, name, qty) VALUES (1, 'a', $1)", -1); });
  ASSERT_FALSE(check);
  EXPECT_EQ(check.error().type, kCheckViolation);
  auto syntax = db_->transaction_blocking([](Tx& tx) { return tx.exec("INSERT INTO nowhere VALUES (1)"); });
  ASSERT_FALSE(syntax);
  EXPECT_EQ(syntax.error().code, Errc::internal);
  EXPECT_NE(syntax.error().internal.find("nowhere"), std::string::npos);
}

TEST_P(DatabaseTest, WrongParameterCountIsAnErrorValue) {
  auto r = db_->transaction_blocking([](Tx& tx) { return tx.exec("UPDATE counter SET n = $1 WHERE id = $2", 1); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::internal);
}

TEST_P(DatabaseTest, RunsOnAPoolWorkerAndResumesOnTheIoThread) {
  asio::io_context& io = io_;
  std::thread::id io_thread, tx_thread, resumed;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    io_thread = std::this_thread::get_id();
    auto r = co_await db_->transaction([&](Tx& tx) {
      tx_thread = std::this_thread::get_id();
      return tx.exec("UPDATE counter SET n = n + 1");
    });
    EXPECT_TRUE(r);
    resumed = std::this_thread::get_id();
  }, asio::detached);
  io.run();
  EXPECT_NE(tx_thread, io_thread);
  EXPECT_EQ(resumed, io_thread);
}

// DatabaseOptions::inline_reads: SQLite read transactions run on the caller's (io) thread,
// even while a write transaction is open on a worker; writes still go to the pool.
// PostgreSQL ignores the option (every call waits for the server).
TEST_P(DatabaseTest, InlineReadsRunOnTheCallersThreadWritesOnAWorker) {
  auto db = open({.inline_reads = true});
  asio::io_context& io = io_;
  std::thread::id io_thread, read_thread, write_thread;
  std::promise<void> reader_done;
  std::optional<std::int64_t> seen;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    io_thread = std::this_thread::get_id();
    // A writer holds its transaction open (on its own thread) until the read is done.
    std::thread holder = hold_write_open(*db, "UPDATE counter SET n = 7", reader_done.get_future().share());
    auto n = co_await db->transaction([&](Tx& tx) {
      read_thread = std::this_thread::get_id();
      return tx.query_value<std::int64_t>("SELECT n FROM counter");
    }, TxMode::read);
    reader_done.set_value();
    holder.join();
    if (n && *n) seen = **n;
    auto w = co_await db->transaction([&](Tx& tx) {
      write_thread = std::this_thread::get_id();
      return tx.exec("UPDATE counter SET n = n + 1");
    });
    EXPECT_TRUE(w);
  }, asio::detached);
  io.run();
  EXPECT_EQ(seen, std::optional<std::int64_t>(0));  // the open writer's change is not visible
  if (GetParam() == Backend::sqlite) {
    EXPECT_EQ(read_thread, io_thread);
  } else {
    EXPECT_NE(read_thread, io_thread);
  }
  EXPECT_NE(write_thread, io_thread);
}

// DatabaseOptions::inline_unsynced_writes: SQLite's unsynced write transactions run on the
// caller's thread; synced ones still go to the pool. PostgreSQL ignores the option.
TEST_P(DatabaseTest, InlineUnsyncedWritesRunOnTheCallersThread) {
  auto db = open({.inline_unsynced_writes = true});
  asio::io_context& io = io_;
  std::thread::id io_thread, unsynced_thread, synced_thread;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    io_thread = std::this_thread::get_id();
    auto u = co_await db->transaction([&](Tx& tx) {
      unsynced_thread = std::this_thread::get_id();
      return tx.exec("UPDATE counter SET n = n + 1");
    }, TxMode::write_unsynced);
    EXPECT_TRUE(u);
    auto w = co_await db->transaction([&](Tx& tx) {
      synced_thread = std::this_thread::get_id();
      return tx.exec("UPDATE counter SET n = n + 1");
    });
    EXPECT_TRUE(w);
  }, asio::detached);
  io.run();
  if (GetParam() == Backend::sqlite) {
    EXPECT_EQ(unsynced_thread, io_thread);
  } else {
    EXPECT_NE(unsynced_thread, io_thread);
  }
  EXPECT_NE(synced_thread, io_thread);
  auto n = db->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT n FROM counter"); },
                                    TxMode::read);
  ASSERT_TRUE(n && *n);
  EXPECT_EQ(**n, 2);
}

// Database::sync_log after unsynced commits succeeds on both backends; on SQLite it syncs
// the write-ahead log once (the unsynced commits did not), through the connection's handle
// of it (the counting VFS sees it).
TEST_P(DatabaseTest, SyncLogSyncsWhatUnsyncedCommitsLeftUnsynced) {
  const auto before = detail::wal_writes_stats();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(db_->transaction_blocking([](Tx& tx) { return tx.exec("UPDATE counter SET n = n + 1"); },
                                          TxMode::write_unsynced));
  }
  const auto unsynced = detail::wal_writes_stats();
  auto synced = run_coroutine(db_->sync_log());
  ASSERT_TRUE(synced) << synced.error().internal;
  const auto after = detail::wal_writes_stats();
  if (GetParam() == Backend::sqlite) {
    EXPECT_EQ(unsynced.log_syncs, before.log_syncs);
    EXPECT_EQ(after.log_syncs, unsynced.log_syncs + 1);
  }
  EXPECT_EQ(count("counter"), 1);
}

TEST_P(DatabaseTest, ConcurrentWritersNeverLoseAnUpdate) {
  constexpr int kCoroutines = 64;
  asio::io_context& io = io_;
  std::atomic<int> failures{0};
  for (int i = 0; i < kCoroutines; ++i) {
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
      auto r = co_await db_->transaction([](Tx& tx) -> Result<void> {
        // PostgreSQL (READ COMMITTED) needs the row lock; SQLite writers are serialized.
        auto n = tx.query_value<std::int64_t>(tx.dialect() == Dialect::postgres
                                                  ? "SELECT n FROM counter WHERE id = 1 FOR UPDATE"
                                                  : "SELECT n FROM counter WHERE id = 1");
        if (!n) return std::unexpected(n.error());
        auto u = tx.exec("UPDATE counter SET n = $1 WHERE id = 1", **n + 1);
        if (!u) return std::unexpected(u.error());
        return {};
      });
      if (!r) ++failures;
    }, asio::detached);
  }
  io.run();
  EXPECT_EQ(failures.load(), 0);
  auto n = db_->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT n FROM counter"); });
  EXPECT_EQ(**n, kCoroutines);
}

TEST_P(DatabaseTest, CommitHooksRunAfterCommitOnly) {
  int committed = 0, rolled_back = 0;
  ASSERT_TRUE(db_->transaction_blocking([&](Tx& tx) {
    tx.on_commit([&] { ++committed; });
    return tx.exec("UPDATE counter SET n = 1");
  }));
  auto r = db_->transaction_blocking([&](Tx& tx) -> Result<void> {
    tx.on_commit([&] { ++rolled_back; });
    return fail(Errc::conflict, "no");
  });
  EXPECT_FALSE(r);
  EXPECT_EQ(committed, 1);
  EXPECT_EQ(rolled_back, 0);
}

TEST_P(DatabaseTest, ReadersDoNotWaitForAnOpenWriter) {
  // Hold a write transaction open until the reader has finished.
  std::promise<void> reader_done;
  std::thread writer = hold_write_open(*db_, "UPDATE counter SET n = 5", reader_done.get_future().share());
  auto n = db_->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT n FROM counter"); },
                                     TxMode::read);
  ASSERT_TRUE(n) << n.error().internal;
  EXPECT_EQ(**n, 0);  // the writer's change is not visible before it commits
  reader_done.set_value();
  writer.join();
  auto after = db_->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT n FROM counter"); });
  EXPECT_EQ(**after, 5);
}

TEST_P(DatabaseTest, ReadOnlyTransactionsRefuseWrites) {
  auto r = db_->transaction_blocking([](Tx& tx) { return tx.exec("UPDATE counter SET n = 9"); }, TxMode::read);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::internal);
  auto n = db_->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT n FROM counter"); });
  EXPECT_EQ(**n, 0);
  // The connection is writable again afterwards.
  EXPECT_TRUE(db_->transaction_blocking([](Tx& tx) { return tx.exec("UPDATE counter SET n = 9"); }));
}

TEST_P(DatabaseTest, ReadOnlyTransactionsRunSavepointsButRefuseWritingScripts) {
  auto ok = db_->transaction_blocking([](Tx& tx) {
    return tx.savepoint([](Tx& inner) { return inner.query_value<std::int64_t>("SELECT n FROM counter"); });
  }, TxMode::read);
  ASSERT_TRUE(ok) << ok.error().internal;
  auto r = db_->transaction_blocking([](Tx& tx) { return tx.exec_script("SELECT 1; UPDATE counter SET n = 7"); },
                                     TxMode::read);
  ASSERT_FALSE(r);
  auto n = db_->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT n FROM counter"); });
  EXPECT_EQ(**n, 0);
  // Many reads and writes alternating on the same connections keep working.
  for (int i = 1; i <= 20; ++i) {
    ASSERT_TRUE(db_->transaction_blocking([i](Tx& tx) { return tx.exec("UPDATE counter SET n = $1", i); }));
    auto v = db_->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT n FROM counter"); },
                                       TxMode::read);
    ASSERT_TRUE(v);
    EXPECT_EQ(**v, i);
  }
}

TEST_P(DatabaseTest, ManyRowsRoundTrip) {
  ASSERT_TRUE(db_->transaction_blocking([](Tx& tx) -> Result<void> {
    for (int i = 0; i < 2000; ++i) {
      auto r = tx.exec("INSERT INTO items (id, name, qty) VALUES ($1, $2, $3)", i, "item-" + std::to_string(i), i);
      if (!r) return std::unexpected(r.error());
    }
    return {};
  }));
  auto rows = db_->transaction_blocking([](Tx& tx) { return tx.query("SELECT id, qty FROM items ORDER BY id"); });
  ASSERT_TRUE(rows);
  ASSERT_EQ(rows->size(), 2000U);
  std::int64_t sum = 0;
  for (const Row& r : *rows) sum += r.get<std::int64_t>("qty");
  EXPECT_EQ(sum, 1999 * 2000 / 2);
}

// Group commit: many concurrent write transactions, some failing in different ways; each
// caller gets exactly its own outcome and only the successful ones are applied -- whether
// the members run in savepoints of their own (Rerun::never), without (Rerun::allowed: a
// failure makes the group run again with savepoints), or a mix of both.
TEST_P(DatabaseTest, GroupCommitKeepsEachTransactionsOutcomeItsOwn) {
  enum class Variant { savepoints, reruns, mixed };
  for (Variant variant : {Variant::savepoints, Variant::reruns, Variant::mixed}) {
    SCOPED_TRACE(static_cast<int>(variant));
    ASSERT_TRUE(db_->transaction_blocking([](Tx& tx) { return tx.exec("DELETE FROM items"); }));
    auto grouped = open({.group_commit = true, .group_commit_max = 8});
    constexpr int kCallers = 60;
    // i % 6: 1 refuses after writing, 2 throws after writing, 3 duplicates caller 0's name,
    // anything else commits.
    auto rerun_of = [variant](int i) {
      if (variant == Variant::savepoints) return Rerun::never;
      if (variant == Variant::reruns) return Rerun::allowed;
      return i % 5 == 4 ? Rerun::never : Rerun::allowed;
    };
    asio::io_context io;
    std::vector<std::optional<Result<std::int64_t>>> results(kCallers);
    std::vector<int> thrown(kCallers, 0);
    std::vector<int> runs(kCallers, 0);  // each function's runs (the pool's one worker: no race)
    std::atomic<int> hooks{0};
    for (int i = 0; i < kCallers; ++i) {
      asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
        try {
          results[i] = co_await grouped->transaction(  // coro-capture-ok: an int
              [i, &hooks, &runs](Tx& tx) -> Result<std::int64_t> {
                ++runs[i];
                tx.on_commit([&hooks] { ++hooks; });
                std::string name = i % 6 == 3 ? "item-0" : "item-" + std::to_string(i);
                auto r = tx.exec("INSERT INTO items (id, name) VALUES ($1, $2)", i, name);
                if (!r) return std::unexpected(r.error());
                if (i % 6 == 1) return fail(Errc::unprocessable, "refused " + std::to_string(i));
                if (i % 6 == 2) throw std::runtime_error("bug " + std::to_string(i));
                return std::int64_t{i};
              },
              TxMode::write, rerun_of(i));
        } catch (const std::runtime_error&) {
          thrown[i] = 1;
        }
      }, asio::detached);
    }
    io.run();
    std::set<std::int64_t> expected;
    for (int i = 0; i < kCallers; ++i) {
      SCOPED_TRACE(i);
      if (variant == Variant::savepoints) {
        EXPECT_EQ(runs[i], 1);
      }
      if (i % 6 == 2) {
        EXPECT_EQ(thrown[i], 1);
        EXPECT_FALSE(results[i]);
        continue;
      }
      ASSERT_TRUE(results[i]);
      const auto& r = *results[i];
      if (i % 6 == 1) {
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().message, "refused " + std::to_string(i));
      } else if (i % 6 == 3) {
        ASSERT_FALSE(r);
        EXPECT_TRUE(is_unique_violation(r.error())) << r.error().internal;
      } else {
        ASSERT_TRUE(r) << r.error().internal;
        EXPECT_EQ(*r, i);
        expected.insert(i);
      }
    }
    auto ids = db_->transaction_blocking([](Tx& tx) { return tx.query("SELECT id FROM items ORDER BY id"); });
    ASSERT_TRUE(ids);
    std::set<std::int64_t> stored;
    for (const Row& r : *ids) stored.insert(r.get<std::int64_t>(0));
    EXPECT_EQ(stored, expected);
    EXPECT_EQ(hooks.load(), static_cast<int>(expected.size()));  // hooks of undone members or runs never run
    // Stats: every member counts as a write transaction; commits are groups (at most 8 each).
    const auto& st = grouped->stats();  // a Database of its own: only the callers' transactions
    EXPECT_EQ(st.write_transactions.load(), static_cast<std::uint64_t>(kCallers));
    EXPECT_GE(st.write_commits.load(), static_cast<std::uint64_t>(kCallers / 8));
    EXPECT_LT(st.write_commits.load(), static_cast<std::uint64_t>(kCallers));  // 60 callers at once: some grouped
    EXPECT_GT(st.write_busy_ns.load(), 0U);
    EXPECT_EQ(st.read_transactions.load(), 0U);
    const int total_runs = std::accumulate(runs.begin(), runs.end(), 0);
    if (variant == Variant::savepoints) {
      EXPECT_EQ(st.group_reruns.load(), 0U);
    } else if (variant == Variant::reruns) {
      // Every group holding a failing caller failed without savepoints and ran again (its
      // failing members twice at least); a group runs again only after such a failure.
      EXPECT_GT(st.group_reruns.load(), 0U);
      EXPECT_LE(st.group_reruns.load(), static_cast<std::uint64_t>(kCallers / 2));
      EXPECT_GT(total_runs, kCallers);
    } else {
      // A group with a member that never reruns used savepoints: reruns are fewer.
      EXPECT_LE(st.group_reruns.load(), static_cast<std::uint64_t>(kCallers / 2));
    }
  }
}

// A group whose members all allow a rerun and all succeed runs each of them once (no
// rerun), and a member's own savepoints nest inside it as usual.
TEST_P(DatabaseTest, RerunnableMembersThatSucceedRunOnce) {
  auto grouped = open({.group_commit = true, .group_commit_max = 16});
  constexpr int kCallers = 24;
  asio::io_context io;
  std::vector<int> runs(kCallers, 0);
  std::vector<std::optional<Result<void>>> results(kCallers);
  for (int i = 0; i < kCallers; ++i) {
    asio::co_spawn(io, [&, i]() -> asio::awaitable<void> {
      results[i] = co_await grouped->transaction(  // coro-capture-ok: an int
          [i, &runs](Tx& tx) -> Result<void> {
            ++runs[i];
            // A savepoint of the function's own that fails: undone, and the function goes on.
            auto inner = tx.savepoint([i](Tx& in) -> Result<void> {
              if (auto r = in.exec("INSERT INTO items (id, name) VALUES ($1, 'undone')", 5000 + i); !r) {
                return std::unexpected(r.error());
              }
              return fail(Errc::conflict, "changed my mind");
            });
            if (inner) return fail(Errc::internal, "the inner savepoint should have failed");
            auto r = tx.exec("INSERT INTO items (id, name) VALUES ($1, $2)", 1000 + i, "rerunnable-" + std::to_string(i));
            if (!r) return std::unexpected(r.error());
            return {};
          },
          TxMode::write, Rerun::allowed);
    }, asio::detached);
  }
  io.run();
  for (int i = 0; i < kCallers; ++i) {
    SCOPED_TRACE(i);
    ASSERT_TRUE(results[i]);
    EXPECT_TRUE(*results[i]) << (*results[i] ? "" : results[i]->error().internal);
    EXPECT_EQ(runs[i], 1);
  }
  EXPECT_EQ(grouped->stats().group_reruns.load(), 0U);
  EXPECT_LT(grouped->stats().write_commits.load(), static_cast<std::uint64_t>(kCallers));  // some grouped
  auto kept = db_->transaction_blocking(
      [](Tx& tx) { return tx.query_value<std::int64_t>("SELECT COUNT(*) FROM items WHERE id >= 1000 AND id < 2000"); });
  ASSERT_TRUE(kept && *kept);
  EXPECT_EQ(**kept, kCallers);
  auto undone = db_->transaction_blocking(
      [](Tx& tx) { return tx.query_value<std::int64_t>("SELECT COUNT(*) FROM items WHERE id >= 5000"); });
  ASSERT_TRUE(undone && *undone);
  EXPECT_EQ(**undone, 0);
}

// A rerunnable transaction alone in its group that fails runs once: the rollback undid just
// it. It gets its own error -- or, when a statement failed and it returned a value anyway,
// the statement's error, as a savepoint would have given it.
TEST_P(DatabaseTest, AFailingRerunnableTransactionAloneInItsGroupRunsOnce) {
  auto grouped = open({.group_commit = true});
  int runs = 0;
  auto refused = run_coroutine(grouped->transaction(
      [&runs](Tx& tx) -> Result<void> {
        ++runs;
        if (auto r = tx.exec("INSERT INTO items (id, name) VALUES (7, 'seven')"); !r) return std::unexpected(r.error());
        return fail(Errc::conflict, "not today");
      },
      TxMode::write, Rerun::allowed));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().message, "not today");
  EXPECT_EQ(runs, 1);
  ASSERT_TRUE(db_->transaction_blocking([](Tx& tx) { return tx.exec("INSERT INTO items (id, name) VALUES (8, 'eight')"); }));
  runs = 0;
  auto broken = run_coroutine(grouped->transaction(
      [&runs](Tx& tx) -> Result<std::int64_t> {
        ++runs;
        (void)tx.exec("INSERT INTO items (id, name) VALUES (9, 'eight')");  // a unique violation, ignored
        return std::int64_t{1};
      },
      TxMode::write, Rerun::allowed));
  ASSERT_FALSE(broken);
  EXPECT_TRUE(is_unique_violation(broken.error())) << broken.error().internal;
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(grouped->stats().group_reruns.load(), 0U);
  auto n = db_->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT COUNT(*) FROM items"); });
  ASSERT_TRUE(n && *n);
  EXPECT_EQ(**n, 1);  // only 'eight'
}

TEST_P(DatabaseTest, StatsCountTransactionsAndTheirTimes) {
  const auto& st = db_->stats();
  const auto writes = st.write_transactions.load(), commits = st.write_commits.load(),
             reads = st.read_transactions.load();  // the fixture's set-up wrote already
  asio::io_context& io = io_;
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    for (int i = 0; i < 3; ++i) {
      EXPECT_TRUE(co_await db_->transaction([](Tx& tx) { return tx.exec("UPDATE counter SET n = n + 1"); }));
    }
    EXPECT_FALSE(co_await db_->transaction([](Tx&) -> Result<void> { return fail(Errc::conflict, "no"); }));
    EXPECT_TRUE(co_await db_->transaction([](Tx& tx) { return tx.query("SELECT n FROM counter"); }, TxMode::read));
  }, asio::detached);
  io.run();
  // Blocking transactions (on the caller's thread) count too.
  EXPECT_TRUE(db_->transaction_blocking([](Tx& tx) { return tx.exec("UPDATE counter SET n = n + 1"); }));
  EXPECT_EQ(st.write_transactions.load() - writes, 5U);  // a rolled-back one counts too
  EXPECT_EQ(st.write_commits.load() - commits, 4U);
  EXPECT_EQ(st.read_transactions.load() - reads, 1U);
  EXPECT_GT(st.write_busy_ns.load(), 0U);
  EXPECT_GT(st.read_busy_ns.load(), 0U);
  // Pages written: SQLite counts the WAL frames of each commit (a one-row update writes at
  // least its table's page); PostgreSQL does not count them.
  const auto pages = st.pages_written.load();
  if (db_->dialect() == Dialect::sqlite) {
    EXPECT_GE(pages, 4U);
    EXPECT_TRUE(db_->transaction_blocking([](Tx& tx) { return tx.query("SELECT n FROM counter"); }, TxMode::read));
    EXPECT_EQ(st.pages_written.load(), pages) << "a read writes nothing";
    EXPECT_TRUE(db_->transaction_blocking([](Tx& tx) { return tx.exec("UPDATE counter SET n = n + 1"); }));
    EXPECT_GE(st.pages_written.load(), pages + 1);
  } else {
    EXPECT_EQ(pages, 0U);
  }
}

// TxMode::write_unsynced commits like a write (atomically, visible at once) without waiting
// for the disk, and leaves the connection as synced as before for the next transaction --
// also after a rollback.
TEST_P(DatabaseTest, AnUnsyncedWriteCommitsAndLeavesTheConnectionSynced) {
  auto one = open({.max_connections = 1});  // SQLite: every write below runs on the writer connection
  const bool sqlite = one->dialect() == Dialect::sqlite;
  std::string inside;  // the sync level the unsynced transaction ran with
  ASSERT_TRUE(one->transaction_blocking([&](Tx& tx) -> Result<void> {
    if (sqlite) {
      auto level = tx.query_value<std::int64_t>("PRAGMA synchronous");
      if (!level) return std::unexpected(level.error());
      inside = *level ? std::to_string(**level) : "";
    } else {
      auto level = tx.query_value<std::string>("SHOW synchronous_commit");
      if (!level) return std::unexpected(level.error());
      inside = level->value_or("");
    }
    auto r = tx.exec("UPDATE counter SET n = n + 5");
    if (!r) return std::unexpected(r.error());
    return {};
  }, TxMode::write_unsynced));
  // SQLite: NORMAL (1), not OFF (0), whose checkpoints would not sync either.
  EXPECT_EQ(inside, sqlite ? "1" : "off");
  auto failed = one->transaction_blocking([](Tx& tx) -> Result<void> {
    auto r = tx.exec("UPDATE counter SET n = n + 100");
    if (!r) return std::unexpected(r.error());
    return fail(Errc::conflict, "changed my mind");
  }, TxMode::write_unsynced);
  ASSERT_FALSE(failed);
  auto n = one->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT n FROM counter"); },
                                     TxMode::read);
  ASSERT_TRUE(n && *n);
  EXPECT_EQ(**n, 5);
  if (one->dialect() == Dialect::sqlite) {
    // Asked in a write: on the connection the unsynced writes ran on.
    auto level = one->transaction_blocking(
        [](Tx& tx) { return tx.query_value<std::int64_t>("PRAGMA synchronous"); }, TxMode::write);
    ASSERT_TRUE(level && *level);
    EXPECT_EQ(**level, 2) << "synchronous=FULL again";
  } else {
    auto level = one->transaction_blocking(
        [](Tx& tx) { return tx.query_value<std::string>("SHOW synchronous_commit"); }, TxMode::read);
    ASSERT_TRUE(level && *level);
    EXPECT_EQ(**level, "on");
  }
  EXPECT_EQ(one->stats().write_transactions.load(), sqlite ? 3U : 2U);  // counted as writes
}

INSTANTIATE_TEST_SUITE_P(Backends, DatabaseTest, ::testing::Values(Backend::sqlite, Backend::postgres),
                         [](const auto& p) { return testing::to_string(p.param); });

// Backend-specific behaviour.

TEST(SqliteDatabase, UsesWalAndWaitsForAnotherProcessOnlyUpToTheBusyTimeout) {
  std::optional<testing::ScratchDatabase> scratch;
  MERCADO_SCRATCH_OR_SKIP(scratch, Backend::sqlite);
  core::BlockingPool pool(2);
  // Two Database objects on one file behave like two processes (separate locks).
  auto a = open_database(scratch->url(), pool);
  auto b = open_database(scratch->url(), pool, {.busy_timeout = std::chrono::milliseconds(50)});
  ASSERT_TRUE(a && b);
  auto mode = (*a)->transaction_blocking([](Tx& tx) { return tx.query_value<std::string>("PRAGMA journal_mode"); });
  EXPECT_EQ(**mode, "wal");
  ASSERT_TRUE((*a)->transaction_blocking([](Tx& tx) { return tx.exec_script("CREATE TABLE t (x INTEGER)"); }));

  std::promise<void> release;
  std::thread holder = hold_write_open(**a, "INSERT INTO t VALUES (1)", release.get_future().share());
  auto blocked = (*b)->transaction_blocking([](Tx& tx) { return tx.exec("INSERT INTO t VALUES (2)"); });
  release.set_value();
  holder.join();
  ASSERT_FALSE(blocked);
  EXPECT_EQ(blocked.error().code, Errc::unavailable);
  EXPECT_EQ(blocked.error().type, kBusy);
  EXPECT_TRUE(is_transient(blocked.error()));
  EXPECT_TRUE((*b)->transaction_blocking([](Tx& tx) { return tx.exec("INSERT INTO t VALUES (3)"); }));
}

TEST(SqliteDatabase, AWriterWaitsForAnotherProcessesCommitAndThenWrites) {
  std::optional<testing::ScratchDatabase> scratch;
  MERCADO_SCRATCH_OR_SKIP(scratch, Backend::sqlite);
  core::BlockingPool pool(2);
  auto a = open_database(scratch->url(), pool);
  auto b = open_database(scratch->url(), pool);  // the default busy timeout (10 s)
  ASSERT_TRUE(a && b);
  ASSERT_TRUE((*a)->transaction_blocking([](Tx& tx) { return tx.exec_script("CREATE TABLE t (x INTEGER)"); }));
  std::promise<void> holding;
  std::thread holder([&] {
    EXPECT_TRUE((*a)->transaction_blocking([&](Tx& tx) {
      auto i = tx.exec("INSERT INTO t VALUES (1)");
      holding.set_value();
      std::this_thread::sleep_for(std::chrono::milliseconds(30));  // a slow commit elsewhere
      return i;
    }));
  });
  holding.get_future().wait();
  // b's busy handler retries (50 us, doubling up to 1 ms) until a has committed.
  EXPECT_TRUE((*b)->transaction_blocking([](Tx& tx) { return tx.exec("INSERT INTO t VALUES (2)"); }));
  holder.join();
  auto n = (*b)->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT COUNT(*) FROM t"); });
  ASSERT_TRUE(n && *n);
  EXPECT_EQ(**n, 2);
}

TEST(SqliteDatabase, ProcessesOpeningTheSameNewFileAtOnceAllGetIt) {
  // Switching a new file to WAL needs its exclusive lock; SQLite refuses that at once (no
  // busy handler) to all but one of several openers, who must try again. `mercado up`
  // opens the SQLite bus's new file from five services at once. (Two Database objects on one
  // file lock it as two processes would.) Without the retry, about 60 % of runs of 40
  // rounds failed: 200 make a miss unlikely.
  core::BlockingPool pool(1);
  testing::ScratchDir dir;
  constexpr int kRounds = 200;
  constexpr int kOpeners = 6;
  int failures = 0;
  std::string first_failure;
  for (int round = 0; round < kRounds; ++round) {
    const std::string url = "sqlite://" + dir.path() + "/bus-" + std::to_string(round) + ".db";
    std::atomic<bool> go{false};
    std::vector<Result<std::shared_ptr<Database>>> opened(kOpeners, std::unexpected(Error(Errc::internal, "")));
    std::vector<std::thread> openers;
    for (int i = 0; i < kOpeners; ++i) {
      openers.emplace_back([&, i] {
        while (!go.load()) std::this_thread::yield();
        opened[static_cast<std::size_t>(i)] = open_database(url, pool);
      });
    }
    go = true;
    for (auto& t : openers) t.join();
    for (auto& o : opened) {
      if (o) continue;
      if (failures++ == 0) first_failure = o.error().message + " (" + o.error().internal + ")";
    }
  }
  EXPECT_EQ(failures, 0) << "first: " << first_failure;
}

// Writes run on one connection, whose page cache no other connection's commit invalidates;
// a read runs on it too when no write holds it, and on another connection (without waiting)
// when one does. (Nor while a write waits for it: a race to set up, not tested here.) A
// temporary table, which exists only on the connection that created it, shows which
// connection a transaction ran on.
TEST(SqliteDatabase, WritesRunOnOneConnectionAndReadsUseItWhenNoWriteHoldsIt) {
  std::optional<testing::ScratchDatabase> scratch;
  MERCADO_SCRATCH_OR_SKIP(scratch, Backend::sqlite);
  core::BlockingPool pool(2);
  auto opened = open_database(scratch->url(), pool, {.max_connections = 3});
  ASSERT_TRUE(opened);
  Database& db = **opened;
  auto sum = [](Tx& tx) { return tx.query_value<std::int64_t>("SELECT SUM(x) FROM temp.mine"); };
  ASSERT_TRUE(db.transaction_blocking([](Tx& tx) { return tx.exec_script("CREATE TEMP TABLE mine (x INTEGER)"); }));
  ASSERT_TRUE(db.transaction_blocking([](Tx& tx) { return tx.exec("INSERT INTO temp.mine VALUES (1)"); }));

  auto idle = db.transaction_blocking(sum, TxMode::read);
  ASSERT_TRUE(idle) << "a read with no write running uses the writer's connection: " << idle.error().internal;
  EXPECT_EQ(**idle, 1);

  // A write held open: reads neither wait for it nor use its connection.
  std::promise<void> release;
  std::thread holder = hold_write_open(db, "INSERT INTO temp.mine VALUES (2)", release.get_future().share());
  auto elsewhere = db.transaction_blocking(sum, TxMode::read);
  auto plain = db.transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT 41 + 1"); }, TxMode::read);
  release.set_value();
  holder.join();
  EXPECT_FALSE(elsewhere) << "ran on the writer's connection while a write held it";
  ASSERT_TRUE(plain);
  EXPECT_EQ(**plain, 42);

  // The pool's connections (just used by those reads) never take a write.
  for (int i = 0; i < 3; ++i) {
    auto w = db.transaction_blocking([](Tx& tx) { return tx.exec("INSERT INTO temp.mine VALUES (10)"); });
    ASSERT_TRUE(w) << w.error().internal;
  }
  auto after = db.transaction_blocking(sum, TxMode::write);
  ASSERT_TRUE(after);
  EXPECT_EQ(**after, 33);
}

TEST(SqliteDatabase, ReportsAFileItCannotOpen) {
  core::BlockingPool pool(1);
  auto db = open_database("sqlite:///nonexistent-dir/for/sure/x.db", pool);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, Errc::unavailable);
}

TEST(PostgresDatabase, ReplacesAConnectionTheServerDropped) {
  std::optional<testing::ScratchDatabase> scratch;
  MERCADO_SCRATCH_OR_SKIP(scratch, Backend::postgres);
  core::BlockingPool pool(2);
  auto db = open_database(scratch->url(), pool, {.max_connections = 1});
  ASSERT_TRUE(db) << db.error().internal;
  auto pid = (*db)->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT pg_backend_pid()"); });
  ASSERT_TRUE(pid);
  // Another session terminates our pooled connection (as a server restart or an admin would).
  auto killer = open_database(scratch->url(), pool);
  ASSERT_TRUE(killer);
  auto killed = (*killer)->transaction_blocking(
      [&](Tx& tx) { return tx.query_value<bool>("SELECT pg_terminate_backend($1::int)", **pid); });
  ASSERT_TRUE(killed) << killed.error().internal;
  auto again = (*db)->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT pg_backend_pid()"); });
  ASSERT_TRUE(again) << again.error().internal;
  EXPECT_NE(**again, **pid);
}

TEST(PostgresDatabase, ReportsAServerItCannotReach) {
  core::BlockingPool pool(1);
  // Port 1 on loopback: nothing listens there.
  auto db = open_database("postgres://nobody@127.0.0.1:1/none", pool);
  ASSERT_FALSE(db);
  EXPECT_EQ(db.error().code, Errc::unavailable);
  EXPECT_EQ(db.error().internal.find("s3cret"), std::string::npos);
}

}  // namespace
}  // namespace mercado::storage
