#pragma once
// Payment commands on event-sourced accounts (one stream per customer: "account-<id>").
// The event store's append hook keeps the payments read model and the outbox in the same
// transaction as the account's events.

#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/describe.hpp>

#include <mercado/eventsourcing/aggregate_cache.hpp>
#include <mercado/eventsourcing/event_store.hpp>
#include <mercado/messaging/outbox.hpp>
#include <mercado/storage/migrations.hpp>

#include "domain/bank_account.hpp"

namespace payment::app {

struct AccountView {
  std::string customer_id;
  std::int64_t balance = 0;
  std::int64_t version = 0;
};
BOOST_DESCRIBE_STRUCT(AccountView, (), (customer_id, balance, version))

struct PaymentView {
  std::string id;
  std::string order_id;
  std::string customer_id;
  std::int64_t amount = 0;
  std::string status;  // COMPLETED | REFUNDED
};
BOOST_DESCRIBE_STRUCT(PaymentView, (), (id, order_id, customer_id, amount, status))

std::span<const mercado::storage::Migration> migrations();

std::string account_stream(std::string_view customer_id);
std::string payment_id_for(std::string_view order_id);

// The hook to give the EventStore: payments read model + integration events in the outbox.
mercado::es::EventStore::AppendHook append_hook(const mercado::messaging::Outbox& outbox);

class Payments {
 public:
  Payments(mercado::es::EventStore& store, mercado::storage::Database& db) : store_(store), db_(db) {}

  // Opens the account when needed. With an idempotency key, a repeated deposit is a no-op.
  boost::asio::awaitable<mercado::Result<AccountView>> deposit(std::string customer_id, std::int64_t amount,
                                                               std::string idempotency_key, std::string traceparent);
  boost::asio::awaitable<mercado::Result<std::optional<AccountView>>> account(std::string customer_id);
  // One payment per order: a repeat returns the first (conflict if it differs).
  // conflict "insufficient-funds" when the balance is short (nothing taken).
  boost::asio::awaitable<mercado::Result<PaymentView>> pay(std::string order_id, std::string customer_id,
                                                           std::int64_t amount, std::string traceparent);
  // Idempotent; not_found for an unknown payment.
  boost::asio::awaitable<mercado::Result<PaymentView>> refund(std::string payment_id, std::string traceparent);
  boost::asio::awaitable<mercado::Result<std::optional<PaymentView>>> find(std::string payment_id);
  // For UserRegistered: opens the customer's account (no-op when it exists).
  boost::asio::awaitable<mercado::Result<void>> open(std::string customer_id, std::string traceparent);

 private:
  mercado::es::EventStore& store_;
  mercado::storage::Database& db_;
  // Accounts are long streams (one event per payment): commands start from the cached state
  // and read only newer events.
  mercado::es::AggregateCache<domain::BankAccount> accounts_{256};
};

}  // namespace payment::app
