// The "mercado" SQLite VFS (src/sqlite_wal_writes.hpp): a synced commit's log frames reach
// the kernel in a few writes instead of two per frame; unsynced writes are left alone; and a
// process killed in the middle of a transaction whose frames were still in memory leaves a
// database that opens, passes its integrity check and holds exactly what was committed.

#include <mercado/storage/database.hpp>

#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

#include "scratch_database.hpp"
#include "sqlite_wal_writes.hpp"

namespace mercado::storage {
namespace {

using testing::Backend;
using testing::ScratchDatabase;

std::string blob(int i) { return std::string(1000, static_cast<char>('a' + i % 26)); }

class WalWritesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MERCADO_SCRATCH_OR_SKIP(scratch_, Backend::sqlite);
    ASSERT_NE(detail::wal_writes_vfs(), nullptr) << "the VFS did not register";
    auto db = open({});
    ASSERT_TRUE(db->transaction_blocking(
        [](Tx& tx) { return tx.exec_script("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"); }));
  }

  std::shared_ptr<Database> open(DatabaseOptions o) {
    auto db = open_database(scratch_->url(), pool_, o);
    if (!db) throw std::runtime_error(db.error().internal);
    return *db;
  }

  static Result<void> insert(Tx& tx, int from, int n) {
    for (int i = from; i < from + n; ++i) {
      if (auto r = tx.exec("INSERT INTO t (id, body) VALUES ($1, $2)", i, blob(i)); !r) return std::unexpected(r.error());
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
  EXPECT_EQ(after.collected_writes - before.collected_writes, 2 * frames) << "a header and a page per frame";
  EXPECT_LE(after.flushes - before.flushes, 4U) << "128 KiB per write";
  // Another connection (a reader of the pool) sees all of it at once.
  auto n = db->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT COUNT(*) FROM t"); },
                                    TxMode::read);
  ASSERT_TRUE(n && *n);
  EXPECT_EQ(**n, 200);
}

TEST_F(WalWritesTest, UnsyncedWritesAreNotCollected) {
  auto db = open({});
  const auto before = detail::wal_writes_stats();
  ASSERT_TRUE(db->transaction_blocking([](Tx& tx) { return insert(tx, 0, 50); }, TxMode::write_unsynced));
  EXPECT_EQ(detail::wal_writes_stats().collected_writes, before.collected_writes);
  auto n = db->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT COUNT(*) FROM t"); },
                                    TxMode::read);
  ASSERT_TRUE(n && *n);
  EXPECT_EQ(**n, 50);
}

TEST_F(WalWritesTest, AProcessKilledMidTransactionLeavesTheCommittedStateIntact) {
  // The child commits 100 rows, then writes 3 000 more (3 MiB) in a transaction with a
  // small page cache, so that SQLite spills frames into the log mid-transaction and some sit
  // collected in memory, and is killed before the commit.
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    core::BlockingPool pool(1);
    auto db = open_database(scratch_->url(), pool, {.cache_kib = 64});
    if (!db) ::_exit(2);
    if (!(*db)->transaction_blocking([](Tx& tx) { return insert(tx, 0, 100); })) ::_exit(3);
    (void)(*db)->transaction_blocking([](Tx& tx) -> Result<void> {
      if (auto r = insert(tx, 100, 3000); !r) ::_exit(4);
      if (detail::wal_writes_stats().collected_writes == 0) ::_exit(5);  // nothing was collected: no test
      ::kill(::getpid(), SIGKILL);
      return {};
    });
    ::_exit(6);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);

  auto db = open({});
  auto check = db->transaction_blocking([](Tx& tx) { return tx.query_value<std::string>("PRAGMA integrity_check"); },
                                        TxMode::read);
  ASSERT_TRUE(check && *check);
  EXPECT_EQ(**check, "ok");
  auto n = db->transaction_blocking([](Tx& tx) { return tx.query_value<std::int64_t>("SELECT COUNT(*) FROM t"); },
                                    TxMode::read);
  ASSERT_TRUE(n && *n);
  EXPECT_EQ(**n, 100);
  // And it takes new writes.
  ASSERT_TRUE(db->transaction_blocking([](Tx& tx) { return insert(tx, 100, 10); }));
}

}  // namespace
}  // namespace mercado::storage
