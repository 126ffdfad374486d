#pragma once
// ServiceClient: the one way a Mercado service calls another. One per downstream (e.g.
// "inventory"), shared by every handler and io thread; each call goes through the
// downstream's Pipeline (deadline, retry, circuit breaker, rate limiter, bulkhead,
// attempt timeout) and then http::Client.
//
//   resilience::ServiceClient inventory(app.client(), {
//       .name = "inventory", .base_url = inventory_url,
//       .policies = {.circuit_breaker = resilience::CircuitBreakerConfig::consecutive()}});
//   ...
//   router.get("/orders/{id}", [&](http::Request& req) -> awaitable<http::Response> {
//     auto stock = resilience::expect_2xx(
//         co_await inventory.get("/stock/" + sku, resilience::CallContext::from(req)));
//     if (!stock) co_return http::problem(req, resilience::to_error(stock.error(), "inventory"));
//     ...
//   });
//
// CallContext::from(req) continues the inbound trace and caps the call at the inbound
// deadline; http::Client sends the remaining budget downstream (X-Request-Timeout-Ms), so
// no downstream call outlives its caller.
//
// Thread-safety: every member from any thread. `client` is borrowed and must outlive this.

#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include <mercado/core/clock.hpp>
#include <mercado/http/client.hpp>
#include <mercado/http/request.hpp>
#include <mercado/observability/trace.hpp>
#include <mercado/resilience/call_result.hpp>
#include <mercado/resilience/env.hpp>
#include <mercado/resilience/pipeline.hpp>

namespace mercado::resilience {

struct ServiceClientOptions {
  std::string name;       // the downstream: metric label `name`, log field
  std::string base_url;   // "http://inventory:8000"; call paths are appended
  PipelineConfig policies;
};

// What an outbound call inherits from the inbound request it serves.
struct CallContext {
  const obs::TraceContext* parent = nullptr;  // the span the call's client span continues
  std::optional<core::SteadyTime> deadline;   // the caller's deadline (std::chrono::steady_clock)

  // Borrows the request's trace context: use it while the request lives.
  static CallContext from(const http::Request& inbound) noexcept { return {&inbound.trace(), inbound.deadline()}; }
};

class ServiceClient {
 public:
  // Throws std::invalid_argument for an empty name or a base_url that is not http://.
  ServiceClient(http::Client& client, ServiceClientOptions options, Env env = {});

  // `request.url` is a path with an optional query ("/users/42?full=1"), appended to
  // base_url. request.deadline, when set, is one more cap (steady_clock time). The request
  // may be retried when it is idempotent or carries an Idempotency-Key header.
  boost::asio::awaitable<CallResult> send(http::ClientRequest request, CallContext context = {});

  boost::asio::awaitable<CallResult> get(std::string path, CallContext context = {});
  boost::asio::awaitable<CallResult> del(std::string path, CallContext context = {});
  boost::asio::awaitable<CallResult> put_json(std::string path, std::string json, CallContext context = {});
  // With a non-empty `idempotency_key`, sent as Idempotency-Key, the POST may be retried.
  boost::asio::awaitable<CallResult> post_json(std::string path, std::string json, CallContext context = {},
                                               std::string idempotency_key = {});

  const std::string& name() const noexcept { return pipeline_.name(); }
  const std::string& base_url() const noexcept { return base_url_; }
  Pipeline& pipeline() noexcept { return pipeline_; }
  CircuitBreaker* circuit_breaker() noexcept { return pipeline_.circuit_breaker(); }

 private:
  // Deadlines cross between Env::clock's time (policies) and steady_clock (http::Client).
  core::SteadyTime to_policy_time(core::SteadyTime steady) const noexcept;
  core::SteadyTime to_steady_time(core::SteadyTime policy) const noexcept;

  http::Client& client_;
  std::string base_url_;
  bool steady_clock_;  // Env::clock is the system clock: both times are the same
  Pipeline pipeline_;
};

}  // namespace mercado::resilience
