#pragma once
// The consumer logic both transports share: parse the envelope, check the event type against
// the subscription, run the handler in a consumer span, turn its answer into the final
// outcome (retries become dead letters after max_deliveries) and count it.

#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include <mercado/messaging/event_bus.hpp>
#include <mercado/observability/metrics.hpp>

namespace mercado::messaging::detail {

struct Decision {
  Outcome outcome;
  std::string message_id;  // empty when the body could not be parsed
  std::string event_type;
};

class Dispatcher {
 public:
  // `options` must be valid (see validate()).
  Dispatcher(SubscribeOptions options, std::string_view transport, obs::Registry& metrics);

  // invalid_argument when the options cannot make a subscription.
  static Result<void> validate(const SubscribeOptions& options);

  const SubscribeOptions& options() const noexcept { return options_; }
  std::size_t prefetch() const noexcept;

  // Runs the handler for one delivery (attempt >= 1) and decides its fate. Never throws for
  // what the message or the handler does.
  boost::asio::awaitable<Decision> dispatch(std::string_view body, int attempt);

  // The outcome for a message delivered `deliveries` times without being settled (its
  // consumers crashed or timed out). Pass it to record() once it is applied.
  Outcome limit_outcome(int deliveries) const;
  // Counts (and logs, for dead letters) an outcome a transport applied.
  void record(const Outcome& o, std::string_view message_id, std::string_view event_type);
  // The retry delay an outcome asks for.
  std::chrono::milliseconds retry_delay(const Outcome& o) const noexcept;

 private:
  SubscribeOptions options_;
  std::string transport_;
  obs::Counter* acked_;
  obs::Counter* retried_;
  obs::Counter* dead_;
  obs::Histogram* seconds_;
  obs::Histogram* lag_;
};

}  // namespace mercado::messaging::detail
