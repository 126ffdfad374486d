// The pipeline's order and decisions, with scripted attempts (no network), a manual
// clock and a sleeper that advances it.
#include <mercado/resilience/pipeline.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include <mercado/resilience/token_bucket.hpp>

#include "test_env.hpp"
#include "test_support.hpp"

namespace mercado::resilience {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::TestEnv;

http::ClientResult status(int code, http::Headers headers = {}) {
  http::ClientResponse r;
  r.status = code;
  r.headers = std::move(headers);
  r.body = "status " + std::to_string(code);
  return r;
}

http::ClientResult error(http::ClientErrc code, bool maybe_delivered) {
  return std::unexpected(http::ClientError{code, std::string(http::to_string(code)), 0, {}, maybe_delivered});
}

// Returns its results in order (the last one repeats), remembers each attempt's deadline,
// and makes each attempt take `takes` of the manual clock.
struct Script {
  core::ManualClock& clock;
  std::vector<http::ClientResult> results;
  core::Duration takes{0};
  std::vector<core::SteadyTime> deadlines;
  int calls = 0;

  asio::awaitable<http::ClientResult> operator()(core::SteadyTime deadline) {
    deadlines.push_back(deadline);
    const auto i = static_cast<std::size_t>(std::min<int>(calls, static_cast<int>(results.size()) - 1));
    ++calls;
    clock.advance(takes);
    co_return results[i];
  }
};

CallResult run(Pipeline& p, CallSpec spec, Script& script) {
  return http::testing::run<CallResult>(
      [&]() -> asio::awaitable<CallResult> { co_return co_await p.execute(spec, script); });
}

PipelineConfig quiet_config() {
  PipelineConfig c;
  c.circuit_breaker = std::nullopt;
  c.retry_budget = std::nullopt;
  c.retry = {.max_attempts = 3, .backoff = {.initial = 100ms, .multiplier = 2, .jitter = 0, .max = 5s}};
  return c;
}

constexpr CallSpec kSafe{.replay_safe = true};
constexpr CallSpec kUnsafe{.replay_safe = false};

TEST(Pipeline, ASuccessPassesThroughOnce) {
  TestEnv t;
  Pipeline p("inventory", quiet_config(), t.env());
  Script s{t.clock, {status(200)}};
  auto r = run(p, kSafe, s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(s.calls, 1);
  EXPECT_TRUE(t.sleeper.delays().empty());
}

TEST(Pipeline, A4xxIsAnAnswerNotAFailure) {
  TestEnv t;
  Pipeline p("inventory", quiet_config(), t.env());
  Script s{t.clock, {status(404)}};
  auto r = run(p, kSafe, s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(s.calls, 1);
  auto e = expect_2xx(r);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().downstream.status, 404);
  EXPECT_EQ(to_error(e.error(), "inventory").code, Errc::internal);
}

TEST(Pipeline, RetriesTransientFailuresWithBackoff) {
  TestEnv t;
  Pipeline p("inventory", quiet_config(), t.env());
  Script s{t.clock, {status(503), error(http::ClientErrc::timeout, true), status(200)}};
  auto r = run(p, kSafe, s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(s.calls, 3);
  EXPECT_EQ(t.sleeper.delays(), (std::vector<core::Duration>{100ms, 200ms}));
  EXPECT_EQ(t.counter("retry_attempts_total", "inventory"), 2U);
}

TEST(Pipeline, GivesUpAfterMaxAttemptsWithTheLastAnswer) {
  TestEnv t;
  Pipeline p("inventory", quiet_config(), t.env());
  Script s{t.clock, {status(502), status(503), status(504)}};
  auto r = run(p, kSafe, s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 504);
  EXPECT_EQ(s.calls, 3);
  EXPECT_EQ(expect_2xx(r).error().downstream.status, 504);
}

TEST(Pipeline, TheLastTransportErrorIsTheResult) {
  TestEnv t;
  Pipeline p("inventory", quiet_config(), t.env());
  Script s{t.clock, {error(http::ClientErrc::closed, true)}};
  auto r = run(p, kSafe, s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, CallErrc::downstream);
  EXPECT_EQ(r.error().downstream.code, http::ClientErrc::closed);
  EXPECT_EQ(r.error().attempts, 3U);
  EXPECT_EQ(to_error(r.error(), "inventory").code, Errc::unavailable);
}

TEST(Pipeline, NonTransientFailuresAreNotRetried) {
  TestEnv t;
  Pipeline p("inventory", quiet_config(), t.env());
  Script s{t.clock, {error(http::ClientErrc::protocol, true)}};
  auto r = run(p, kSafe, s);
  ASSERT_FALSE(r);
  EXPECT_EQ(s.calls, 1);
}

TEST(Pipeline, AnUnsafeRequestThatMayHaveArrivedIsNotRetried) {
  TestEnv t;
  Pipeline p("inventory", quiet_config(), t.env());
  Script s{t.clock, {status(503), status(200)}};
  auto r = run(p, kUnsafe, s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(s.calls, 1);
  EXPECT_EQ(t.counter("retry_attempts_total", "inventory"), 0U);
}

TEST(Pipeline, AnUnsafeRequestThatNeverArrivedIsRetried) {
  TestEnv t;
  Pipeline p("inventory", quiet_config(), t.env());
  Script s{t.clock, {error(http::ClientErrc::refused, false), status(201)}};
  auto r = run(p, kUnsafe, s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 201);
  EXPECT_EQ(s.calls, 2);
}

TEST(Pipeline, HonoursRetryAfter) {
  TestEnv t;
  Pipeline p("inventory", quiet_config(), t.env());
  Script s{t.clock, {status(429, {{"Retry-After", "2"}}), status(200)}};
  auto r = run(p, kSafe, s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(t.sleeper.delays(), (std::vector<core::Duration>{2s}));
}

TEST(Pipeline, ARetryAfterBeyondTheDeadlineEndsTheCall) {
  TestEnv t;
  auto c = quiet_config();
  c.total_timeout = 5s;
  Pipeline p("inventory", c, t.env());
  Script s{t.clock, {status(503, {{"Retry-After", "6"}}), status(200)}};
  auto r = run(p, kSafe, s);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(s.calls, 1);
}

TEST(Pipeline, TheBudgetStopsRetries) {
  TestEnv t;
  auto c = quiet_config();
  c.retry_budget = RetryBudgetConfig{.ratio = 0.0, .min_retries = 2, .window = 10s};
  c.retry.max_attempts = 10;
  Pipeline p("inventory", c, t.env());
  Script s{t.clock, {status(503)}};
  auto r = run(p, kSafe, s);
  EXPECT_EQ(s.calls, 3);  // the first call + the 2 retries the budget holds
  EXPECT_EQ(r->status, 503);
  Script again{t.clock, {status(503)}};
  run(p, kSafe, again);
  EXPECT_EQ(again.calls, 1);  // no budget left in this window
  EXPECT_EQ(t.counter("retry_attempts_total", "inventory"), 2U);
  EXPECT_EQ(t.counter("retry_budget_exhausted_total", "inventory"), 2U);
}

TEST(Pipeline, AnOpenBreakerFailsFastWithoutAnAttempt) {
  TestEnv t;
  auto c = quiet_config();
  c.retry.max_attempts = 1;
  c.circuit_breaker = CircuitBreakerConfig::consecutive(2, 30s, 1);
  Pipeline p("inventory", c, t.env());
  Script s{t.clock, {status(500)}};
  run(p, kSafe, s);
  run(p, kSafe, s);
  ASSERT_EQ(p.circuit_breaker()->state(), CircuitState::open);
  auto r = run(p, kSafe, s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, CallErrc::not_permitted);
  EXPECT_EQ(r.error().attempts, 0U);
  EXPECT_EQ(s.calls, 2);
  EXPECT_EQ(to_error(r.error(), "inventory").code, Errc::unavailable);
  EXPECT_EQ(t.calls("inventory", "failure"), 2U);
  EXPECT_EQ(t.calls("inventory", "not_permitted"), 1U);
}

TEST(Pipeline, RetriesStopWhenTheBreakerOpens) {
  TestEnv t;
  auto c = quiet_config();
  c.retry.max_attempts = 5;
  c.circuit_breaker = CircuitBreakerConfig::consecutive(2, 30s, 1);
  Pipeline p("inventory", c, t.env());
  Script s{t.clock, {status(503)}};
  auto r = run(p, kSafe, s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, CallErrc::not_permitted);
  EXPECT_EQ(r.error().attempts, 2U);
  EXPECT_EQ(s.calls, 2);
}

TEST(Pipeline, EachAttemptGetsItsOwnDeadlineWithinTheTotal) {
  TestEnv t;
  auto c = quiet_config();
  c.total_timeout = 5s;
  c.attempt_timeout = 2s;
  Pipeline p("inventory", c, t.env());
  Script s{t.clock, {error(http::ClientErrc::timeout, true)}, 2s};
  const auto start = t.clock.now();
  auto r = run(p, kSafe, s);
  ASSERT_FALSE(r);
  // attempt 1 at 0 s (deadline 2 s); backoff 100 ms; attempt 2 at 2.1 s (deadline 4.1 s);
  // backoff 200 ms would start attempt 3 at 4.3 s with 0.7 s left: allowed, capped at 5 s.
  ASSERT_EQ(s.deadlines.size(), 3U);
  EXPECT_EQ(s.deadlines[0] - start, 2s);
  EXPECT_EQ(s.deadlines[1] - start, 4100ms);
  EXPECT_EQ(s.deadlines[2] - start, 5s);
}

TEST(Pipeline, TheCallersDeadlineCapsEverything) {
  TestEnv t;
  Pipeline p("inventory", quiet_config(), t.env());
  Script s{t.clock, {status(200)}};
  const auto start = t.clock.now();
  auto r = run(p, CallSpec{.replay_safe = true, .deadline = start + 800ms}, s);
  ASSERT_TRUE(r);
  ASSERT_EQ(s.deadlines.size(), 1U);
  EXPECT_EQ(s.deadlines[0] - start, 800ms);
}

TEST(Pipeline, NoAttemptOnceTheCallersDeadlineHasPassed) {
  TestEnv t;
  Pipeline p("inventory", quiet_config(), t.env());
  Script s{t.clock, {status(200)}};
  auto r = run(p, CallSpec{.replay_safe = true, .deadline = t.clock.now()}, s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, CallErrc::deadline_exceeded);
  EXPECT_EQ(s.calls, 0);
  EXPECT_EQ(to_error(r.error(), "inventory").code, Errc::timeout);
}

TEST(Pipeline, SlowAttemptsCountAsSlowCalls) {
  TestEnv t;
  auto c = quiet_config();
  CircuitBreakerConfig cb;
  cb.sliding_window_size = 2;
  cb.minimum_number_of_calls = 2;
  cb.slow_call_duration_threshold = 1s;
  c.circuit_breaker = cb;
  c.retry.max_attempts = 1;
  Pipeline p("inventory", c, t.env());
  Script s{t.clock, {status(200)}, 1500ms};
  run(p, kSafe, s);
  EXPECT_EQ(p.circuit_breaker()->snapshot().slow_calls, 1U);
  run(p, kSafe, s);
  EXPECT_EQ(p.circuit_breaker()->state(), CircuitState::open);  // 100 % slow
}

TEST(Pipeline, AFullBulkheadRefusesAndHandsTheHalfOpenSlotBack) {
  TestEnv t;
  auto c = quiet_config();
  c.circuit_breaker = CircuitBreakerConfig::consecutive(1, 1s, 1);
  c.bulkhead = BulkheadConfig{.max_concurrent_calls = 1};
  Pipeline p("inventory", c, t.env());
  p.circuit_breaker()->transition_to(CircuitState::half_open);  // one trial slot
  auto held = p.bulkhead()->try_acquire();
  Script s{t.clock, {status(200)}};
  auto r = run(p, kSafe, s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, CallErrc::bulkhead_full);
  EXPECT_EQ(s.calls, 0);
  EXPECT_EQ(p.circuit_breaker()->snapshot().half_open_permits_left, 1U);
  EXPECT_EQ(t.counter("bulkhead_rejected_total", "inventory"), 1U);
  held.release();
  ASSERT_TRUE(run(p, kSafe, s));
  EXPECT_EQ(p.circuit_breaker()->state(), CircuitState::closed);
}

TEST(Pipeline, TheRateLimiterRefusesOrWaitsWithinItsBound) {
  TestEnv t;
  auto c = quiet_config();
  c.rate_limiter = std::make_shared<TokenBucket>(TokenBucketConfig{.capacity = 1, .refill_tokens = 1}, t.clock);
  Pipeline refusing("inventory", c, t.env());
  Script s{t.clock, {status(200)}};
  ASSERT_TRUE(run(refusing, kSafe, s));
  auto r = run(refusing, kSafe, s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, CallErrc::rate_limited);
  EXPECT_EQ(s.calls, 1);
  EXPECT_EQ(t.counter("rate_limiter_rejected_total", "inventory"), 1U);

  c.rate_limiter_max_wait = 2s;
  Pipeline waiting("search", c, t.env());  // shares the (empty) bucket
  auto w = run(waiting, kSafe, s);
  ASSERT_TRUE(w);
  EXPECT_EQ(s.calls, 2);
  EXPECT_EQ(t.sleeper.delays(), (std::vector<core::Duration>{1s}));
}

TEST(Pipeline, AThrowingAttemptHandsItsPermitBack) {
  TestEnv t;
  auto c = quiet_config();
  c.circuit_breaker = CircuitBreakerConfig::consecutive(1, 1s, 1);
  Pipeline p("inventory", c, t.env());
  p.circuit_breaker()->transition_to(CircuitState::half_open);
  auto throwing = [](core::SteadyTime) -> asio::awaitable<http::ClientResult> {
    throw std::logic_error("bug in the attempt");
    co_return status(200);
  };
  EXPECT_THROW(http::testing::run<CallResult>([&]() -> asio::awaitable<CallResult> {
                 co_return co_await p.execute(kSafe, throwing);
               }),
               std::logic_error);
  EXPECT_EQ(p.circuit_breaker()->snapshot().half_open_permits_left, 1U);
}

TEST(Pipeline, InvalidConfigurationsThrow) {
  TestEnv t;
  auto c = quiet_config();
  c.total_timeout = 0s;
  EXPECT_THROW(Pipeline("x", c, t.env()), std::invalid_argument);
  c = quiet_config();
  c.classify = nullptr;
  EXPECT_THROW(Pipeline("x", c, t.env()), std::invalid_argument);
}

}  // namespace
}  // namespace mercado::resilience
