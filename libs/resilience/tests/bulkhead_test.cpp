// Bulkhead: rejection at once by default, bounded FIFO waits, and the limit holding under
// many coroutines on several io threads (run under the tsan preset).
#include <mercado/resilience/bulkhead.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <stdexcept>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <mercado/core/io_runtime.hpp>

#include "test_env.hpp"

namespace mercado::resilience {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using testing::TestEnv;

TEST(Bulkhead, DefaultsAreResilience4js) {
  BulkheadConfig c;
  EXPECT_EQ(c.max_concurrent_calls, 25U);
  EXPECT_EQ(c.max_wait, 0s);
}

TEST(Bulkhead, RejectsAtOnceWhenFullByDefault) {
  TestEnv t;
  Bulkhead b("inventory", {.max_concurrent_calls = 2}, t.env());
  auto p1 = b.try_acquire();
  auto p2 = b.try_acquire();
  ASSERT_TRUE(p1 && p2);
  EXPECT_EQ(b.in_use(), 2U);
  auto p3 = b.try_acquire();
  EXPECT_FALSE(p3);
  EXPECT_EQ(t.counter("bulkhead_rejected_total", "inventory"), 1U);
  p1.release();
  EXPECT_EQ(b.in_use(), 1U);
  auto p4 = b.try_acquire();
  EXPECT_TRUE(p4);
  {
    BulkheadPermit moved = std::move(p4);
    EXPECT_EQ(b.in_use(), 2U);
  }  // released by the destructor
  EXPECT_EQ(b.in_use(), 1U);
}

TEST(Bulkhead, AcquireWithoutWaitIsTryAcquire) {
  TestEnv t;
  Bulkhead b("x", {.max_concurrent_calls = 1}, t.env());
  asio::io_context ctx;
  std::vector<bool> got;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    auto a = co_await b.acquire();
    auto c = co_await b.acquire();
    got = {static_cast<bool>(a), static_cast<bool>(c)};
  }, asio::detached);
  ctx.run();
  EXPECT_EQ(got, (std::vector<bool>{true, false}));
  EXPECT_EQ(t.counter("bulkhead_rejected_total", "x"), 1U);
}

TEST(Bulkhead, WaitersGetReleasedSlotsInArrivalOrder) {
  TestEnv t;
  Bulkhead b("x", {.max_concurrent_calls = 1, .max_wait = 1h}, t.env());
  asio::io_context ctx;
  std::vector<int> order;
  auto holder = std::make_shared<BulkheadPermit>(b.try_acquire());
  ASSERT_TRUE(*holder);
  for (int i = 0; i < 3; ++i) {
    asio::co_spawn(ctx, [&, i]() -> asio::awaitable<void> {
      auto p = co_await b.acquire();
      EXPECT_TRUE(p);
      order.push_back(i);
      co_await asio::post(ctx, asio::use_awaitable);  // hold the slot across a suspension
    }, asio::detached);
  }
  ctx.poll();  // all three are waiting now
  EXPECT_EQ(b.waiting(), 3U);
  EXPECT_FALSE(b.try_acquire());  // no jumping the queue
  holder->release();
  ctx.run();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(b.in_use(), 0U);
  EXPECT_EQ(t.counter("bulkhead_rejected_total", "x"), 1U);  // only the try_acquire above
}

TEST(Bulkhead, AWaitThatRunsOutIsRejected) {
  TestEnv t;
  Bulkhead b("x", {.max_concurrent_calls = 1, .max_wait = 1ms}, t.env());
  auto holder = b.try_acquire();  // never released during the wait
  asio::io_context ctx;
  bool got = true;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> { got = static_cast<bool>(co_await b.acquire()); }, asio::detached);
  ctx.run();
  EXPECT_FALSE(got);
  EXPECT_EQ(b.waiting(), 0U);
  EXPECT_EQ(t.counter("bulkhead_rejected_total", "x"), 1U);
}

TEST(Bulkhead, TheCallersDeadlineCapsTheWait) {
  TestEnv t;
  Bulkhead b("x", {.max_concurrent_calls = 1, .max_wait = 1h}, t.env());
  auto holder = b.try_acquire();
  asio::io_context ctx;
  bool got = true;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    got = static_cast<bool>(co_await b.acquire(t.clock.now()));  // no time left at all
  }, asio::detached);
  ctx.run();
  EXPECT_FALSE(got);
  EXPECT_EQ(t.counter("bulkhead_rejected_total", "x"), 1U);
}

TEST(Bulkhead, InvalidConfigurationsThrow) {
  TestEnv t;
  EXPECT_THROW(Bulkhead("x", {.max_concurrent_calls = 0}, t.env()), std::invalid_argument);
  EXPECT_THROW(Bulkhead("x", {.max_concurrent_calls = 1, .max_wait = -1ms}, t.env()), std::invalid_argument);
}

// Many coroutines on several io threads go through one bulkhead; each holds its slot across
// a few suspensions. The number inside never exceeds the limit.
struct Load {
  int admitted = 0;
  int rejected = 0;
  int max_inside = 0;
};

Load hammer(Bulkhead& b, int coroutines) {
  core::IoRuntime runtime(4);
  std::atomic<int> inside{0}, max_inside{0}, admitted{0}, rejected{0}, done{0};
  std::promise<void> all_done;
  for (int i = 0; i < coroutines; ++i) {
    auto& ctx = runtime.context(static_cast<unsigned>(i) % runtime.size());
    asio::co_spawn(ctx, [&, &ctx = ctx]() -> asio::awaitable<void> {
      if (auto slot = co_await b.acquire()) {
        admitted.fetch_add(1);
        const int now = inside.fetch_add(1) + 1;
        int seen = max_inside.load();
        while (now > seen && !max_inside.compare_exchange_weak(seen, now)) {
        }
        for (int k = 0; k < 3; ++k) co_await asio::post(ctx, asio::use_awaitable);
        inside.fetch_sub(1);
      } else {
        rejected.fetch_add(1);
      }
      if (done.fetch_add(1) + 1 == coroutines) all_done.set_value();
    }, asio::detached);
  }
  runtime.start();
  all_done.get_future().wait();
  runtime.stop();
  runtime.join();
  return {admitted.load(), rejected.load(), max_inside.load()};
}

TEST(BulkheadConcurrency, NeverExceedsItsLimitWithWaiting) {
  TestEnv t;
  Bulkhead b("x", {.max_concurrent_calls = 5, .max_wait = 1h}, t.env());
  const Load load = hammer(b, 2000);
  EXPECT_LE(load.max_inside, 5);
  EXPECT_EQ(load.admitted, 2000);  // everybody got in eventually
  EXPECT_EQ(load.rejected, 0);
  EXPECT_EQ(b.in_use(), 0U);
  EXPECT_EQ(b.waiting(), 0U);
  EXPECT_EQ(t.counter("bulkhead_rejected_total", "x"), 0U);
}

TEST(BulkheadConcurrency, NeverExceedsItsLimitRejectingAtOnce) {
  TestEnv t;
  Bulkhead b("x", {.max_concurrent_calls = 5}, t.env());
  const Load load = hammer(b, 2000);
  EXPECT_LE(load.max_inside, 5);
  EXPECT_EQ(load.admitted + load.rejected, 2000);
  EXPECT_GT(load.admitted, 0);
  EXPECT_EQ(b.in_use(), 0U);
  EXPECT_EQ(t.counter("bulkhead_rejected_total", "x"), static_cast<std::uint64_t>(load.rejected));
}

}  // namespace
}  // namespace mercado::resilience
