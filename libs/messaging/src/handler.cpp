#include <mercado/messaging/handler.hpp>

#include <memory>

namespace mercado::messaging {

std::string_view to_string(Disposition d) noexcept {
  switch (d) {
    case Disposition::ack: return "ack";
    case Disposition::retry: return "retry";
    case Disposition::dead_letter: return "dead_letter";
  }
  return "ack";
}

HandlerMap& HandlerMap::on(std::string event_type, Handler handler) {
  handlers_.insert_or_assign(std::move(event_type), std::move(handler));
  return *this;
}

std::vector<std::string> HandlerMap::event_types() const {
  std::vector<std::string> out;
  for (const auto& [type, h] : handlers_) out.push_back(type);
  return out;
}

namespace {

using Map = std::map<std::string, Handler, std::less<>>;

boost::asio::awaitable<Outcome> dispatch_by_type(std::shared_ptr<const Map> map, const Delivery& d) {
  auto it = map->find(d.envelope.event_type);
  if (it == map->end()) co_return Outcome::dead_letter("no handler for event type '" + d.envelope.event_type + "'");
  co_return co_await it->second(d);
}

}  // namespace

Handler HandlerMap::handler() const {
  auto map = std::make_shared<const Map>(handlers_);
  return [map](const Delivery& d) { return dispatch_by_type(map, d); };
}

}  // namespace mercado::messaging
