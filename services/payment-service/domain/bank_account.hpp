#pragma once
// Exercise 2's BankAccount, event sourced (pure: no I/O). Money is integer cents.
//
// Events: AccountCreated {customer_id}, MoneyDeposited {amount}, MoneyWithdrawn {amount,
// payment_id}, and -- for payment-service's refunds -- MoneyRefunded {amount, payment_id}.
// A withdrawal above the balance is rejected (conflict, type "insufficient-funds"). A
// payment id is withdrawn at most once and refunded at most once, and only if withdrawn.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>

#include <mercado/core/error.hpp>
#include <mercado/eventsourcing/aggregate.hpp>

namespace payment::domain {

class BankAccount : public mercado::es::Aggregate<BankAccount> {
 public:
  explicit BankAccount(std::string id) : Aggregate(std::move(id)) {}

  mercado::Result<void> open(std::string_view customer_id);
  mercado::Result<void> deposit(std::int64_t amount);
  mercado::Result<void> withdraw(std::int64_t amount, std::string_view payment_id);
  mercado::Result<void> refund(std::string_view payment_id);

  void when(std::string_view type, const boost::json::object& data);

  bool exists() const noexcept { return opened_; }
  std::int64_t balance() const noexcept { return balance_; }
  // Amount withdrawn for a payment id (0 when none), and whether it was refunded.
  std::int64_t withdrawn(std::string_view payment_id) const;
  bool refunded(std::string_view payment_id) const;

 private:
  struct Payment {
    std::int64_t amount = 0;
    bool refunded = false;
  };
  bool opened_ = false;
  std::int64_t balance_ = 0;
  std::map<std::string, Payment, std::less<>> payments_;
};

}  // namespace payment::domain
