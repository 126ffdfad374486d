// Tx::savepoint's bookkeeping against a transaction that records its statements and fails
// the ones it is told to (a failed RELEASE cannot be provoked on a real database at will).
#include <mercado/storage/tx.hpp>

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace mercado::storage {
namespace {

class ScriptedTx final : public Tx {
 public:
  Dialect dialect() const noexcept override { return Dialect::sqlite; }
  std::vector<std::string> log;
  std::set<std::string> failing;  // statements that fail (every time)

 protected:
  Result<std::int64_t> do_exec(std::string_view sql, std::span<const Param>) override {
    if (auto r = record(sql); !r) return std::unexpected(r.error());
    return 1;
  }
  Result<Rows> do_query(std::string_view sql, std::span<const Param>) override {
    if (auto r = record(sql); !r) return std::unexpected(r.error());
    return Rows{};
  }
  Result<void> do_script(std::string_view sql) override { return record(sql); }

 private:
  Result<void> record(std::string_view sql) {
    log.emplace_back(sql);
    if (failing.contains(std::string(sql))) return fail(Errc::unavailable, "refused: " + std::string(sql));
    return {};
  }
};

TEST(TxSavepoints, NestAndUndoWithOneName) {
  ScriptedTx tx;
  auto outer = tx.savepoint([](Tx& t) -> Result<void> {
    (void)t.exec("INSERT a");
    auto inner = t.savepoint([](Tx& u) -> Result<void> {
      (void)u.exec("INSERT b");
      return fail(Errc::conflict, "no");
    });
    EXPECT_FALSE(inner);
    return {};
  });
  EXPECT_TRUE(outer);
  EXPECT_FALSE(tx.failure());
  EXPECT_EQ(tx.log, (std::vector<std::string>{"SAVEPOINT mercado_sp", "INSERT a", "SAVEPOINT mercado_sp", "INSERT b",
                                              "ROLLBACK TO SAVEPOINT mercado_sp", "RELEASE SAVEPOINT mercado_sp",
                                              "RELEASE SAVEPOINT mercado_sp"}));
}

// An inner RELEASE that fails leaves the inner savepoint open: the outer one's undo would
// reach it instead of its own (same name) and keep the outer writes. So the failure sticks:
// no further statement runs, and the transaction as a whole fails (it is rolled back).
TEST(TxSavepoints, AFailedReleaseFailsTheWholeTransaction) {
  ScriptedTx tx;
  tx.failing.insert("RELEASE SAVEPOINT mercado_sp");
  auto outer = tx.savepoint([](Tx& t) -> Result<void> {
    if (auto a = t.exec("INSERT a"); !a) return std::unexpected(a.error());
    auto inner = t.savepoint([](Tx& u) { return u.exec("INSERT b"); });
    if (!inner) return std::unexpected(inner.error());
    return {};
  });
  ASSERT_FALSE(outer);
  EXPECT_EQ(outer.error().message, "refused: RELEASE SAVEPOINT mercado_sp");
  ASSERT_TRUE(tx.failure());
  EXPECT_EQ(tx.log, (std::vector<std::string>{"SAVEPOINT mercado_sp", "INSERT a", "SAVEPOINT mercado_sp", "INSERT b",
                                              "RELEASE SAVEPOINT mercado_sp"}));
  // Later members of a group commit cannot run either.
  auto later = tx.savepoint([](Tx& t) { return t.exec("INSERT c"); });
  EXPECT_FALSE(later);
  EXPECT_EQ(tx.log.size(), 5U);
}

// A member's own statement error is undone by its savepoint and does not stick.
TEST(TxSavepoints, AStatementErrorIsUndoneAndTheTransactionGoesOn) {
  ScriptedTx tx;
  tx.failing.insert("INSERT bad");
  auto member = tx.savepoint([](Tx& t) { return t.exec("INSERT bad"); });
  EXPECT_FALSE(member);
  EXPECT_FALSE(tx.failure());
  auto next = tx.savepoint([](Tx& t) { return t.exec("INSERT good"); });
  EXPECT_TRUE(next);
}

}  // namespace
}  // namespace mercado::storage
