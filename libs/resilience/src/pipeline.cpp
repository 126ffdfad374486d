#include <mercado/resilience/pipeline.hpp>

#include <algorithm>
#include <stdexcept>

#include <boost/asio/this_coro.hpp>

#include <mercado/observability/log.hpp>

namespace mercado::resilience {

namespace asio = boost::asio;

namespace {

CallResult to_call_result(http::ClientResult r, std::uint32_t attempts) {
  if (r) return std::move(*r);
  CallError e;
  e.code = CallErrc::downstream;
  e.message = r.error().message;
  e.downstream = std::move(r.error());
  e.attempts = attempts;
  return std::unexpected(std::move(e));
}

std::unexpected<CallError> refuse(CallErrc code, std::string message, std::uint32_t attempts) {
  CallError e;
  e.code = code;
  e.message = std::move(message);
  e.attempts = attempts;
  return std::unexpected(std::move(e));
}

}  // namespace

Pipeline::Pipeline(std::string name, PipelineConfig config, Env env)
    : name_(std::move(name)), config_(std::move(config)), env_(env) {
  if (env_.clock == nullptr || env_.metrics == nullptr || env_.random == nullptr || env_.sleeper == nullptr) {
    throw std::invalid_argument("pipeline: Env::clock, metrics, random and sleeper are required");
  }
  if (config_.total_timeout.count() <= 0 || config_.attempt_timeout.count() <= 0) {
    throw std::invalid_argument("pipeline: timeouts must be > 0");
  }
  if (config_.rate_limiter_max_wait.count() < 0) throw std::invalid_argument("pipeline: rate_limiter_max_wait must be >= 0");
  if (!config_.classify || !config_.retryable) throw std::invalid_argument("pipeline: classify and retryable are required");
  if (config_.circuit_breaker) breaker_ = std::make_unique<CircuitBreaker>(name_, *config_.circuit_breaker, env_);
  if (config_.retry_budget) budget_ = std::make_unique<RetryBudget>(*config_.retry_budget, env_);
  retry_ = std::make_unique<Retry>(name_, config_.retry, env_, budget_.get());
  if (config_.bulkhead) bulkhead_ = std::make_unique<Bulkhead>(name_, *config_.bulkhead, env_);
  rate_limited_ = &env_.metrics->counter("rate_limiter_rejected_total", "Outbound calls refused by a rate limiter", {"name"})
                       .with({name_});
}

Pipeline::~Pipeline() = default;

asio::awaitable<CallResult> Pipeline::execute(CallSpec spec, AttemptRef attempt) {
  const core::Clock& clock = *env_.clock;
  const core::SteadyTime start = clock.now();
  core::SteadyTime deadline = start + config_.total_timeout;
  if (spec.deadline) deadline = std::min(deadline, *spec.deadline);
  if (deadline <= start) co_return refuse(CallErrc::deadline_exceeded, "the caller's deadline has passed", 0);
  if (budget_) budget_->record_call(start);

  // The clock is read again only after something that may have waited.
  core::SteadyTime now = start;
  std::uint32_t attempts = 0;
  for (std::uint32_t n = 1;; ++n) {
    // 3. circuit breaker
    CircuitPermit permit;
    if (breaker_) {
      permit = breaker_->try_acquire();
      if (!permit) {
        log::debug("call not permitted", {{"name", name_}, {"state", to_string(permit.state())}});
        co_return refuse(CallErrc::not_permitted,
                         "circuit breaker " + name_ + " is " + std::string(to_string(permit.state())), attempts);
      }
    }
    auto give_back = [&] {
      if (breaker_) breaker_->on_result(permit, Outcome::ignored, core::Duration(0));
    };

    // 4. rate limiter
    if (config_.rate_limiter) {
      core::Duration waited{0};
      for (;;) {
        const RateDecision d = config_.rate_limiter->try_acquire();
        if (d.allowed) break;
        if (d.retry_after > config_.rate_limiter_max_wait - waited || now + d.retry_after >= deadline) {
          give_back();
          rate_limited_->inc();
          log::debug("call rate limited", {{"name", name_}});
          co_return refuse(CallErrc::rate_limited, "outbound rate limit for " + name_ + " reached", attempts);
        }
        co_await env_.sleeper->sleep(d.retry_after);
        waited += d.retry_after;
        now = clock.now();
      }
    }

    // 5. bulkhead
    BulkheadPermit slot;
    if (bulkhead_) {
      if (bulkhead_->config().max_wait.count() == 0) {
        slot = bulkhead_->try_acquire();
      } else {
        slot = co_await bulkhead_->acquire(deadline);
        now = clock.now();
      }
      if (!slot) {
        give_back();
        co_return refuse(CallErrc::bulkhead_full, "too many calls in flight to " + name_, attempts);
      }
    }

    // 6. the attempt, with its own deadline
    const core::SteadyTime attempt_start = now;
    if (attempt_start >= deadline) {
      slot.release();
      give_back();
      co_return refuse(CallErrc::deadline_exceeded, "the call's time budget was spent", attempts);
    }
    const core::SteadyTime attempt_deadline = std::min(deadline, attempt_start + config_.attempt_timeout);
    ++attempts;
    http::ClientResult result;
    try {
      result = co_await attempt(attempt_deadline);
    } catch (...) {  // a bug in the attempt: hand the permit back so HALF_OPEN is not stuck, then propagate
      slot.release();
      give_back();
      throw;
    }
    now = clock.now();
    const core::Duration elapsed = now - attempt_start;
    slot.release();
    if (breaker_) breaker_->on_result(permit, config_.classify(result), elapsed);

    // 2. retry
    if (!config_.retryable(result)) co_return to_call_result(std::move(result), attempts);
    const FailedAttempt failed{.attempt = n,
                               .retryable = true,
                               .safe = spec.replay_safe || !maybe_delivered(result),
                               .retry_after = retry_after_of(result, clock.wall_now()),
                               .deadline = deadline};
    const RetryDecision decision = retry_->decide(failed);
    if (!decision) co_return to_call_result(std::move(result), attempts);
    co_await env_.sleeper->sleep(decision.delay);
    now = clock.now();
    auto cs = co_await asio::this_coro::cancellation_state;
    if (cs.cancelled() != asio::cancellation_type::none) co_return to_call_result(std::move(result), attempts);
  }
}

}  // namespace mercado::resilience
