#pragma once
// The event bus: publish events by type, subscribe a queue (a subscriber group) to types.
// One interface, two transports chosen by BROKER_URL (docs/messaging.md):
//
//   sqlite:///var/lib/mercado/bus.db   durable bus in one SQLite file shared by the processes
//                                      of one machine (the embedded default)
//   amqp://user:pass@host:5672/vhost   RabbitMQ: topic exchange "events", routing key =
//                                      event type, durable queues, persistent messages,
//                                      publisher confirms, manual acks, dead-letter exchange
//
// Semantics (both transports):
// - Routing: each queue gets a copy of every message whose event type matches one of its
//   bindings (topic.hpp). Competing consumers of one queue -- in one process or many --
//   each get a different message. Queues and bindings are durable: once subscribe() has
//   returned, messages are kept for the queue even while no consumer runs. A message no
//   queue is bound for is dropped.
// - Delivery is at-least-once: a message is removed only when its handler acks (or it is
//   dead-lettered). A consumer that dies mid-message gets it redelivered (SQLite: after the
//   visibility timeout; RabbitMQ: when its connection closes). Deduplicate with the inbox.
// - Outcomes (handler.hpp): ack, retry after a delay, dead-letter with a reason; after
//   max_deliveries deliveries the message is dead-lettered. Dead letters keep the message,
//   the reason and the delivery count; take_dead_letters() reads (and removes) them.
//
// Thread-safety: every member may be called from any thread or coroutine.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include <mercado/core/blocking_pool.hpp>
#include <mercado/core/clock.hpp>
#include <mercado/core/error.hpp>
#include <mercado/messaging/envelope.hpp>
#include <mercado/messaging/handler.hpp>
#include <mercado/messaging/message.hpp>
#include <mercado/observability/metrics.hpp>

namespace mercado::messaging {

struct SubscribeOptions {
  std::string queue;                     // subscriber group; competing consumers share it
  std::vector<std::string> event_types;  // bindings: event types or topic patterns
  Handler handler;
  boost::asio::any_io_executor executor;  // where handlers run (default: the bus's executor)
  std::size_t concurrency = 1;            // handlers of this subscription running at once
  std::size_t prefetch = 0;               // messages taken ahead (0: 4 x concurrency)
  int max_deliveries = 5;                 // deliveries before a retry becomes a dead letter
  std::chrono::milliseconds retry_delay{1000};  // default delay of Outcome::retry
  // SQLite transport: a message taken but not settled within this time is redelivered.
  std::chrono::milliseconds visibility_timeout{30000};
};

// A message that could not be processed, as kept in a queue's dead-letter queue.
struct DeadLetter {
  std::string queue;
  std::string message_id;
  std::string event_type;
  std::string body;    // the message as it was received
  std::string reason;  // why it was dead-lettered
  int deliveries = 0;  // how many times it had been delivered
};

class Subscription {
 public:
  virtual ~Subscription() = default;
  virtual const std::string& queue() const noexcept = 0;
  // Stops taking messages, lets running handlers finish and settles their outcomes. Messages
  // taken but not handled go back to the queue. Idempotent.
  virtual boost::asio::awaitable<void> stop() = 0;
};

struct BusOptions {
  std::string source;                     // service name written into envelopes
  boost::asio::any_io_executor executor;  // internal coroutines (required)
  core::BlockingPool* pool = nullptr;     // blocking SQLite / admin calls (required)
  const core::Clock* clock = &core::SystemClock::instance();
  obs::Registry* metrics = &obs::Registry::global();
  std::string exchange = "events";  // RabbitMQ topic exchange (dead letters: "<exchange>.dlx")
  // RabbitMQ: how long a publish waits for the broker, across reconnects, before failing.
  std::chrono::milliseconds publish_timeout{30000};
  std::chrono::milliseconds reconnect_min{100};  // RabbitMQ reconnect backoff, doubling ...
  std::chrono::milliseconds reconnect_max{5000};  // ... up to this, with jitter
  std::chrono::seconds heartbeat{10};             // RabbitMQ heartbeat
  // SQLite: an idle consumer re-checks its queue this often even without a wake-up (a safety
  // net; wake-ups come from inotify).
  std::chrono::milliseconds idle_poll{5000};
};

class EventBus : public Publisher {
 public:
  ~EventBus() override = default;

  virtual std::string_view transport() const noexcept = 0;  // "sqlite" or "amqp"
  const std::string& source() const noexcept { return source_; }

  // Publishes one event (make_envelope with this bus's source) and returns its envelope.
  boost::asio::awaitable<Result<Envelope>> publish(std::string event_type, boost::json::value data,
                                                   Headers headers = {});
  boost::asio::awaitable<Result<void>> publish(const Envelope& envelope);

  // Declares the queue and its bindings durably, then starts consuming. Errors:
  // invalid_argument (no queue, no event types, no handler), unavailable (broker down).
  virtual boost::asio::awaitable<Result<std::shared_ptr<Subscription>>> subscribe(SubscribeOptions options) = 0;

  // Removes and returns up to `max` dead letters of `queue`, oldest first.
  virtual boost::asio::awaitable<Result<std::vector<DeadLetter>>> take_dead_letters(std::string queue,
                                                                                   std::size_t max) = 0;

  // Deletes a queue with its bindings, its messages and its dead letters (e.g. a load
  // generator's per-run queue, so that later events are not copied into it forever). Stop
  // its subscriptions first. Deleting a queue that does not exist succeeds.
  virtual boost::asio::awaitable<Result<void>> delete_queue(std::string queue) = 0;

  // True while the transport can accept publishes (for /ready).
  virtual bool healthy() const noexcept = 0;

  // Stops every subscription (see Subscription::stop) and the transport's connections.
  virtual boost::asio::awaitable<void> close() = 0;

 protected:
  explicit EventBus(std::string source, const core::Clock& clock) : source_(std::move(source)), clock_(clock) {}

 private:
  std::string source_;
  const core::Clock& clock_;
};

// Opens the bus named by `url` (see the file comment). SQLite: opens the file and creates
// its tables (blocking; call at start-up). RabbitMQ: checks the URL and starts connecting
// in the background; publishes wait for the connection up to publish_timeout.
// Errors: invalid_argument for a bad URL or missing options, unavailable when the SQLite
// file cannot be opened.
Result<std::shared_ptr<EventBus>> open_event_bus(std::string_view url, BusOptions options);

}  // namespace mercado::messaging
