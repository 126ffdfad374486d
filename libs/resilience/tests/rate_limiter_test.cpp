// Token bucket (GCRA) and the clock-aligned fixed window.
#include <mercado/resilience/fixed_window.hpp>
#include <mercado/resilience/token_bucket.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "test_env.hpp"

namespace mercado::resilience {
namespace {

using namespace std::chrono_literals;

TEST(TokenBucket, StartsFullAndAllowsABurstOfItsCapacity) {
  core::ManualClock clock;
  TokenBucket bucket({.capacity = 5, .refill_tokens = 1, .refill_period = 1s}, clock);
  for (std::uint64_t i = 0; i < 5; ++i) {
    auto d = bucket.try_acquire();
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(d.limit, 5U);
    EXPECT_EQ(d.remaining, 4 - i);
  }
  auto denied = bucket.try_acquire();
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.remaining, 0U);
  EXPECT_EQ(denied.retry_after, 1s);
  EXPECT_EQ(denied.reset, 5s);  // until full again
}

TEST(TokenBucket, RefillsAtItsRate) {
  core::ManualClock clock;
  TokenBucket bucket({.capacity = 2, .refill_tokens = 4, .refill_period = 1s}, clock);  // a token per 250 ms
  ASSERT_TRUE(bucket.try_acquire(2).allowed);
  clock.advance(100ms);
  auto d = bucket.try_acquire();
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after, 150ms);
  clock.advance(150ms);
  EXPECT_TRUE(bucket.try_acquire().allowed);
  EXPECT_FALSE(bucket.try_acquire().allowed);
  clock.advance(10s);  // never more than the capacity
  EXPECT_TRUE(bucket.try_acquire().allowed);
  EXPECT_TRUE(bucket.try_acquire().allowed);
  EXPECT_FALSE(bucket.try_acquire().allowed);
}

TEST(TokenBucket, PeekTakesNothingAndDeniedRequestsTakeNothing) {
  core::ManualClock clock;
  TokenBucket bucket({.capacity = 3, .refill_tokens = 1, .refill_period = 1s}, clock);
  EXPECT_TRUE(bucket.peek(3).allowed);
  EXPECT_TRUE(bucket.peek(3).allowed);
  EXPECT_FALSE(bucket.try_acquire(4).allowed);
  EXPECT_EQ(bucket.try_acquire(4).retry_after, core::Duration::max());  // never possible
  EXPECT_TRUE(bucket.try_acquire(2).allowed);
  EXPECT_FALSE(bucket.try_acquire(2).allowed);
  EXPECT_TRUE(bucket.try_acquire(1).allowed);
}

TEST(TokenBucket, ConcurrentCallersGetExactlyTheCapacity) {
  core::ManualClock clock;  // frozen: no refill during the test
  TokenBucket bucket({.capacity = 1000, .refill_tokens = 1, .refill_period = 1s}, clock);
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 1000; ++k) {
        if (bucket.try_acquire().allowed) granted.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(granted.load(), 1000);
}

TEST(TokenBucket, InvalidConfigurationsThrow) {
  core::ManualClock clock;
  EXPECT_THROW(TokenBucket({.capacity = 0}, clock), std::invalid_argument);
  EXPECT_THROW(TokenBucket({.capacity = 1, .refill_tokens = 0}, clock), std::invalid_argument);
  EXPECT_THROW(TokenBucket({.capacity = 1, .refill_tokens = 2, .refill_period = core::Duration(1)}, clock),
               std::invalid_argument);
}

// ManualClock's default start is 01:00:00 UTC on 1970-01-01: a whole minute.
TEST(FixedWindow, WindowsAreAlignedToTheClockNotToTheFirstCall) {
  core::ManualClock clock;
  FixedWindow limiter({.limit = 3, .window = 1min}, clock);
  clock.advance(40s);  // 01:00:40
  for (std::uint64_t i = 0; i < 3; ++i) {
    auto d = limiter.try_acquire();
    ASSERT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, 2 - i);
    EXPECT_EQ(d.reset, 20s);
  }
  auto denied = limiter.try_acquire();
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(denied.remaining, 0U);
  EXPECT_EQ(denied.retry_after, 20s);
  clock.advance(20s);  // 01:01:00: a new window, 20 s after the first call
  auto d = limiter.try_acquire();
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 2U);
  EXPECT_EQ(d.reset, 60s);
}

TEST(FixedWindow, PeekAndOversizedRequests) {
  core::ManualClock clock;
  FixedWindow limiter({.limit = 2, .window = 1s}, clock);
  EXPECT_TRUE(limiter.peek(2).allowed);
  EXPECT_TRUE(limiter.try_acquire(2).allowed);
  EXPECT_FALSE(limiter.peek().allowed);
  EXPECT_EQ(limiter.try_acquire(3).retry_after, core::Duration::max());
  clock.advance(1s);
  EXPECT_TRUE(limiter.try_acquire(1).allowed);
}

TEST(FixedWindow, ConcurrentCallersGetExactlyTheLimit) {
  core::ManualClock clock;
  FixedWindow limiter({.limit = 500, .window = 1h}, clock);
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 500; ++k) {
        if (limiter.try_acquire().allowed) granted.fetch_add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(granted.load(), 500);
}

TEST(FixedWindow, InvalidConfigurationsThrow) {
  core::ManualClock clock;
  EXPECT_THROW(FixedWindow({.limit = 0}, clock), std::invalid_argument);
  EXPECT_THROW(FixedWindow({.limit = 1, .window = 10us}, clock), std::invalid_argument);
}

}  // namespace
}  // namespace mercado::resilience
