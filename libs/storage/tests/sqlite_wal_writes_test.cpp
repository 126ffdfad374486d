// The "mercado" SQLite VFS (src/sqlite_wal_writes.hpp): a synced commit's log frames reach
// the kernel in a few writes instead of two per frame; unsynced writes are left alone; and a
// process killed in the middle of a transaction whose frames were still in memory leaves a
// database that opens, passes its integrity check and holds exactly what was committed.

#include "sqlite_wal_writes.hpp"

#include <csignal>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <mercado/storage/database.hpp>

#include "scratch_database.hpp"

namespace mercado::storage {
namespace {

using testing::Backend;
using testing::ScratchDatabase;

std::string blob(int i) {
  return std::string(1000, static_cast<char>('a' + i % 26));
}

class WalWritesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MERCADO_SCRATCH_OR_SKIP(scratch_, Backend::sqlite);
    ASSERT_NE(detail::wal_writes_vfs(), nullptr) << "the VFS did not register";
    auto db = open({});
    ASSERT_TRUE(db->transaction_blocking([](Tx& tx) {
      return tx.exec_script("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
    }));
  }

  std::shared_ptr<Database> open(DatabaseOptions o) {
    auto db = open_database(scratch_->url(), pool_, o);
    if (!db) throw std::runtime_error(db.error().internal);
    return *db;
  }

  static Result<void> insert(Tx& tx, int from, int n) {
    for (int i = from; i < from + n; ++i) {
      auto r = tx.exec("INSERT INTO t (id, body) VALUES ($1, $2)", i, blob(i));
      if (!r) return std::unexpected(r.error());
    }
    return {};
  }

  std::optional<ScratchDatabase> scratch_;
  core::BlockingPool pool_{2};
};

TEST_F(WalWritesTest, ASyncedCommitWritesItsFramesInAFewCalls) {
  auto db = open({});
  const auto before = detail::wal_writes_stats();
  const auto pages_before = db->stats().pages_written.load();
  // ≈ 200 KiB of rows: some 50 pages, 100 writes as SQLite asks for them.
  ASSERT_TRUE(db->transaction_blocking([](Tx& tx) { return insert(tx, 0, 200); }));
  const auto after = detail::wal_writes_stats();
  const auto frames = db->stats().pages_written.load() - pages_before;
  EXPECT_GE(frames, 40U);
  EXPECT_EQ(after.collected_writes - before.collected_writes, 2 * frames)
      << "a header and a page per frame";
  EXPECT_LE(after.flushes - before.flushes, 4U) << "128 KiB per write";
  // Another connection (a reader of the pool) sees all of it at once.
  auto n = db->transaction_blocking(
      [](Tx& tx) { return tx.query_value<std::int64_t>("SELECT COUNT(*) FROM t"); }, TxMode::read);
  ASSERT_TRUE(n && *n);
  EXPECT_EQ(**n, 200);
}

TEST_F(WalWritesTest, UnsyncedWritesAreNotCollected) {
  auto db = open({});
  const auto before = detail::wal_writes_stats();
  ASSERT_TRUE(
      db->transaction_blocking([](Tx& tx) { return insert(tx, 0, 50); }, TxMode::write_unsynced));
  EXPECT_EQ(detail::wal_writes_stats().collected_writes, before.collected_writes);
  auto n = db->transaction_blocking(
      [](Tx& tx) { return tx.query_value<std::int64_t>("SELECT COUNT(*) FROM t"); }, TxMode::read);
  ASSERT_TRUE(n && *n);
  EXPECT_EQ(**n, 50);
}

TEST_F(WalWritesTest, AProcessKilledMidTransactionLeavesTheCommittedStateIntact) {
  // The child commits 100 rows, then writes 3 000 more (3 MiB) in a transaction with a
  // small page cache, so that SQLite spills frames into the log mid-transaction and some sit
  // collected in memory, and is killed before the commit.
  // The child uses SQLite directly, through the VFS, on its own thread: no new threads after
  // fork (ThreadSanitizer cannot follow those).
  const std::string path = scratch_->url().substr(std::string("sqlite://").size());
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, detail::wal_writes_vfs()) !=
        SQLITE_OK)
      ::_exit(2);
    auto exec = [db](const std::string& sql) {
      return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK;
    };
    if (!exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-64"))
      ::_exit(3);
    detail::WalWritesScope collect(true);  // as SqliteDatabase does for a synced write
    auto rows = [&](int from, int n) {
      for (int i = from; i < from + n; ++i) {
        if (!exec("INSERT INTO t (id, body) VALUES (" + std::to_string(i) + ", '" + blob(i) + "')"))
          return false;
      }
      return true;
    };
    if (!exec("BEGIN IMMEDIATE") || !rows(0, 100) || !exec("COMMIT")) ::_exit(4);
    if (!exec("BEGIN IMMEDIATE") || !rows(100, 3000)) ::_exit(5);
    if (detail::wal_writes_pending() == 0) ::_exit(6);  // nothing held in memory: no test
    ::kill(::getpid(), SIGKILL);
    ::_exit(7);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  auto db = open({});
  auto check = db->transaction_blocking(
      [](Tx& tx) { return tx.query_value<std::string>("PRAGMA integrity_check"); }, TxMode::read);
  ASSERT_TRUE(check && *check);
  EXPECT_EQ(**check, "ok");
  auto n = db->transaction_blocking(
      [](Tx& tx) { return tx.query_value<std::int64_t>("SELECT COUNT(*) FROM t"); }, TxMode::read);
  ASSERT_TRUE(n && *n);
  EXPECT_EQ(**n, 100);
  // And it takes new writes.
  ASSERT_TRUE(db->transaction_blocking([](Tx& tx) { return insert(tx, 100, 10); }));
}

}  // namespace
}  // namespace mercado::storage
