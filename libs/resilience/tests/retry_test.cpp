// Backoff bounds, retry verdicts, Retry-After and the retry budget.
#include <mercado/resilience/retry.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <stdexcept>
#include <thread>
#include <vector>

#include "test_env.hpp"

namespace mercado::resilience {
namespace {

using namespace std::chrono_literals;
using testing::TestEnv;

TEST(Backoff, StaysWithinItsBoundsForEverySeededSample) {
  const BackoffConfig c{.initial = 500ms, .multiplier = 1.5, .jitter = 0.5, .max = 10s};
  SeededRandom random(7);
  for (std::uint32_t retry = 1; retry <= 12; ++retry) {
    const double base = std::min(500e6 * std::pow(1.5, retry - 1), 10e9);
    const auto lo = core::Duration(static_cast<std::int64_t>(base * 0.5));
    const auto hi = core::Duration(static_cast<std::int64_t>(std::min(base * 1.5, 10e9)));
    core::Duration seen_min = core::Duration::max(), seen_max = core::Duration::min();
    for (int i = 0; i < 2000; ++i) {
      const auto d = backoff_delay(c, retry, random.next_unit());
      ASSERT_GE(d, lo) << "retry " << retry;
      ASSERT_LE(d, hi) << "retry " << retry;
      ASSERT_LE(d, c.max);
      seen_min = std::min(seen_min, d);
      seen_max = std::max(seen_max, d);
    }
    // The jitter really spreads the delays (not a constant): most of the range is used.
    EXPECT_LT(seen_min - lo, (hi - lo) / 10) << "retry " << retry;
    EXPECT_LT(hi - seen_max, (hi - lo) / 10) << "retry " << retry;
  }
}

TEST(Backoff, ExactValuesAtTheEndsOfTheJitter) {
  const BackoffConfig c{.initial = 500ms, .multiplier = 1.5, .jitter = 0.5, .max = 30s};
  EXPECT_EQ(backoff_delay(c, 1, 0.0), 250ms);
  EXPECT_EQ(backoff_delay(c, 1, 0.5), 500ms);
  EXPECT_EQ(backoff_delay(c, 2, 0.5), 750ms);
  EXPECT_EQ(backoff_delay(c, 3, 0.0), 562500us);
  const BackoffConfig no_jitter{.initial = 100ms, .multiplier = 2, .jitter = 0, .max = 1s};
  EXPECT_EQ(backoff_delay(no_jitter, 1, 0.9), 100ms);
  EXPECT_EQ(backoff_delay(no_jitter, 4, 0.9), 800ms);
  EXPECT_EQ(backoff_delay(no_jitter, 5, 0.9), 1s);     // capped
  EXPECT_EQ(backoff_delay(no_jitter, 500, 0.1), 1s);   // no overflow
}

TEST(Backoff, SeededRandomIsReproducible) {
  SeededRandom a(123), b(123), c(124);
  for (int i = 0; i < 100; ++i) {
    const double x = a.next_unit();
    EXPECT_EQ(x, b.next_unit());
    EXPECT_GE(x, 0.0);
    EXPECT_LT(x, 1.0);
  }
  EXPECT_NE(a.next_unit(), c.next_unit());
}

class RetryDecide : public ::testing::Test {
 protected:
  TestEnv t;
  RetryConfig config{.max_attempts = 3,
                     .backoff = {.initial = 100ms, .multiplier = 2, .jitter = 0, .max = 5s},
                     .honour_retry_after = true,
                     .max_retry_after = 10s};
  Retry retry{"inventory", config, t.env()};

  FailedAttempt failed(std::uint32_t attempt) {
    return {.attempt = attempt, .retryable = true, .safe = true, .retry_after = std::nullopt,
            .deadline = t.clock.now() + 1min};
  }
};

TEST_F(RetryDecide, RetriesWithBackoffUntilMaxAttemptsCountingTheFirst) {
  auto first = retry.decide(failed(1));
  ASSERT_TRUE(first);
  EXPECT_EQ(first.delay, 100ms);
  auto second = retry.decide(failed(2));
  ASSERT_TRUE(second);
  EXPECT_EQ(second.delay, 200ms);
  EXPECT_EQ(retry.decide(failed(3)).verdict, RetryVerdict::attempts_exhausted);
  EXPECT_EQ(t.counter("retry_attempts_total", "inventory"), 2U);
}

TEST_F(RetryDecide, OnlyTransientFailuresAreRetried) {
  auto f = failed(1);
  f.retryable = false;
  EXPECT_EQ(retry.decide(f).verdict, RetryVerdict::not_retryable);
}

TEST_F(RetryDecide, UnsafeRequestsAreNotRetried) {
  auto f = failed(1);
  f.safe = false;
  EXPECT_EQ(retry.decide(f).verdict, RetryVerdict::unsafe);
  EXPECT_EQ(t.counter("retry_attempts_total", "inventory"), 0U);
}

TEST_F(RetryDecide, RetryAfterIsAFloorForTheDelay) {
  auto f = failed(1);
  f.retry_after = 3s;
  auto d = retry.decide(f);
  ASSERT_TRUE(d);
  EXPECT_EQ(d.delay, 3s);
  f.retry_after = 10ms;  // shorter than the backoff: the backoff wins
  EXPECT_EQ(retry.decide(f).delay, 100ms);
}

TEST_F(RetryDecide, ATooLongRetryAfterEndsTheCall) {
  auto f = failed(1);
  f.retry_after = 11s;
  EXPECT_EQ(retry.decide(f).verdict, RetryVerdict::retry_after_too_long);
}

TEST_F(RetryDecide, NoRetryThatCannotStartBeforeTheDeadline) {
  auto f = failed(1);
  f.deadline = t.clock.now() + 100ms;  // the delay would end exactly at the deadline
  EXPECT_EQ(retry.decide(f).verdict, RetryVerdict::deadline);
  f.deadline = t.clock.now() + 101ms;
  EXPECT_TRUE(retry.decide(f));
}

TEST(RetryConfigCheck, InvalidConfigurationsThrow) {
  TestEnv t;
  EXPECT_THROW(Retry("x", RetryConfig{.max_attempts = 0}, t.env()), std::invalid_argument);
  RetryConfig c;
  c.backoff.multiplier = 0.5;
  EXPECT_THROW(Retry("x", c, t.env()), std::invalid_argument);
  c = {};
  c.backoff.jitter = 1.5;
  EXPECT_THROW(Retry("x", c, t.env()), std::invalid_argument);
}

TEST(RetryAfter, ParsesSecondsAndHttpDates) {
  using std::chrono::sys_days;
  const auto now = sys_days(std::chrono::year(2024) / 3 / 1) + 12h;  // 2024-03-01 12:00:00 UTC
  EXPECT_EQ(parse_retry_after("120", now), 120s);
  EXPECT_EQ(parse_retry_after(" 0 ", now), 0s);
  EXPECT_EQ(parse_retry_after("Fri, 01 Mar 2024 12:00:30 GMT", now), 30s);
  EXPECT_EQ(parse_retry_after("Thu, 29 Feb 2024 12:00:00 GMT", now), 0s);  // in the past
  EXPECT_EQ(parse_retry_after("99999999999999999999", now), 1'000'000'000s);  // saturates
  EXPECT_FALSE(parse_retry_after("", now));
  EXPECT_FALSE(parse_retry_after("-5", now));
  EXPECT_FALSE(parse_retry_after("1.5", now));
  EXPECT_FALSE(parse_retry_after("Fri, 01 Foo 2024 12:00:30 GMT", now));
  EXPECT_FALSE(parse_retry_after("Fri, 31 Feb 2024 12:00:30 GMT", now));
  EXPECT_FALSE(parse_retry_after("Friday, 01-Mar-24 12:00:30 GMT", now));  // obsolete RFC 850 form
}

TEST(RetryBudgetTest, RetriesAreCappedAtAShareOfCallsPlusTheFloor) {
  TestEnv t;
  RetryBudget budget({.ratio = 0.2, .min_retries = 2, .window = 10s}, t.env());
  for (int i = 0; i < 10; ++i) budget.record_call();
  EXPECT_EQ(budget.snapshot().allowed, 4U);  // 2 + 20 % of 10
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(budget.try_spend()) << i;
  EXPECT_FALSE(budget.try_spend());
  for (int i = 0; i < 5; ++i) budget.record_call();  // 15 calls: 2 + 3 = 5 allowed
  EXPECT_TRUE(budget.try_spend());
  EXPECT_FALSE(budget.try_spend());
  EXPECT_EQ(budget.snapshot().retries, 5U);
}

TEST(RetryBudgetTest, TheWindowSlides) {
  TestEnv t;
  RetryBudget budget({.ratio = 0.0, .min_retries = 1, .window = 10s}, t.env());
  EXPECT_TRUE(budget.try_spend());
  EXPECT_FALSE(budget.try_spend());
  t.clock.advance(9s);
  EXPECT_FALSE(budget.try_spend());
  t.clock.advance(1s);  // the spent retry's bucket left the window
  EXPECT_TRUE(budget.try_spend());
}

TEST(RetryBudgetTest, ASpentBudgetStopsRetriesAndIsCounted) {
  TestEnv t;
  RetryBudget budget({.ratio = 0.0, .min_retries = 1, .window = 10s}, t.env());
  Retry retry("payments", RetryConfig{.max_attempts = 5, .backoff = {.initial = 1ms, .jitter = 0}}, t.env(), &budget);
  const FailedAttempt f{.attempt = 1, .retryable = true, .safe = true, .deadline = t.clock.now() + 1min};
  EXPECT_TRUE(retry.decide(f));
  EXPECT_EQ(retry.decide(f).verdict, RetryVerdict::budget_exhausted);
  EXPECT_EQ(retry.decide(f).verdict, RetryVerdict::budget_exhausted);
  EXPECT_EQ(t.counter("retry_attempts_total", "payments"), 1U);
  EXPECT_EQ(t.counter("retry_budget_exhausted_total", "payments"), 2U);
}

TEST(RetryBudgetTest, CallsFromManyThreadsAreAllCountedAndRetriesNeverExceedTheBudget) {
  TestEnv t;
  RetryBudget budget({.ratio = 0.1, .min_retries = 0, .window = 10s}, t.env());
  std::atomic<int> spent{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 5000; ++k) {
        budget.record_call();
        if (k % 2 == 0 && budget.try_spend()) spent.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto s = budget.snapshot();
  EXPECT_EQ(s.calls, 20'000U);
  EXPECT_EQ(s.retries, static_cast<std::uint64_t>(spent.load()));
  EXPECT_LE(s.retries, s.allowed);
  EXPECT_EQ(s.allowed, 2'000U);
  EXPECT_GE(spent.load(), 1'900);  // retries were wanted far more often than allowed
}

TEST(RetryBudgetTest, InvalidConfigurationsThrow) {
  TestEnv t;
  EXPECT_THROW(RetryBudget({.ratio = -0.1}, t.env()), std::invalid_argument);
  EXPECT_THROW(RetryBudget({.window = core::Duration(5)}, t.env()), std::invalid_argument);
}

}  // namespace
}  // namespace mercado::resilience
