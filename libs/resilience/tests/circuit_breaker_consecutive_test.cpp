// The chapter's breaker (failure_threshold, timeout, success_threshold): every transition,
// the manual states, listeners, metrics, logs and the automatic OPEN -> HALF_OPEN move.
#include <mercado/resilience/circuit_breaker.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <mercado/observability/log.hpp>

#include "test_env.hpp"

namespace mercado::resilience {
namespace {

using namespace std::chrono_literals;
using testing::TestEnv;

struct Seen {
  CircuitState from;
  CircuitState to;
  std::string reason;
  friend bool operator==(const Seen& a, const Seen& b) { return a.from == b.from && a.to == b.to; }
};

std::shared_ptr<std::vector<Seen>> record_transitions(CircuitBreaker& cb) {
  auto seen = std::make_shared<std::vector<Seen>>();
  cb.add_listener([seen](const StateTransition& t) { seen->push_back({t.from, t.to, std::string(t.reason)}); });
  return seen;
}

// One call with the given outcome; false when it was not permitted.
bool call(CircuitBreaker& cb, Outcome outcome, core::Duration elapsed = 1ms) {
  auto p = cb.try_acquire();
  if (!p) return false;
  cb.on_result(p, outcome, elapsed);
  return true;
}

class Consecutive : public ::testing::Test {
 protected:
  TestEnv t;
  CircuitBreaker cb{"inventory", CircuitBreakerConfig::consecutive(5, 60s, 3), t.env()};
  std::shared_ptr<std::vector<Seen>> seen = record_transitions(cb);

  void open_it() {
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(call(cb, Outcome::failure));
    ASSERT_EQ(cb.state(), CircuitState::open);
  }
  void half_open_it() {
    open_it();
    t.clock.advance(60s);
  }
};

TEST_F(Consecutive, StartsClosedAndPermits) {
  EXPECT_EQ(cb.state(), CircuitState::closed);
  EXPECT_TRUE(call(cb, Outcome::success));
  EXPECT_EQ(t.state_gauge("inventory"), 0.0);
  EXPECT_TRUE(seen->empty());
}

TEST_F(Consecutive, OpensAfterFailureThresholdConsecutiveFailures) {
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(call(cb, Outcome::failure));
  EXPECT_EQ(cb.state(), CircuitState::closed);
  EXPECT_EQ(cb.snapshot().consecutive_failures, 4U);
  ASSERT_TRUE(call(cb, Outcome::failure));
  EXPECT_EQ(cb.state(), CircuitState::open);
  ASSERT_EQ(seen->size(), 1U);
  EXPECT_EQ(seen->at(0), (Seen{CircuitState::closed, CircuitState::open, {}}));
  EXPECT_EQ(seen->at(0).reason, "5 consecutive failures");
  EXPECT_EQ(t.state_gauge("inventory"), 1.0);
}

TEST_F(Consecutive, ASuccessResetsTheFailureCount) {
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(call(cb, Outcome::failure));
  ASSERT_TRUE(call(cb, Outcome::success));
  EXPECT_EQ(cb.snapshot().consecutive_failures, 0U);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(call(cb, Outcome::failure));
  EXPECT_EQ(cb.state(), CircuitState::closed);
}

TEST_F(Consecutive, IgnoredOutcomesNeitherCountNorReset) {
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(call(cb, Outcome::failure));
  ASSERT_TRUE(call(cb, Outcome::ignored));
  EXPECT_EQ(cb.snapshot().consecutive_failures, 4U);
  ASSERT_TRUE(call(cb, Outcome::failure));
  EXPECT_EQ(cb.state(), CircuitState::open);
  EXPECT_EQ(t.calls("inventory", "ignored"), 1U);
}

TEST_F(Consecutive, OpenRejectsUntilTheTimeoutThenMovesToHalfOpen) {
  open_it();
  t.clock.advance(60s - 1ns);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(cb.try_acquire());
  EXPECT_EQ(cb.state(), CircuitState::open);
  EXPECT_EQ(t.calls("inventory", "not_permitted"), 3U);
  t.clock.advance(1ns);
  auto p = cb.try_acquire();
  ASSERT_TRUE(p);
  EXPECT_EQ(p.state(), CircuitState::half_open);
  EXPECT_EQ(cb.state(), CircuitState::half_open);
  ASSERT_EQ(seen->size(), 2U);
  EXPECT_EQ(seen->at(1), (Seen{CircuitState::open, CircuitState::half_open, {}}));
  EXPECT_EQ(t.state_gauge("inventory"), 2.0);
}

TEST_F(Consecutive, HalfOpenAdmitsExactlySuccessThresholdCalls) {
  half_open_it();
  std::vector<CircuitPermit> permits;
  for (int i = 0; i < 10; ++i) {
    if (auto p = cb.try_acquire()) permits.push_back(p);
  }
  EXPECT_EQ(permits.size(), 3U);
  EXPECT_EQ(t.calls("inventory", "not_permitted"), 7U);
  EXPECT_EQ(cb.snapshot().half_open_permits_left, 0U);
}

TEST_F(Consecutive, SuccessThresholdSuccessesInHalfOpenClose) {
  half_open_it();
  auto a = cb.try_acquire();
  auto b = cb.try_acquire();
  auto c = cb.try_acquire();
  cb.on_result(a, Outcome::success, 1ms);
  cb.on_result(b, Outcome::success, 1ms);
  EXPECT_EQ(cb.state(), CircuitState::half_open);
  EXPECT_EQ(cb.snapshot().consecutive_successes, 2U);
  cb.on_result(c, Outcome::success, 1ms);
  EXPECT_EQ(cb.state(), CircuitState::closed);
  ASSERT_EQ(seen->size(), 3U);
  EXPECT_EQ(seen->at(2), (Seen{CircuitState::half_open, CircuitState::closed, {}}));
  EXPECT_EQ(seen->at(2).reason, "3 consecutive successes in HALF_OPEN");
  EXPECT_EQ(t.state_gauge("inventory"), 0.0);
  // A fresh CLOSED: the old failures are gone.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(call(cb, Outcome::failure));
  EXPECT_EQ(cb.state(), CircuitState::closed);
}

TEST_F(Consecutive, AFailureInHalfOpenReopensAndRestartsTheWait) {
  half_open_it();
  auto a = cb.try_acquire();
  auto b = cb.try_acquire();
  cb.on_result(a, Outcome::success, 1ms);
  cb.on_result(b, Outcome::failure, 1ms);
  EXPECT_EQ(cb.state(), CircuitState::open);
  ASSERT_EQ(seen->size(), 3U);
  EXPECT_EQ(seen->at(2), (Seen{CircuitState::half_open, CircuitState::open, {}}));
  EXPECT_EQ(seen->at(2).reason, "failure in HALF_OPEN");
  t.clock.advance(59s);
  EXPECT_FALSE(cb.try_acquire());
  t.clock.advance(1s);
  EXPECT_TRUE(cb.try_acquire());
  EXPECT_EQ(cb.state(), CircuitState::half_open);
}

TEST_F(Consecutive, IgnoredInHalfOpenHandsTheSlotBack) {
  half_open_it();
  auto a = cb.try_acquire();
  auto b = cb.try_acquire();
  auto c = cb.try_acquire();
  ASSERT_TRUE(a && b && c);
  EXPECT_FALSE(cb.try_acquire());
  cb.on_result(c, Outcome::ignored, 1ms);
  auto d = cb.try_acquire();
  ASSERT_TRUE(d);
  EXPECT_FALSE(cb.try_acquire());
  for (auto* p : {&a, &b, &d}) cb.on_result(*p, Outcome::success, 1ms);
  EXPECT_EQ(cb.state(), CircuitState::closed);
}

TEST_F(Consecutive, AResultFromAnEarlierStateDoesNotDecideHalfOpen) {
  auto late = cb.try_acquire();  // admitted in CLOSED, finishes much later
  ASSERT_TRUE(late);
  half_open_it();
  auto a = cb.try_acquire();
  ASSERT_TRUE(a);
  cb.on_result(late, Outcome::success, 90s);
  EXPECT_EQ(cb.snapshot().consecutive_successes, 0U);
  cb.on_result(a, Outcome::success, 1ms);
  EXPECT_EQ(cb.snapshot().consecutive_successes, 1U);
  EXPECT_EQ(cb.state(), CircuitState::half_open);
  EXPECT_EQ(t.calls("inventory", "success"), 2U);  // both are still counted as calls
}

TEST_F(Consecutive, DisabledPermitsEverythingAndNeverOpens) {
  cb.transition_to(CircuitState::disabled);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(call(cb, Outcome::failure));
  EXPECT_EQ(cb.state(), CircuitState::disabled);
  EXPECT_EQ(t.state_gauge("inventory"), 3.0);
  EXPECT_EQ(t.calls("inventory", "failure"), 50U);
}

TEST_F(Consecutive, ForcedOpenRejectsEverythingWhateverTheTime) {
  cb.transition_to(CircuitState::forced_open);
  t.clock.advance(24h);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(cb.try_acquire());
  EXPECT_EQ(cb.state(), CircuitState::forced_open);
  EXPECT_EQ(t.state_gauge("inventory"), 4.0);
  EXPECT_EQ(t.calls("inventory", "not_permitted"), 5U);
  cb.transition_to(CircuitState::closed);
  EXPECT_TRUE(call(cb, Outcome::success));
}

TEST_F(Consecutive, MetricsOnlyCountsButNeverOpens) {
  cb.transition_to(CircuitState::metrics_only);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(call(cb, Outcome::failure));
  EXPECT_EQ(cb.state(), CircuitState::metrics_only);
  EXPECT_EQ(cb.snapshot().consecutive_failures, 20U);
  EXPECT_EQ(t.state_gauge("inventory"), 5.0);
}

TEST_F(Consecutive, ManualTransitionsAndReset) {
  cb.transition_to(CircuitState::open);
  EXPECT_FALSE(cb.try_acquire());
  cb.transition_to(CircuitState::open);  // same state: no transition
  cb.transition_to(CircuitState::half_open);
  EXPECT_EQ(cb.snapshot().half_open_permits_left, 3U);
  cb.reset();
  EXPECT_EQ(cb.state(), CircuitState::closed);
  cb.reset();  // a reset from CLOSED is still a (CLOSED -> CLOSED) transition
  ASSERT_EQ(seen->size(), 4U);
  EXPECT_EQ(seen->at(3), (Seen{CircuitState::closed, CircuitState::closed, {}}));
}

TEST_F(Consecutive, MetricsShowExactlyWhatHappened) {
  ASSERT_TRUE(call(cb, Outcome::success));
  open_it();                       // 5 failures
  EXPECT_FALSE(cb.try_acquire());  // 1 rejected
  t.clock.advance(60s);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(call(cb, Outcome::success));
  EXPECT_EQ(t.calls("inventory", "success"), 4U);
  EXPECT_EQ(t.calls("inventory", "failure"), 5U);
  EXPECT_EQ(t.calls("inventory", "not_permitted"), 1U);
  EXPECT_EQ(t.calls("inventory", "ignored"), 0U);
  EXPECT_EQ(t.state_gauge("inventory"), 0.0);
  const std::string text = t.registry.expose();
  EXPECT_NE(text.find("circuit_breaker_calls_total{name=\"inventory\",outcome=\"failure\"} 5"), std::string::npos) << text;
  EXPECT_NE(text.find("circuit_breaker_state{name=\"inventory\"} 0"), std::string::npos) << text;
}

TEST(ConsecutiveLog, OneLineWithTheReasonPerTransition) {
  const std::string path = ::testing::TempDir() + "/breaker_log_test.jsonl";
  std::remove(path.c_str());
  log::init({.service = "test", .instance = "test-1", .level = log::Level::info, .path = path});
  {
    TestEnv t;
    CircuitBreaker cb("payments", CircuitBreakerConfig::consecutive(2, 10s, 1), t.env());
    call(cb, Outcome::failure);
    call(cb, Outcome::failure);   // CLOSED -> OPEN
    t.clock.advance(10s);
    call(cb, Outcome::success);   // OPEN -> HALF_OPEN -> CLOSED
  }
  log::init({.service = "test", .instance = "test-1", .level = log::Level::info});
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (line.find("circuit breaker state transition") != std::string::npos) lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), 3U);
  EXPECT_NE(lines[0].find(R"("level":"warn")"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(R"("breaker":"payments")"), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(R"("from":"CLOSED","to":"OPEN","reason":"2 consecutive failures")"), std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find(R"("from":"OPEN","to":"HALF_OPEN")"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find(R"("from":"HALF_OPEN","to":"CLOSED")"), std::string::npos) << lines[2];
}

TEST(ConsecutiveAutomatic, MovesToHalfOpenWhenTheScheduledWaitEnds) {
  TestEnv t;
  auto config = CircuitBreakerConfig::consecutive(1, 30s, 1);
  config.automatic_transition_to_half_open = true;
  CircuitBreaker cb("auto", config, t.env());
  call(cb, Outcome::failure);
  ASSERT_EQ(cb.state(), CircuitState::open);
  ASSERT_EQ(t.scheduler.pending(), 1U);
  EXPECT_EQ(t.scheduler.delay_of(0), 30s);
  t.scheduler.run(0);  // no call needed
  EXPECT_EQ(cb.state(), CircuitState::half_open);
}

TEST(ConsecutiveAutomatic, AStaleScheduledTransitionDoesNothing) {
  TestEnv t;
  auto config = CircuitBreakerConfig::consecutive(1, 30s, 1);
  config.automatic_transition_to_half_open = true;
  CircuitBreaker cb("auto", config, t.env());
  call(cb, Outcome::failure);  // OPEN #1 schedules task 0
  t.clock.advance(30s);
  call(cb, Outcome::failure);  // lazily HALF_OPEN, fails: OPEN #2 schedules task 1
  ASSERT_EQ(cb.state(), CircuitState::open);
  ASSERT_EQ(t.scheduler.pending(), 2U);
  t.scheduler.run(0);  // belongs to OPEN #1
  EXPECT_EQ(cb.state(), CircuitState::open);
  t.scheduler.run(0);  // OPEN #2's
  EXPECT_EQ(cb.state(), CircuitState::half_open);
}

TEST(ConsecutiveAutomatic, ATaskOutlivingItsBreakerDoesNothing) {
  TestEnv t;
  auto config = CircuitBreakerConfig::consecutive(1, 30s, 1);
  config.automatic_transition_to_half_open = true;
  {
    CircuitBreaker cb("auto", config, t.env());
    call(cb, Outcome::failure);
  }
  ASSERT_EQ(t.scheduler.pending(), 1U);
  t.scheduler.run(0);
}

TEST(ConsecutiveConfig, InvalidConfigurationsThrow) {
  TestEnv t;
  EXPECT_THROW(CircuitBreaker("x", CircuitBreakerConfig::consecutive(0), t.env()), std::invalid_argument);
  EXPECT_THROW(CircuitBreaker("x", CircuitBreakerConfig::consecutive(5, 60s, 0), t.env()), std::invalid_argument);
  EXPECT_THROW(CircuitBreaker("x", CircuitBreakerConfig::consecutive(5, -1s, 1), t.env()), std::invalid_argument);
  auto automatic = CircuitBreakerConfig::consecutive();
  automatic.automatic_transition_to_half_open = true;
  Env no_scheduler = t.env();
  no_scheduler.scheduler = nullptr;
  EXPECT_THROW(CircuitBreaker("x", automatic, no_scheduler), std::invalid_argument);
}

}  // namespace
}  // namespace mercado::resilience
