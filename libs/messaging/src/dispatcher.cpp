#include "dispatcher.hpp"

#include <algorithm>
#include <chrono>
#include <exception>

#include <mercado/messaging/envelope.hpp>
#include <mercado/messaging/topic.hpp>
#include <mercado/observability/log.hpp>
#include <mercado/observability/trace.hpp>

namespace mercado::messaging::detail {

Dispatcher::Dispatcher(SubscribeOptions options, std::string_view transport, obs::Registry& metrics)
    : options_(std::move(options)), transport_(transport) {
  auto& consumed = metrics.counter("mercado_messages_consumed_total",
                                   "Messages settled by consumers, by queue and outcome", {"queue", "outcome"});
  acked_ = &consumed.with({options_.queue, "ack"});
  retried_ = &consumed.with({options_.queue, "retry"});
  dead_ = &consumed.with({options_.queue, "dead_letter"});
  seconds_ = &metrics.histogram("mercado_message_handler_seconds", "Time spent in message handlers", {"queue"})
                  .with({options_.queue});
  lag_ = &metrics
              .histogram("mercado_message_delivery_lag_seconds",
                         "From an event's creation (its envelope timestamp) to the start of its handler, by queue",
                         {"queue"}, obs::lag_seconds_buckets())
              .with({options_.queue});
}

Result<void> Dispatcher::validate(const SubscribeOptions& o) {
  if (o.queue.empty()) return fail(Errc::invalid_argument, "subscribe: queue name is empty");
  if (o.event_types.empty()) return fail(Errc::invalid_argument, "subscribe: no event types for " + o.queue);
  for (const auto& t : o.event_types) {
    if (t.empty()) return fail(Errc::invalid_argument, "subscribe: empty event type for " + o.queue);
  }
  if (!o.handler) return fail(Errc::invalid_argument, "subscribe: no handler for " + o.queue);
  if (o.concurrency == 0) return fail(Errc::invalid_argument, "subscribe: concurrency must be at least 1");
  if (o.max_deliveries < 1) return fail(Errc::invalid_argument, "subscribe: max_deliveries must be at least 1");
  return {};
}

std::size_t Dispatcher::prefetch() const noexcept {
  return options_.prefetch ? options_.prefetch : 4 * options_.concurrency;
}

std::chrono::milliseconds Dispatcher::retry_delay(const Outcome& o) const noexcept {
  return o.delay.count() >= 0 ? o.delay : options_.retry_delay;
}

void Dispatcher::record(const Outcome& o, std::string_view message_id, std::string_view event_type) {
  switch (o.disposition) {
    case Disposition::ack: acked_->inc(); break;
    case Disposition::retry: retried_->inc(); break;
    case Disposition::dead_letter:
      dead_->inc();
      log::warn("message dead-lettered", {{"queue", options_.queue}, {"message_id", message_id},
                                          {"event_type", event_type}, {"reason", o.reason}});
      break;
  }
}

Outcome Dispatcher::limit_outcome(int deliveries) const {
  return Outcome::dead_letter("delivery limit reached: delivered " + std::to_string(deliveries) +
                              " times without being settled (consumer crashed or timed out)");
}

boost::asio::awaitable<Decision> Dispatcher::dispatch(std::string_view body, int attempt) {
  Decision d;
  auto envelope = decode_envelope(body);
  if (!envelope) {
    d.outcome = Outcome::dead_letter("unparseable message: " + envelope.error().message);
  } else {
    d.message_id = envelope->id;
    d.event_type = envelope->event_type;
    bool subscribed = false;
    for (const auto& pattern : options_.event_types) subscribed = subscribed || topic_matches(pattern, envelope->event_type);
    if (!subscribed) {
      d.outcome = Outcome::dead_letter("event type '" + envelope->event_type + "' is not subscribed by queue '" +
                                       options_.queue + "'");
    } else {
      auto parent = obs::TraceContext::parse(envelope->traceparent);
      obs::Span span("consume " + envelope->event_type, obs::SpanKind::consumer, parent ? &*parent : nullptr);
      span.set_attribute("messaging.system", transport_);
      span.set_attribute("messaging.destination.name", options_.queue);
      span.set_attribute("messaging.message.id", envelope->id);
      Delivery delivery{*envelope, options_.queue, attempt, span.context()};
      if (auto created = parse_timestamp(envelope->timestamp)) {
        // Clocks of different hosts may disagree: a negative lag counts as zero.
        const auto lag = std::chrono::duration<double>(std::chrono::system_clock::now() - *created);
        lag_->observe(std::max(0.0, lag.count()));
      }
      auto started = std::chrono::steady_clock::now();
      std::string thrown;
      try {
        d.outcome = co_await options_.handler(delivery);
      } catch (const std::exception& e) {
        thrown = e.what();
      }
      if (!thrown.empty()) {
        // A bug in a handler must neither stop the consumer nor lose the message.
        log::error(span.context(), "message handler threw", {{"queue", options_.queue}, {"error", thrown}});
        d.outcome = Outcome::retry("handler threw: " + thrown);
      }
      seconds_->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
      if (d.outcome.disposition == Disposition::retry && attempt >= options_.max_deliveries) {
        d.outcome = Outcome::dead_letter("gave up after " + std::to_string(attempt) +
                                         " deliveries: " + d.outcome.reason);
      }
      if (d.outcome.disposition != Disposition::ack) span.set_error(d.outcome.reason);
    }
  }
  record(d.outcome, d.message_id, d.event_type);
  co_return d;
}

}  // namespace mercado::messaging::detail
