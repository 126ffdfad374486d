// resilience4j's rate model: count- and time-based windows, minimum calls, failure and
// slow-call rates, HALF_OPEN trial calls.
#include <mercado/resilience/circuit_breaker.hpp>

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "test_env.hpp"

namespace mercado::resilience {
namespace {

using namespace std::chrono_literals;
using testing::TestEnv;

bool call(CircuitBreaker& cb, Outcome outcome, core::Duration elapsed = 1ms) {
  auto p = cb.try_acquire();
  if (!p) return false;
  cb.on_result(p, outcome, elapsed);
  return true;
}

CircuitBreakerConfig count_based(std::uint32_t window, std::uint32_t minimum, float failure_rate = 50) {
  CircuitBreakerConfig c;
  c.model = BreakerModel::rate;
  c.sliding_window_type = SlidingWindowType::count_based;
  c.sliding_window_size = window;
  c.minimum_number_of_calls = minimum;
  c.failure_rate_threshold = failure_rate;
  c.wait_in_open = 10s;
  c.permitted_calls_in_half_open = 4;
  return c;
}

CircuitBreakerConfig time_based(std::uint32_t seconds, std::uint32_t minimum) {
  CircuitBreakerConfig c = count_based(seconds, minimum);
  c.sliding_window_type = SlidingWindowType::time_based;
  return c;
}

TEST(RateModel, DefaultsAreResilience4js) {
  CircuitBreakerConfig c;
  EXPECT_EQ(c.model, BreakerModel::rate);
  EXPECT_EQ(c.failure_rate_threshold, 50.0F);
  EXPECT_EQ(c.slow_call_rate_threshold, 100.0F);
  EXPECT_EQ(c.slow_call_duration_threshold, 60s);
  EXPECT_EQ(c.sliding_window_type, SlidingWindowType::count_based);
  EXPECT_EQ(c.sliding_window_size, 100U);
  EXPECT_EQ(c.minimum_number_of_calls, 100U);
  EXPECT_EQ(c.wait_in_open, 60s);
  EXPECT_EQ(c.permitted_calls_in_half_open, 10U);
  EXPECT_FALSE(c.automatic_transition_to_half_open);
}

TEST(RateModel, NoRateBelowTheMinimumNumberOfCalls) {
  TestEnv t;
  CircuitBreaker cb("r", count_based(10, 5), t.env());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(call(cb, Outcome::failure));
  EXPECT_EQ(cb.state(), CircuitState::closed);
  EXPECT_EQ(cb.snapshot().failure_rate, -1.0F);
  EXPECT_EQ(cb.snapshot().calls, 4U);
  ASSERT_TRUE(call(cb, Outcome::failure));  // 5 of 5 failed
  EXPECT_EQ(cb.state(), CircuitState::open);
}

TEST(RateModel, OpensWhenTheFailureRateReachesTheThreshold) {
  TestEnv t;
  CircuitBreaker cb("r", count_based(10, 5), t.env());
  for (auto o : {Outcome::failure, Outcome::failure, Outcome::success, Outcome::success, Outcome::success}) {
    ASSERT_TRUE(call(cb, o));
  }
  EXPECT_EQ(cb.state(), CircuitState::closed);  // 40 %
  EXPECT_FLOAT_EQ(cb.snapshot().failure_rate, 40.0F);
  ASSERT_TRUE(call(cb, Outcome::failure));  // 3 of 6 = 50 %: the threshold is inclusive
  EXPECT_EQ(cb.state(), CircuitState::open);
}

TEST(RateModel, TheCountWindowSlides) {
  TestEnv t;
  CircuitBreaker cb("r", count_based(4, 4), t.env());
  for (auto o : {Outcome::failure, Outcome::success, Outcome::success, Outcome::success}) ASSERT_TRUE(call(cb, o));
  EXPECT_FLOAT_EQ(cb.snapshot().failure_rate, 25.0F);
  ASSERT_TRUE(call(cb, Outcome::success));  // the failure leaves the window
  EXPECT_FLOAT_EQ(cb.snapshot().failure_rate, 0.0F);
  EXPECT_EQ(cb.snapshot().calls, 4U);
  ASSERT_TRUE(call(cb, Outcome::failure));  // S S S F
  EXPECT_EQ(cb.state(), CircuitState::closed);
  ASSERT_TRUE(call(cb, Outcome::failure));  // S S F F
  EXPECT_EQ(cb.state(), CircuitState::open);
}

TEST(RateModel, TheMinimumIsClampedToACountWindow) {
  TestEnv t;
  CircuitBreaker cb("r", count_based(5, 100), t.env());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(call(cb, Outcome::failure));
  EXPECT_EQ(cb.state(), CircuitState::open);
}

TEST(RateModel, IgnoredCallsStayOutOfTheWindow) {
  TestEnv t;
  CircuitBreaker cb("r", count_based(4, 4), t.env());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(call(cb, Outcome::ignored));
  EXPECT_EQ(cb.snapshot().calls, 0U);
  EXPECT_EQ(t.calls("r", "ignored"), 10U);
}

TEST(RateModel, SlowCallsCount) {
  TestEnv t;
  auto c = count_based(10, 4, 100);
  c.slow_call_duration_threshold = 2s;
  c.slow_call_rate_threshold = 50;
  CircuitBreaker cb("r", c, t.env());
  ASSERT_TRUE(call(cb, Outcome::success, 2s));  // slow: the threshold is inclusive
  ASSERT_TRUE(call(cb, Outcome::success, 1999ms));
  ASSERT_TRUE(call(cb, Outcome::success, 1ms));
  EXPECT_EQ(cb.snapshot().slow_calls, 1U);
  EXPECT_EQ(cb.state(), CircuitState::closed);
  ASSERT_TRUE(call(cb, Outcome::failure, 5s));  // slow and failed: 2 of 4 slow
  EXPECT_EQ(cb.state(), CircuitState::open);
}

TEST(RateModel, SlowSuccessesAloneOpenAtTheDefaultSlowRate) {
  TestEnv t;
  auto c = count_based(4, 4, 100);
  c.slow_call_duration_threshold = 1s;  // slow_call_rate_threshold stays 100 %
  CircuitBreaker cb("r", c, t.env());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(call(cb, Outcome::success, 3s));
  ASSERT_TRUE(call(cb, Outcome::success, 10ms));
  EXPECT_EQ(cb.state(), CircuitState::closed);  // 75 %
  ASSERT_TRUE(call(cb, Outcome::success, 3s));  // the fast one is still in; S S S F(ast)... 3 of 4
  EXPECT_EQ(cb.state(), CircuitState::closed);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(call(cb, Outcome::success, 3s));
  EXPECT_EQ(cb.state(), CircuitState::open);  // 4 of 4 slow
}

TEST(RateModel, TimeWindowExpiresOldCalls) {
  TestEnv t;
  CircuitBreaker cb("r", time_based(10, 4), t.env());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(call(cb, Outcome::failure));
  EXPECT_EQ(cb.snapshot().calls, 3U);
  t.clock.advance(10s);  // the window is (now - 10 s, now]: the failures have left it
  EXPECT_EQ(cb.snapshot().calls, 0U);
  ASSERT_TRUE(call(cb, Outcome::failure));
  EXPECT_EQ(cb.state(), CircuitState::closed);
  EXPECT_EQ(cb.snapshot().calls, 1U);
}

TEST(RateModel, TimeWindowKeepsTheCallsOfItsLastSeconds) {
  TestEnv t;
  CircuitBreaker cb("r", time_based(10, 4), t.env());
  ASSERT_TRUE(call(cb, Outcome::failure));  // t = 0
  t.clock.advance(5s);
  ASSERT_TRUE(call(cb, Outcome::failure));  // t = 5
  ASSERT_TRUE(call(cb, Outcome::success));
  t.clock.advance(5s);                      // t = 10: the t = 0 failure left
  ASSERT_TRUE(call(cb, Outcome::success));  // 1 failure of 3
  EXPECT_EQ(cb.snapshot().calls, 3U);
  EXPECT_EQ(cb.snapshot().failed_calls, 1U);
  ASSERT_TRUE(call(cb, Outcome::failure));  // 2 of 4 = 50 %
  EXPECT_EQ(cb.state(), CircuitState::open);
}

TEST(RateModel, TimeWindowAfterALongSilenceStartsEmpty) {
  TestEnv t;
  CircuitBreaker cb("r", time_based(10, 2), t.env());
  ASSERT_TRUE(call(cb, Outcome::failure));
  t.clock.advance(1h);
  ASSERT_TRUE(call(cb, Outcome::failure));
  EXPECT_EQ(cb.state(), CircuitState::closed);
  EXPECT_EQ(cb.snapshot().calls, 1U);
}

class RateHalfOpen : public ::testing::Test {
 protected:
  TestEnv t;
  CircuitBreaker cb{"r", count_based(4, 4), t.env()};
  void SetUp() override {
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(call(cb, Outcome::failure));
    ASSERT_EQ(cb.state(), CircuitState::open);
    EXPECT_FALSE(cb.try_acquire());
    t.clock.advance(10s);
  }
  std::vector<CircuitPermit> take_all() {
    std::vector<CircuitPermit> permits;
    for (int i = 0; i < 20; ++i) {
      if (auto p = cb.try_acquire()) permits.push_back(p);
    }
    return permits;
  }
};

TEST_F(RateHalfOpen, AdmitsExactlyThePermittedNumber) {
  auto permits = take_all();
  EXPECT_EQ(permits.size(), 4U);
  EXPECT_EQ(cb.state(), CircuitState::half_open);
  EXPECT_EQ(t.calls("r", "not_permitted"), 1U + 16U);
}

TEST_F(RateHalfOpen, DecidesOnlyOnceEveryTrialCallHasReported) {
  auto p = take_all();
  cb.on_result(p[0], Outcome::success, 1ms);
  cb.on_result(p[1], Outcome::failure, 1ms);
  cb.on_result(p[2], Outcome::success, 1ms);
  EXPECT_EQ(cb.state(), CircuitState::half_open);
  EXPECT_EQ(cb.snapshot().calls, 3U);
  cb.on_result(p[3], Outcome::success, 1ms);  // 1 of 4 failed: 25 % < 50 %
  EXPECT_EQ(cb.state(), CircuitState::closed);
  EXPECT_EQ(cb.snapshot().calls, 0U);  // CLOSED starts with an empty window
}

TEST_F(RateHalfOpen, TrialFailuresAtTheThresholdReopen) {
  auto p = take_all();
  cb.on_result(p[0], Outcome::failure, 1ms);
  cb.on_result(p[1], Outcome::success, 1ms);
  cb.on_result(p[2], Outcome::failure, 1ms);
  cb.on_result(p[3], Outcome::success, 1ms);  // 50 %
  EXPECT_EQ(cb.state(), CircuitState::open);
  EXPECT_FALSE(cb.try_acquire());
  t.clock.advance(10s);
  EXPECT_TRUE(cb.try_acquire());
}

TEST_F(RateHalfOpen, SlowTrialCallsReopen) {
  auto p = take_all();
  for (auto& permit : p) cb.on_result(permit, Outcome::success, 61s);  // default slow threshold 60 s
  EXPECT_EQ(cb.state(), CircuitState::open);
}

TEST_F(RateHalfOpen, IgnoredTrialCallsHandTheirSlotBack) {
  auto p = take_all();
  cb.on_result(p[0], Outcome::ignored, 1ms);
  auto extra = cb.try_acquire();
  ASSERT_TRUE(extra);
  EXPECT_FALSE(cb.try_acquire());
  for (std::size_t i = 1; i < 4; ++i) cb.on_result(p[i], Outcome::success, 1ms);
  EXPECT_EQ(cb.state(), CircuitState::half_open);
  cb.on_result(extra, Outcome::success, 1ms);
  EXPECT_EQ(cb.state(), CircuitState::closed);
}

TEST(RateModel, MetricsOnlyRecordsRatesButNeverOpens) {
  TestEnv t;
  CircuitBreaker cb("r", count_based(4, 4), t.env());
  cb.transition_to(CircuitState::metrics_only);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(call(cb, Outcome::failure));
  EXPECT_EQ(cb.state(), CircuitState::metrics_only);
  EXPECT_FLOAT_EQ(cb.snapshot().failure_rate, 100.0F);
}

TEST(RateModel, ResetEmptiesTheWindow) {
  TestEnv t;
  CircuitBreaker cb("r", count_based(4, 4), t.env());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(call(cb, Outcome::failure));
  cb.reset();
  EXPECT_EQ(cb.snapshot().calls, 0U);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(call(cb, Outcome::success));
  ASSERT_TRUE(call(cb, Outcome::failure));
  EXPECT_EQ(cb.state(), CircuitState::closed);
}

TEST(RateModel, InvalidConfigurationsThrow) {
  TestEnv t;
  auto bad = [&](auto mutate) {
    auto c = count_based(10, 5);
    mutate(c);
    EXPECT_THROW(CircuitBreaker("x", c, t.env()), std::invalid_argument);
  };
  bad([](CircuitBreakerConfig& c) { c.failure_rate_threshold = 0; });
  bad([](CircuitBreakerConfig& c) { c.failure_rate_threshold = 100.5F; });
  bad([](CircuitBreakerConfig& c) { c.slow_call_rate_threshold = -1; });
  bad([](CircuitBreakerConfig& c) { c.sliding_window_size = 0; });
  bad([](CircuitBreakerConfig& c) { c.minimum_number_of_calls = 0; });
  bad([](CircuitBreakerConfig& c) { c.permitted_calls_in_half_open = 0; });
  bad([](CircuitBreakerConfig& c) { c.slow_call_duration_threshold = 0s; });
}

}  // namespace
}  // namespace mercado::resilience
