#pragma once
// Transactional outbox (microservices.io "Transactional outbox"): a service stores the events
// of a state change in its own database, in the same transaction as the change, and a relay
// publishes them afterwards. Either both the change and its events commit, or neither.
//
//   // start-up
//   co_await storage::migrate(*db, "mercado_outbox", messaging::Outbox::migrations());
//   messaging::Outbox outbox("order-service");
//   auto relay = messaging::OutboxRelay::start(db, bus, outbox, executor);
//   // a command
//   co_await db->transaction([&](storage::Tx& tx) -> Result<void> {
//     ... change state ...
//     auto id = outbox.add(tx, "OrderCreated", {{"order_id", id}}, {{"traceparent", tp}});
//     return id ? Result<void>{} : std::unexpected(id.error());
//   });
//
// The relay publishes pending events in order of insertion, waits until the transport has
// durably accepted them, then marks them dispatched. A crash or failure anywhere in between
// leaves them pending and they are published again: delivery is at-least-once, and
// consumers deduplicate by message id (inbox.hpp). Several relays (replicas of a service)
// share the work safely: a lease in the database elects one active relay; when it dies,
// another takes over after `lease`. Dispatched rows are deleted `retention` after they were
// written (zero: never).

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <mercado/core/clock.hpp>
#include <mercado/core/error.hpp>
#include <mercado/core/notifier.hpp>
#include <mercado/messaging/envelope.hpp>
#include <mercado/messaging/message.hpp>
#include <mercado/observability/metrics.hpp>
#include <mercado/storage/database.hpp>
#include <mercado/storage/migrations.hpp>

namespace mercado::messaging {

namespace detail {
class OutboxHandoff;
}

class Outbox {
 public:
  // The outbox tables (scope "mercado_outbox"), for storage::migrate at start-up.
  static std::span<const storage::Migration> migrations();

  explicit Outbox(std::string source, const core::Clock& clock = core::SystemClock::instance());

  // Inside the caller's transaction: stores a new event (see make_envelope for the
  // traceparent header) and returns its envelope. Errors are the insert's storage errors.
  Result<Envelope> add(storage::Tx& tx, std::string event_type, boost::json::value data, Headers headers = {}) const;
  // Stores a prepared envelope. Its id must be new (a duplicate id is a storage conflict:
  // the same event is never stored twice).
  Result<void> add(storage::Tx& tx, const Envelope& envelope) const;

  const std::string& source() const noexcept { return source_; }
  // Notified after each transaction that added events commits; relays wait on it.
  const std::shared_ptr<core::Notifier>& committed() const noexcept { return committed_; }
  // On SQLite, once a relay is created for this outbox, each committed row is also handed to
  // the relay in memory (it then need not read it back). So an Outbox serves one database,
  // its relay's: add() only in transactions of that database.
  const std::shared_ptr<detail::OutboxHandoff>& handoff() const noexcept { return handoff_; }

 private:
  std::string source_;
  const core::Clock& clock_;
  std::shared_ptr<core::Notifier> committed_;
  std::shared_ptr<detail::OutboxHandoff> handoff_;
};

struct RelayOptions {
  std::size_t batch_size = 256;                 // events published per round
  std::chrono::milliseconds poll_interval{1000};  // re-check without a wake-up (other processes' writes)
  std::chrono::milliseconds lease{10000};         // how long an active relay holds the lease
  std::chrono::milliseconds retry_min{100};       // backoff after a failed round, doubling ...
  std::chrono::milliseconds retry_max{5000};      // ... up to this
  // Dispatched rows are deleted this long after they were written (the relay looks hourly,
  // when idle); zero keeps them for ever. Services: --outbox-retention-hours.
  std::chrono::milliseconds retention{std::chrono::hours(24 * 7)};
  std::size_t purge_batch = 5000;                 // rows deleted per transaction by the hourly purge
  // How long published events gather before the marker makes them durable and marks them:
  // one sync and one mark for all of them. Never delays delivery (consumers already have
  // them); it bounds what a crash publishes again. 0: at once. (The marker does not wait
  // once 2 x batch_size have gathered, nor when the relay stops.)
  std::chrono::milliseconds mark_delay{20};
  std::string relay_id;                           // lease owner name (default: a new UUID)
  const core::Clock* clock = &core::SystemClock::instance();
  obs::Registry* metrics = &obs::Registry::global();
};

class OutboxRelay : public std::enable_shared_from_this<OutboxRelay> {
 public:
  // A relay that does nothing until start() (tests drive it with run_once()).
  static std::shared_ptr<OutboxRelay> create(std::shared_ptr<storage::Database> db, std::shared_ptr<Publisher> publisher,
                                             const Outbox& outbox, RelayOptions options = {});
  // create() and start() on `executor`.
  static std::shared_ptr<OutboxRelay> start(std::shared_ptr<storage::Database> db, std::shared_ptr<Publisher> publisher,
                                            const Outbox& outbox, boost::asio::any_io_executor executor,
                                            RelayOptions options = {});
  ~OutboxRelay();

  // Runs the relay loop on `executor` until stop(). Call once.
  void start(boost::asio::any_io_executor executor);
  // Ends the loop after its current round and releases the lease. Idempotent.
  boost::asio::awaitable<void> stop();

  // One round: take the lease if free, publish up to batch_size pending events, mark them.
  // Returns how many were published (0 when there is nothing, or another relay holds the
  // lease). On an error the round's events stay pending.
  boost::asio::awaitable<Result<std::size_t>> run_once();

  // Events published and marked so far by this relay.
  std::uint64_t published() const noexcept;

 private:
  struct State;
  explicit OutboxRelay(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace mercado::messaging
