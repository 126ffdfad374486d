#pragma once
// What a consumer's handler gets and how it answers.
//
//   bus->subscribe({.queue = "shipping", .event_types = {"PaymentCompleted"},
//                   .handler = [&](const Delivery& d) -> asio::awaitable<Outcome> {
//                     if (!valid(d.envelope.data)) co_return Outcome::dead_letter("no order_id");
//                     auto r = co_await ship(d.envelope.data);
//                     if (!r) co_return Outcome::retry(r.error().message);
//                     co_return Outcome::ack();
//                   }});
//
// ack: done, the message is removed. retry: redelivered after the delay (counting as one
// more delivery). dead_letter: moved to the queue's dead-letter queue with the reason.
// After max_deliveries deliveries a retry becomes a dead letter. A handler that throws is
// treated as retry with the exception's text (a bug must not stop the consumer or lose the
// message). Messages that cannot be parsed, or whose type the subscription did not ask
// for, are dead-lettered before any handler runs.

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <mercado/messaging/envelope.hpp>
#include <mercado/observability/trace.hpp>

namespace mercado::messaging {

enum class Disposition : std::uint8_t { ack, retry, dead_letter };
std::string_view to_string(Disposition d) noexcept;

struct Outcome {
  Disposition disposition = Disposition::ack;
  std::string reason;              // retry and dead_letter: why
  std::chrono::milliseconds delay{-1};  // retry: after how long (-1: the subscription's retry_delay)

  static Outcome ack() { return {}; }
  static Outcome retry(std::string reason, std::chrono::milliseconds delay = std::chrono::milliseconds(-1)) {
    return {Disposition::retry, std::move(reason), delay};
  }
  static Outcome dead_letter(std::string reason) {
    return {Disposition::dead_letter, std::move(reason), std::chrono::milliseconds(-1)};
  }
};

struct Delivery {
  const Envelope& envelope;
  std::string_view queue;
  int attempt = 1;          // 1 on the first delivery
  obs::TraceContext trace;  // the consumer span (child of the envelope's traceparent)
};

using Handler = std::function<boost::asio::awaitable<Outcome>(const Delivery&)>;

// One handler per event type (the chapter's register_handler), as one Handler. Unlike the
// chapter's consumer, a type without a handler is dead-lettered, not silently acked.
class HandlerMap {
 public:
  HandlerMap& on(std::string event_type, Handler handler);
  // The registered event types, to subscribe with.
  std::vector<std::string> event_types() const;
  // Dispatches by envelope.event_type (the handler holds a copy of the map).
  Handler handler() const;

 private:
  std::map<std::string, Handler, std::less<>> handlers_;
};

}  // namespace mercado::messaging
