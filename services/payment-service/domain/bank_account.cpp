#include "domain/bank_account.hpp"

namespace payment::domain {

using mercado::Errc;
using mercado::Error;
using mercado::fail;
using mercado::Result;

Result<void> BankAccount::open(std::string_view customer_id) {
  if (opened_) return fail(Errc::conflict, "account already exists");
  if (customer_id.empty()) return fail(Errc::invalid_argument, "customer_id is required");
  raise("AccountCreated", {{"customer_id", customer_id}});
  return {};
}

Result<void> BankAccount::deposit(std::int64_t amount) {
  if (!opened_) return fail(Errc::not_found, "no such account");
  if (amount <= 0) return fail(Errc::invalid_argument, "amount must be positive");
  if (balance_ > INT64_MAX - amount) return fail(Errc::invalid_argument, "amount too large");
  raise("MoneyDeposited", {{"amount", amount}});
  return {};
}

Result<void> BankAccount::withdraw(std::int64_t amount, std::string_view payment_id,
                                   const std::optional<Withdrawal>& earlier) {
  if (!opened_) return fail(Errc::not_found, "no such account");
  if (amount <= 0) return fail(Errc::invalid_argument, "amount must be positive");
  if (payment_id.empty()) return fail(Errc::invalid_argument, "payment_id is required");
  if (earlier) return fail(Errc::conflict, "payment already taken");
  if (amount > balance_) {
    Error e(Errc::conflict, "insufficient funds: balance " + std::to_string(balance_) + ", amount " + std::to_string(amount));
    e.type = "insufficient-funds";
    return fail(std::move(e));
  }
  raise("MoneyWithdrawn", {{"amount", amount}, {"payment_id", payment_id}});
  return {};
}

Result<void> BankAccount::refund(std::string_view payment_id, const std::optional<Withdrawal>& taken) {
  if (!opened_) return fail(Errc::not_found, "no such account");
  if (!taken) return fail(Errc::not_found, "no such payment");
  if (taken->refunded) return fail(Errc::conflict, "payment already refunded");
  if (taken->amount <= 0) return fail(Errc::invalid_argument, "a refund needs the amount that was taken");
  raise("MoneyRefunded", {{"amount", taken->amount}, {"payment_id", payment_id}});
  return {};
}

void BankAccount::when(std::string_view type, const boost::json::object& d) {
  if (type == "AccountCreated") {
    opened_ = true;
  } else if (type == "MoneyDeposited") {
    balance_ += d.at("amount").as_int64();
  } else if (type == "MoneyWithdrawn") {
    balance_ -= d.at("amount").as_int64();
  } else if (type == "MoneyRefunded") {
    balance_ += d.at("amount").as_int64();
  }
}

}  // namespace payment::domain
