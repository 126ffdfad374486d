#include <mercado/messaging/event_bus.hpp>

#include "transports.hpp"

namespace mercado::messaging {

boost::asio::awaitable<Result<Envelope>> EventBus::publish(std::string event_type, boost::json::value data,
                                                           Headers headers) {
  Envelope e = make_envelope(std::move(event_type), std::move(data), std::move(headers), source_, clock_);
  std::vector<Message> batch{to_message(e)};
  auto r = co_await publish_batch(std::move(batch));
  if (!r) co_return std::unexpected(std::move(r.error()));
  co_return e;
}

boost::asio::awaitable<Result<void>> EventBus::publish(const Envelope& envelope) {
  std::vector<Message> batch{to_message(envelope)};
  co_return co_await publish_batch(std::move(batch));
}

Result<std::shared_ptr<EventBus>> open_event_bus(std::string_view url, BusOptions options) {
  if (!options.executor) return fail(Errc::invalid_argument, "open_event_bus: BusOptions::executor is required");
  if (options.pool == nullptr) return fail(Errc::invalid_argument, "open_event_bus: BusOptions::pool is required");
  if (url.starts_with("amqp://") || url.starts_with("amqps://")) return detail::open_amqp_bus(url, std::move(options));
  if (url.starts_with("sqlite://")) {
    auto parsed = storage::parse_database_url(url);
    if (!parsed) return std::unexpected(std::move(parsed.error()));
    return detail::open_sqlite_bus(*parsed, std::move(options));
  }
  return fail(Errc::invalid_argument, "unsupported BROKER_URL '" + storage::redact_url_password(url) +
                                          "' (use sqlite:///path/bus.db or amqp://user:pass@host:5672/vhost)");
}

}  // namespace mercado::messaging
