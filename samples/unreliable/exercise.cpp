#include "exercise.hpp"

#include <fmt/format.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <ostream>

#include <mercado/http/client.hpp>
#include <mercado/resilience/service_client.hpp>

namespace unreliable {

namespace asio = boost::asio;
namespace resilience = mercado::resilience;
using Clock = std::chrono::steady_clock;

namespace {

std::string describe(const resilience::CircuitBreakerConfig& c) {
  if (c.model == resilience::BreakerModel::consecutive) {
    return fmt::format("consecutive model: failure_threshold {}, timeout {} ms, success_threshold {}", c.failure_threshold,
                       std::chrono::duration_cast<std::chrono::milliseconds>(c.wait_in_open).count(), c.success_threshold);
  }
  return fmt::format("rate model: failure rate >= {}% over {} {}, minimum {} calls, wait {} ms, {} trial calls",
                     c.failure_rate_threshold, c.sliding_window_size,
                     c.sliding_window_type == resilience::SlidingWindowType::count_based ? "calls" : "seconds",
                     c.minimum_number_of_calls,
                     std::chrono::duration_cast<std::chrono::milliseconds>(c.wait_in_open).count(),
                     c.permitted_calls_in_half_open);
}

}  // namespace

ExerciseReport run_exercise(const ExerciseOptions& options, mercado::obs::Registry& metrics, std::ostream& out) {
  mercado::http::Client http;
  resilience::PipelineConfig policies;
  policies.circuit_breaker = options.breaker;
  policies.retry.max_attempts = 1;  // the exercise is about the breaker alone
  policies.retry_budget.reset();
  policies.attempt_timeout = std::chrono::seconds(2);
  resilience::Env env;
  env.metrics = &metrics;
  resilience::ServiceClient client(http, {.name = "unreliable", .base_url = options.base_url, .policies = policies}, env);

  ExerciseReport report;
  const auto start = Clock::now();
  int current = 0;
  client.circuit_breaker()->add_listener([&](const resilience::StateTransition& t) {
    const double at = std::chrono::duration<double>(Clock::now() - start).count();
    out << fmt::format("[{:8.3f} s] call {:4}  {:>9} -> {:<9}  {}\n", at, current, to_string(t.from), to_string(t.to),
                       t.reason)
        << std::flush;
    report.transitions.push_back({current, t.from, t.to, std::string(t.reason)});
  });

  out << fmt::format("{} calls to {}{} every {} ms; {}\n", options.calls, client.base_url(), options.path,
                     options.interval.count(), describe(options.breaker));

  asio::io_context ctx(1);
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    asio::steady_timer pace(ctx);
    auto next = Clock::now();
    for (current = 1; current <= options.calls; ++current) {
      next += options.interval;
      auto r = co_await client.get(options.path);
      if (r && r->ok()) {
        report.timeline += '.';
      } else if (!r && r.error().code == resilience::CallErrc::not_permitted) {
        report.timeline += '-';
      } else {
        report.timeline += 'x';
      }
      pace.expires_at(next);
      co_await pace.async_wait(asio::use_awaitable);
    }
  }, asio::detached);
  ctx.run();

  auto& calls = metrics.counter("circuit_breaker_calls_total", "", {"name", "outcome"});
  report.success = calls.with({"unreliable", "success"}).value();
  report.failure = calls.with({"unreliable", "failure"}).value();
  report.not_permitted = calls.with({"unreliable", "not_permitted"}).value();
  report.ignored = calls.with({"unreliable", "ignored"}).value();

  out << "\ntimeline ('.' success, 'x' failure, '-' not permitted: never sent):\n";
  for (std::size_t i = 0; i < report.timeline.size(); i += 50) out << "  " << report.timeline.substr(i, 50) << '\n';
  out << fmt::format("\noutcomes: success {}, failure {}, not_permitted {}, ignored {}  (total {})\n", report.success,
                     report.failure, report.not_permitted, report.ignored,
                     report.success + report.failure + report.not_permitted + report.ignored);
  out << fmt::format("final state: {}; transitions: {}\n", to_string(client.circuit_breaker()->state()),
                     report.transitions.size());
  return report;
}

}  // namespace unreliable
