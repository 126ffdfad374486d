#pragma once
// Idempotent consumer (microservices.io; NServiceBus outbox/inbox): a consumer records the id
// of each message it processed in its own database, in the same transaction as the
// message's effects. A redelivered message finds its id recorded and has no second effect.
//
//   co_await storage::migrate(*db, "mercado_inbox", messaging::Inbox::migrations());
//   bus->subscribe({.queue = "inventory", .event_types = {"OrderCreated"},
//                   .handler = messaging::idempotent(db, messaging::Inbox("inventory"),
//                       [](storage::Tx& tx, const messaging::Delivery& d) -> Result<void> {
//                         return reserve(tx, d.envelope.data);   // effects, same transaction
//                       })});

#include <chrono>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <mercado/core/clock.hpp>
#include <mercado/core/error.hpp>
#include <mercado/messaging/handler.hpp>
#include <mercado/observability/metrics.hpp>
#include <mercado/storage/database.hpp>
#include <mercado/storage/migrations.hpp>

namespace mercado::messaging {

class Inbox {
 public:
  // The inbox table (scope "mercado_inbox"), for storage::migrate at start-up.
  static std::span<const storage::Migration> migrations();

  // `consumer` names the subscriber (usually its queue); ids are unique per consumer.
  explicit Inbox(std::string consumer, const core::Clock& clock = core::SystemClock::instance());

  // Inside the consumer's transaction: records `message_id`. True if it is new (apply the
  // effects in this transaction), false if it was already processed (apply nothing).
  // Concurrent deliveries of one id: the second waits for the first's transaction and then
  // sees it as processed.
  Result<bool> record(storage::Tx& tx, std::string_view message_id) const;

  // Forgets ids recorded before `now - age` (the deduplication window). Returns how many.
  Result<std::int64_t> purge(storage::Tx& tx, std::chrono::milliseconds age) const;

  const std::string& consumer() const noexcept { return consumer_; }

 private:
  std::string consumer_;
  const core::Clock& clock_;
};

// Effects of one message, run inside the consumer's transaction (on a pool worker).
using TxHandler = std::function<Result<void>(storage::Tx&, const Delivery&)>;

// A Handler that runs inbox.record and `apply` in one transaction: new message -> apply and
// ack; already processed -> ack without effects. When `apply` (or the database) fails, the
// transaction rolls back and the message is retried if the error is transient
// (storage::is_transient: unavailable, timeout, serialization failure, deadlock), and
// dead-lettered with the error as reason otherwise. Duplicates count in
// mercado_inbox_duplicates_total{consumer}.
Handler idempotent(std::shared_ptr<storage::Database> db, Inbox inbox, TxHandler apply,
                   obs::Registry& metrics = obs::Registry::global());

}  // namespace mercado::messaging
