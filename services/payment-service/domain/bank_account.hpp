#pragma once
// Exercise 2's BankAccount, event sourced (pure: no I/O). Money is integer cents.
//
// Events: AccountCreated {customer_id}, MoneyDeposited {amount}, MoneyWithdrawn {amount,
// payment_id}, and -- for payment-service's refunds -- MoneyRefunded {amount, payment_id}.
// A withdrawal above the balance is rejected (conflict, type "insufficient-funds"). A
// payment id is withdrawn at most once and refunded at most once, and only if withdrawn.
//
// Which payments an account has taken is not kept in the aggregate: that set grows with the
// account's whole history (an account cached by payment-service would grow without bound).
// The caller looks the payment up in the payments ledger -- the read model written in the
// same transaction as these events, so it is exactly as current as the stream -- and passes
// what it found; deterministic event ids ("withdraw:<id>", "refund:<id>") and the expected
// version of the append make a concurrent second attempt fail and retry with the new record.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include <mercado/core/error.hpp>
#include <mercado/eventsourcing/aggregate.hpp>

namespace payment::domain {

// A payment as the payments ledger knows it.
struct Withdrawal {
  std::int64_t amount = 0;
  bool refunded = false;
};

class BankAccount : public mercado::es::Aggregate<BankAccount> {
 public:
  explicit BankAccount(std::string id) : Aggregate(std::move(id)) {}

  mercado::Result<void> open(std::string_view customer_id);
  mercado::Result<void> deposit(std::int64_t amount);
  // `earlier`: the ledger's record of payment_id (nullopt: never taken).
  mercado::Result<void> withdraw(std::int64_t amount, std::string_view payment_id,
                                 const std::optional<Withdrawal>& earlier);
  // `taken`: the ledger's record of payment_id (nullopt: never taken, so nothing to refund).
  mercado::Result<void> refund(std::string_view payment_id, const std::optional<Withdrawal>& taken);

  void when(std::string_view type, const boost::json::object& data);

  bool exists() const noexcept { return opened_; }
  std::int64_t balance() const noexcept { return balance_; }

 private:
  bool opened_ = false;
  std::int64_t balance_ = 0;
};

}  // namespace payment::domain
