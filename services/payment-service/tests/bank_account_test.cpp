#include "domain/bank_account.hpp"

#include <gtest/gtest.h>

namespace payment::domain {
namespace {

BankAccount rebuild(const BankAccount& live) {
  std::vector<mercado::es::RecordedEvent> history;
  std::int64_t v = 0;
  for (const auto& e : live.pending_events()) history.push_back({++v, live.id(), v, e.event_id, e.event_type, e.data, e.metadata, 0});
  BankAccount copy(live.id());
  copy.load(history);
  return copy;
}

TEST(BankAccount, DepositsAndWithdrawals) {
  BankAccount a("acct-c1");
  EXPECT_EQ(a.deposit(100).error().code, mercado::Errc::not_found);
  ASSERT_TRUE(a.open("c1"));
  ASSERT_TRUE(a.deposit(10'000));
  EXPECT_EQ(a.deposit(0).error().code, mercado::Errc::invalid_argument);
  EXPECT_EQ(a.deposit(-5).error().code, mercado::Errc::invalid_argument);
  ASSERT_TRUE(a.withdraw(2'500, "pay-1", std::nullopt));
  EXPECT_EQ(a.balance(), 7'500);
  auto over = a.withdraw(7'501, "pay-2", std::nullopt);
  ASSERT_FALSE(over);
  EXPECT_EQ(over.error().type, "insufficient-funds");
  EXPECT_EQ(a.balance(), 7'500);  // rejected: nothing changed
  // The ledger knows pay-1 (taken above): a second withdrawal is refused.
  EXPECT_EQ(a.withdraw(1, "pay-1", Withdrawal{2'500, false}).error().message, "payment already taken");
  EXPECT_EQ(a.withdraw(1, "", std::nullopt).error().code, mercado::Errc::invalid_argument);
  EXPECT_EQ(a.balance(), 7'500);
}

TEST(BankAccount, RefundsOnceAndOnlyWhatWasTaken) {
  BankAccount a("acct-c2");
  ASSERT_TRUE(a.open("c2"));
  ASSERT_TRUE(a.deposit(1'000));
  ASSERT_TRUE(a.withdraw(400, "pay-9", std::nullopt));
  EXPECT_EQ(a.refund("pay-unknown", std::nullopt).error().code, mercado::Errc::not_found);
  ASSERT_TRUE(a.refund("pay-9", Withdrawal{400, false}));
  EXPECT_EQ(a.balance(), 1'000);  // the amount that was taken comes back
  EXPECT_EQ(a.refund("pay-9", Withdrawal{400, true}).error().code, mercado::Errc::conflict);
  EXPECT_EQ(a.balance(), 1'000);
}

TEST(BankAccount, ItsStateDoesNotGrowWithItsHistory) {
  // 10 000 payments and refunds: the aggregate keeps a balance, not a set of payment ids.
  BankAccount a("acct-c4");
  ASSERT_TRUE(a.open("c4"));
  ASSERT_TRUE(a.deposit(1'000));
  for (int i = 0; i < 10'000; ++i) {
    const std::string id = "pay-" + std::to_string(i);
    ASSERT_TRUE(a.withdraw(10, id, std::nullopt));
    ASSERT_TRUE(a.refund(id, Withdrawal{10, false}));
  }
  EXPECT_EQ(a.balance(), 1'000);
  EXPECT_EQ(sizeof(BankAccount) - sizeof(mercado::es::Aggregate<BankAccount>), 2 * sizeof(std::int64_t));
}

TEST(BankAccount, RebuiltFromEventsEqualsTheLiveOne) {
  BankAccount a("acct-c3");
  ASSERT_TRUE(a.open("c3"));
  for (int i = 1; i <= 20; ++i) ASSERT_TRUE(a.deposit(i * 100));
  ASSERT_TRUE(a.withdraw(5'000, "p1", std::nullopt));
  ASSERT_TRUE(a.withdraw(1'000, "p2", std::nullopt));
  ASSERT_TRUE(a.refund("p1", Withdrawal{5'000, false}));
  auto copy = rebuild(a);
  EXPECT_EQ(copy.balance(), a.balance());
  EXPECT_EQ(copy.balance(), 21'000 - 1'000);
  EXPECT_EQ(copy.version(), static_cast<std::int64_t>(a.pending_events().size()));
  std::vector<std::string> types;
  for (const auto& e : a.pending_events()) types.push_back(e.event_type);
  EXPECT_EQ(types.front(), "AccountCreated");
  EXPECT_EQ(types[1], "MoneyDeposited");
}

}  // namespace
}  // namespace payment::domain
