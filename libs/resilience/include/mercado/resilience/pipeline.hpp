#pragma once
// The resilience pipeline: every policy around one outbound call, in a fixed order
// (outermost first; docs/resilience.md explains why):
//
//   1. total deadline   min(now + total_timeout, the caller's deadline); spent -> fail
//   2. retry            attempts, backoff, Retry-After, safety, budget (retry.hpp)
//   3. circuit breaker  one permit per attempt; refusal ends the call (no retry)
//   4. rate limiter     optional; waits up to rate_limiter_max_wait, else refuses
//   5. bulkhead         a slot per attempt, bounded wait (bulkhead.hpp)
//   6. attempt deadline min(total deadline, attempt start + attempt_timeout), handed to
//                       the attempt, which must honour it (http::Client does, and sends
//                       the remaining budget downstream as X-Request-Timeout-Ms)
//
// Refusals by the breaker, the rate limiter or the bulkhead never reach the transport.
// An attempt's duration (for slow-call detection) is measured from the end of step 5.
//
// Thread-safety: execute() from any thread, concurrently. The pipeline must outlive its
// calls.

#include <concepts>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include <mercado/core/clock.hpp>
#include <mercado/http/client.hpp>
#include <mercado/resilience/bulkhead.hpp>
#include <mercado/resilience/call_result.hpp>
#include <mercado/resilience/circuit_breaker.hpp>
#include <mercado/resilience/classify.hpp>
#include <mercado/resilience/env.hpp>
#include <mercado/resilience/rate_limiter.hpp>
#include <mercado/resilience/retry.hpp>
#include <mercado/resilience/retry_budget.hpp>

namespace mercado::resilience {

struct PipelineConfig {
  std::optional<CircuitBreakerConfig> circuit_breaker = CircuitBreakerConfig{};  // nullopt: none
  RetryConfig retry;                                                             // max_attempts 1: none
  std::optional<RetryBudgetConfig> retry_budget = RetryBudgetConfig{};           // nullopt: unlimited
  std::optional<BulkheadConfig> bulkhead = BulkheadConfig{};                     // nullopt: none
  std::shared_ptr<RateLimiter> rate_limiter;                                     // null: none
  core::Duration rate_limiter_max_wait{0};
  core::Duration total_timeout = std::chrono::seconds(10);  // all attempts and waits
  core::Duration attempt_timeout = std::chrono::seconds(3);  // one attempt
  OutcomeClassifier classify = classify_outcome;              // what the breaker counts
  RetryPredicate retryable = is_transient;                    // what may be retried
};

// What the pipeline needs to know about the call.
struct CallSpec {
  bool replay_safe = false;                  // idempotent method or an Idempotency-Key
  std::optional<core::SteadyTime> deadline;  // the caller's deadline, in Env::clock's time
};

// A borrowed attempt: a callable `awaitable<http::ClientResult>(core::SteadyTime deadline)`
// that makes one call which must end by `deadline` (Env::clock's time). Not copied: it
// must outlive the awaitable returned by execute() (co_await that in the same statement).
class AttemptRef {
 public:
  template <class F>
    requires(!std::same_as<std::remove_cvref_t<F>, AttemptRef> &&
             std::invocable<F&, core::SteadyTime>)
  AttemptRef(F& attempt) noexcept  // NOLINT(google-explicit-constructor): a view, like function_ref
      : object_(static_cast<void*>(std::addressof(attempt))),
        call_([](void* o, core::SteadyTime deadline) -> boost::asio::awaitable<http::ClientResult> {
          return (*static_cast<F*>(o))(deadline);
        }) {}

  boost::asio::awaitable<http::ClientResult> operator()(core::SteadyTime deadline) const {
    return call_(object_, deadline);
  }

 private:
  void* object_;
  boost::asio::awaitable<http::ClientResult> (*call_)(void*, core::SteadyTime);
};

class Pipeline {
 public:
  // `name` labels every metric of the policies (the downstream's name; unique per registry).
  // Throws std::invalid_argument for an invalid policy configuration or non-positive timeouts.
  Pipeline(std::string name, PipelineConfig config = {}, Env env = {});
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  boost::asio::awaitable<CallResult> execute(CallSpec spec, AttemptRef attempt);

  const std::string& name() const noexcept { return name_; }
  const PipelineConfig& config() const noexcept { return config_; }
  const Env& env() const noexcept { return env_; }
  CircuitBreaker* circuit_breaker() noexcept { return breaker_.get(); }
  Bulkhead* bulkhead() noexcept { return bulkhead_.get(); }
  RetryBudget* retry_budget() noexcept { return budget_.get(); }
  Retry& retry() noexcept { return *retry_; }

 private:
  std::string name_;
  PipelineConfig config_;
  Env env_;
  std::unique_ptr<CircuitBreaker> breaker_;
  std::unique_ptr<RetryBudget> budget_;
  std::unique_ptr<Retry> retry_;
  std::unique_ptr<Bulkhead> bulkhead_;
  obs::Counter* rate_limited_;
};

}  // namespace mercado::resilience
