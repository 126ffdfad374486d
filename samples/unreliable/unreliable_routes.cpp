#include "unreliable_routes.hpp"

#include <charconv>
#include <string>

#include <mercado/http/problem.hpp>

namespace unreliable {

namespace http = mercado::http;
using boost::asio::awaitable;

void register_routes(http::Router& router, ServiceState& state, mercado::resilience::Random& random) {
  router.get("/work", [&state, &random](http::Request& req) -> awaitable<http::Response> {
    const bool outage = state.fail_first_left.fetch_sub(1, std::memory_order_relaxed) > 0;
    if (outage || random.next_unit() < state.failure_rate.load(std::memory_order_relaxed)) {
      co_return http::problem(req, mercado::Error(mercado::Errc::unavailable, "Service unavailable"));
    }
    co_return http::Response::json(200, R"({"result":"Success"})");
  }, "Does some work; fails as configured");

  router.put("/failure-rate", [&state](http::Request& req) -> awaitable<http::Response> {
    const std::string body(req.body());
    double rate = -1;
    auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), rate);
    if (ec != std::errc() || end != body.data() + body.size() || !(rate >= 0.0 && rate <= 1.0)) {
      co_return http::problem(req, mercado::Error(mercado::Errc::invalid_argument, "the body must be a number in [0, 1]"));
    }
    state.failure_rate.store(rate, std::memory_order_relaxed);
    co_return http::Response::no_content();
  }, "Sets the failure rate (body: a number in [0, 1])");
}

}  // namespace unreliable
