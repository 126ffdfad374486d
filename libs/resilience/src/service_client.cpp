#include <mercado/resilience/service_client.hpp>

#include <stdexcept>

namespace mercado::resilience {

namespace asio = boost::asio;

namespace {
std::string required_name(std::string name) {
  if (name.empty()) throw std::invalid_argument("service client: name is required");
  return name;
}
}  // namespace

ServiceClient::ServiceClient(http::Client& client, ServiceClientOptions options, Env env)
    : client_(client),
      base_url_(std::move(options.base_url)),
      steady_clock_(dynamic_cast<const core::SystemClock*>(env.clock) != nullptr),
      pipeline_(required_name(std::move(options.name)), std::move(options.policies), env) {
  if (!base_url_.starts_with("http://")) throw std::invalid_argument("service client: base_url must be http://…: " + base_url_);
  while (base_url_.ends_with('/')) base_url_.pop_back();
}

core::SteadyTime ServiceClient::to_policy_time(core::SteadyTime steady) const noexcept {
  if (steady_clock_) return steady;
  return pipeline_.env().clock->now() + (steady - std::chrono::steady_clock::now());
}

core::SteadyTime ServiceClient::to_steady_time(core::SteadyTime policy) const noexcept {
  if (steady_clock_) return policy;
  return std::chrono::steady_clock::now() + (policy - pipeline_.env().clock->now());
}

asio::awaitable<CallResult> ServiceClient::send(http::ClientRequest request, CallContext context) {
  if (!request.url.starts_with('/')) request.url.insert(request.url.begin(), '/');
  request.url.insert(0, base_url_);
  if (context.parent != nullptr) request.parent = context.parent;

  CallSpec spec;
  spec.replay_safe = http::is_idempotent(request.method) || request.headers.contains("Idempotency-Key");
  std::optional<core::SteadyTime> cap = context.deadline;
  if (request.deadline) cap = cap ? std::min(*cap, *request.deadline) : *request.deadline;
  if (cap) spec.deadline = to_policy_time(*cap);

  auto attempt = [&](core::SteadyTime deadline) -> asio::awaitable<http::ClientResult> {
    http::ClientRequest copy = request;
    copy.deadline = to_steady_time(deadline);
    co_return co_await client_.send(std::move(copy));
  };
  co_return co_await pipeline_.execute(spec, attempt);
}

asio::awaitable<CallResult> ServiceClient::get(std::string path, CallContext context) {
  http::ClientRequest r;
  r.method = http::Method::get;
  r.url = std::move(path);
  co_return co_await send(std::move(r), context);
}

asio::awaitable<CallResult> ServiceClient::del(std::string path, CallContext context) {
  http::ClientRequest r;
  r.method = http::Method::delete_;
  r.url = std::move(path);
  co_return co_await send(std::move(r), context);
}

asio::awaitable<CallResult> ServiceClient::put_json(std::string path, std::string json, CallContext context) {
  http::ClientRequest r;
  r.method = http::Method::put;
  r.url = std::move(path);
  r.body = std::move(json);
  r.content_type = "application/json";
  co_return co_await send(std::move(r), context);
}

asio::awaitable<CallResult> ServiceClient::post_json(std::string path, std::string json, CallContext context,
                                                     std::string idempotency_key) {
  http::ClientRequest r;
  r.method = http::Method::post;
  r.url = std::move(path);
  r.body = std::move(json);
  r.content_type = "application/json";
  if (!idempotency_key.empty()) r.headers.set("Idempotency-Key", std::move(idempotency_key));
  co_return co_await send(std::move(r), context);
}

}  // namespace mercado::resilience
