#include <mercado/core/blocking_pool.hpp>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/detached.hpp>

#include <thread>

namespace mercado::core {
namespace {

namespace asio = boost::asio;

TEST(BlockingPool, RunsOffTheIoThreadAndResumesOnIt) {
  BlockingPool pool(2);
  asio::io_context ctx;
  std::thread::id io_thread, work_thread, resumed_thread;
  int result = 0;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    io_thread = std::this_thread::get_id();
    result = co_await pool.run([&] {
      work_thread = std::this_thread::get_id();
      return 42;
    });
    resumed_thread = std::this_thread::get_id();
  }, asio::detached);
  ctx.run();
  EXPECT_EQ(result, 42);
  EXPECT_NE(work_thread, io_thread);
  EXPECT_EQ(resumed_thread, io_thread);
}

TEST(BlockingPool, ExceptionsAreRethrownInTheCoroutine) {
  BlockingPool pool(1);
  asio::io_context ctx;
  std::string what;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    try {
      co_await pool.run([]() -> int { throw std::runtime_error("disk on fire"); });
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    co_await pool.run([] {});  // void functions work too
  }, asio::detached);
  ctx.run();
  EXPECT_EQ(what, "disk on fire");
}

TEST(BlockingPool, ManyConcurrentCallsAllComplete) {
  BlockingPool pool(3);
  asio::io_context ctx;
  std::atomic<int> sum{0};
  for (int i = 1; i <= 200; ++i) {
    asio::co_spawn(ctx, [&, i]() -> asio::awaitable<void> {
      int v = co_await pool.run([i] { return i; });
      sum += v;
    }, asio::detached);
  }
  ctx.run();
  EXPECT_EQ(sum.load(), 200 * 201 / 2);
  EXPECT_EQ(pool.pending(), 0U);
}

}  // namespace
}  // namespace mercado::core
