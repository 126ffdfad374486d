// The breaker under many threads (run under the tsan preset): nothing lost, nothing
// admitted twice, exactly one transition per state change.
#include <mercado/resilience/circuit_breaker.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "test_env.hpp"

namespace mercado::resilience {
namespace {

using namespace std::chrono_literals;
using testing::TestEnv;

constexpr int kThreads = 4;

template <class F>
void on_threads(int n, F body) {
  std::barrier start(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      body(i);
    });
  }
  for (auto& th : threads) th.join();
}

TEST(BreakerConcurrency, EveryCallInClosedIsCounted) {
  TestEnv t;
  CircuitBreakerConfig c;
  c.sliding_window_size = 100;
  c.minimum_number_of_calls = 100;
  CircuitBreaker cb("c", c, t.env());
  constexpr int kCalls = 20'000;
  on_threads(kThreads, [&](int) {
    for (int i = 0; i < kCalls; ++i) {
      auto p = cb.try_acquire();
      ASSERT_TRUE(p);
      cb.on_result(p, Outcome::success, 1ms);
    }
  });
  EXPECT_EQ(cb.state(), CircuitState::closed);
  EXPECT_EQ(t.calls("c", "success"), static_cast<std::uint64_t>(kThreads * kCalls));
  const auto s = cb.snapshot();
  EXPECT_EQ(s.calls, 100U);  // the window is full and holds only successes
  EXPECT_EQ(s.failed_calls, 0U);
}

TEST(BreakerConcurrency, TheCountWindowStaysConsistent) {
  TestEnv t;
  CircuitBreakerConfig c;
  c.sliding_window_size = 64;
  c.minimum_number_of_calls = 64;
  CircuitBreaker cb("c", c, t.env());
  cb.transition_to(CircuitState::metrics_only);  // record, never open
  on_threads(kThreads, [&](int id) {
    std::mt19937 rng(static_cast<unsigned>(id));
    for (int i = 0; i < 20'000; ++i) {
      auto p = cb.try_acquire();
      cb.on_result(p, (rng() & 1U) != 0 ? Outcome::failure : Outcome::success, (rng() & 2U) != 0 ? 90s : 1ms);
    }
  });
  // Quiescent: the totals must equal a window of 64 real outcomes. The last 64 calls all
  // fail: every slot then holds a failure, whatever interleaving happened before.
  for (int i = 0; i < 64; ++i) cb.on_result(cb.try_acquire(), Outcome::failure, 1ms);
  auto s = cb.snapshot();
  EXPECT_EQ(s.calls, 64U);
  EXPECT_EQ(s.failed_calls, 64U);
  EXPECT_EQ(s.slow_calls, 0U);
  EXPECT_EQ(t.calls("c", "success") + t.calls("c", "failure"), static_cast<std::uint64_t>(kThreads * 20'000 + 64));
}

TEST(BreakerConcurrency, OpensExactlyOnceUnderConcurrentFailures) {
  for (int round = 0; round < 20; ++round) {
    TestEnv t;
    CircuitBreaker cb("c", CircuitBreakerConfig::consecutive(10, 60s, 2), t.env());
    std::atomic<int> opened{0};
    cb.add_listener([&](const StateTransition& tr) {
      if (tr.to == CircuitState::open) opened.fetch_add(1);
    });
    on_threads(kThreads, [&](int) {
      for (int i = 0; i < 50; ++i) {
        auto p = cb.try_acquire();
        if (p) cb.on_result(p, Outcome::failure, 1ms);
      }
    });
    EXPECT_EQ(opened.load(), 1);
    EXPECT_EQ(cb.state(), CircuitState::open);
    EXPECT_EQ(t.calls("c", "failure") + t.calls("c", "not_permitted"), static_cast<std::uint64_t>(kThreads * 50));
  }
}

TEST(BreakerConcurrency, HalfOpenAdmitsExactlyThePermittedNumberUnderContention) {
  for (int round = 0; round < 50; ++round) {
    TestEnv t;
    CircuitBreakerConfig c;
    c.sliding_window_size = 2;
    c.minimum_number_of_calls = 2;
    c.permitted_calls_in_half_open = 5;
    c.wait_in_open = 1s;
    CircuitBreaker cb("c", c, t.env());
    for (int i = 0; i < 2; ++i) cb.on_result(cb.try_acquire(), Outcome::failure, 1ms);
    ASSERT_EQ(cb.state(), CircuitState::open);
    t.clock.advance(1s);  // every thread races to move OPEN -> HALF_OPEN and take a slot
    std::atomic<int> admitted{0};
    std::atomic<int> half_opened{0};
    cb.add_listener([&](const StateTransition& tr) {
      if (tr.to == CircuitState::half_open) half_opened.fetch_add(1);
    });
    std::mutex m;
    std::vector<CircuitPermit> permits;
    on_threads(kThreads, [&](int) {
      for (int i = 0; i < 10; ++i) {
        if (auto p = cb.try_acquire()) {
          admitted.fetch_add(1);
          std::lock_guard lock(m);
          permits.push_back(p);
        }
      }
    });
    EXPECT_EQ(admitted.load(), 5);
    EXPECT_EQ(half_opened.load(), 1);
    on_threads(static_cast<int>(permits.size()), [&](int i) {
      cb.on_result(permits[static_cast<std::size_t>(i)], Outcome::success, 1ms);
    });
    EXPECT_EQ(cb.state(), CircuitState::closed);
  }
}

TEST(BreakerConcurrency, MixedTrafficWithTimeMovingMakesOnlyValidTransitions) {
  TestEnv t;
  CircuitBreakerConfig c;
  c.sliding_window_type = SlidingWindowType::time_based;
  c.sliding_window_size = 5;
  c.minimum_number_of_calls = 10;
  c.permitted_calls_in_half_open = 3;
  c.wait_in_open = 2s;
  CircuitBreaker cb("c", c, t.env());
  std::mutex m;
  struct Move {
    CircuitState from;
    CircuitState to;
  };
  std::vector<Move> seen;
  cb.add_listener([&](const StateTransition& tr) {
    std::lock_guard lock(m);
    seen.push_back({tr.from, tr.to});
  });
  std::atomic<std::uint64_t> attempts{0};
  on_threads(kThreads, [&](int id) {
    std::mt19937 rng(static_cast<unsigned>(id) + 7U);
    for (int i = 0; i < 5'000; ++i) {
      if (id == 0 && i % 50 == 0) t.clock.advance(500ms);
      attempts.fetch_add(1);
      auto p = cb.try_acquire();
      if (p) cb.on_result(p, rng() % 5 < 3 ? Outcome::failure : Outcome::success, 1ms);  // 60 % fail
    }
  });
  ASSERT_FALSE(seen.empty());
  for (std::size_t i = 0; i < seen.size(); ++i) {
    const auto& tr = seen[i];
    const bool valid = (tr.from == CircuitState::closed && tr.to == CircuitState::open) ||
                       (tr.from == CircuitState::open && tr.to == CircuitState::half_open) ||
                       (tr.from == CircuitState::half_open &&
                        (tr.to == CircuitState::open || tr.to == CircuitState::closed));
    EXPECT_TRUE(valid) << to_string(tr.from) << " -> " << to_string(tr.to);
    if (i > 0) {
      EXPECT_EQ(seen[i - 1].to, tr.from) << "transition " << i;
    }
  }
  EXPECT_EQ(t.calls("c", "success") + t.calls("c", "failure") + t.calls("c", "not_permitted"), attempts.load());
}

}  // namespace
}  // namespace mercado::resilience
