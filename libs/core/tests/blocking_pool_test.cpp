#include <mercado/core/blocking_pool.hpp>

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/detached.hpp>

#include <atomic>
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
      int v = co_await pool.run([i] { return i; });  // coro-capture-ok: an int
      sum += v;
    }, asio::detached);
  }
  ctx.run();
  EXPECT_EQ(sum.load(), 200 * 201 / 2);
  EXPECT_EQ(pool.pending(), 0U);
}

}  // namespace
}  // namespace mercado::core

#include <mercado/core/notifier.hpp>
#include <mercado/core/uuid.hpp>

#include <set>
#include <chrono>
#include <cstdlib>
#include <string>

namespace mercado::core {
namespace {

TEST(Notifier, WakesWaitersOnOtherThreadsAndNeverLosesANotification) {
  Notifier n;
  asio::io_context a, b;
  std::atomic<int> woken{0};
  auto waiter = [&]() -> asio::awaitable<void> {
    std::uint64_t seen = n.generation();
    auto g = co_await n.wait(seen, std::chrono::hours(1));
    if (g != seen) ++woken;
  };
  asio::co_spawn(a, waiter(), asio::detached);
  asio::co_spawn(b, waiter(), asio::detached);
  a.poll();  // both are registered before notify
  b.poll();
  std::thread ta([&] { a.run(); });
  std::thread tb([&] { b.run(); });
  n.notify_all();
  ta.join();
  tb.join();
  EXPECT_EQ(woken.load(), 2);
  // A notification that happened before wait() started returns at once.
  asio::io_context c;
  std::uint64_t stale = n.generation() - 1;
  bool immediate = false;
  asio::co_spawn(c, [&]() -> asio::awaitable<void> {
    co_await n.wait(stale, std::chrono::hours(1));
    immediate = true;
  }, asio::detached);
  c.run();
  EXPECT_TRUE(immediate);
}

// Waiters on short-lived io_contexts (each destroyed as soon as its wait returns) while
// another thread notifies all the time: nothing may touch a timer or its context after
// that (ASan found a use-after-free here).
TEST(Notifier, AWaiterOnAShortLivedContextIsNeverTouchedAfterItReturns) {
  Notifier n;
  std::atomic<bool> done{false};
  std::thread notifier([&] {
    while (!done) {
      n.notify_all();
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  });
  for (int i = 0; i < 3000; ++i) {
    asio::io_context c;
    asio::co_spawn(c, [&]() -> asio::awaitable<void> { co_await n.wait(n.generation(), std::chrono::milliseconds(1)); },
                   asio::detached);
    c.run();
  }
  done = true;
  notifier.join();
  SUCCEED();
}

TEST(Notifier, TimesOutWithoutANotification) {
  Notifier n;
  asio::io_context c;
  std::uint64_t got = 99;
  asio::co_spawn(c, [&]() -> asio::awaitable<void> { got = co_await n.wait(n.generation(), std::chrono::milliseconds(5)); },
                 asio::detached);
  c.run();
  EXPECT_EQ(got, 0U);
}

TEST(Uuid, Version7UniqueAndOrderedByTime) {
  std::set<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.insert(new_uuid());
  EXPECT_EQ(ids.size(), 1000U);
  for (const auto& id : ids) {
    ASSERT_EQ(id.size(), 36U);
    EXPECT_EQ(id[8], '-');
    EXPECT_EQ(id[14], '7') << id;                                 // version
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;  // variant 10
  }
  // The first 48 bits are the Unix time in milliseconds.
  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string id = new_uuid();
  const long long stamped = std::stoll(id.substr(0, 8) + id.substr(9, 4), nullptr, 16);
  EXPECT_LE(std::llabs(stamped - now_ms), 1000) << id;
  // An id made in a later millisecond sorts after (as text too: lowercase hex).
  const std::string before = new_uuid();
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  EXPECT_LT(before, new_uuid());
}

// Ids are made from a per-thread buffer of kernel randomness: threads never share bytes,
// and a forked child does not repeat its parent's.
TEST(Uuid, UniqueAcrossThreadsAndAcrossAFork) {
  std::vector<std::vector<std::string>> per_thread(4);
  {
    std::vector<std::jthread> threads;
    for (auto& out : per_thread) {
      threads.emplace_back([&out] {
        for (int i = 0; i < 2000; ++i) out.push_back(new_uuid());
      });
    }
  }
  std::set<std::string> all;
  for (const auto& ids : per_thread) all.insert(ids.begin(), ids.end());
  EXPECT_EQ(all.size(), 8000U);

  (void)new_uuid();  // this thread's buffer is now partly used
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::string id = new_uuid();
    (void)!::write(pipe_fds[1], id.data(), id.size());
    ::_exit(0);
  }
  const std::string parent = new_uuid();
  char buf[36];
  ASSERT_EQ(::read(pipe_fds[0], buf, sizeof buf), 36);
  ::waitpid(child, nullptr, 0);
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  // Same millisecond or not, the random part differs.
  EXPECT_NE(parent.substr(14), std::string(buf, 36).substr(14)) << parent;
}

}  // namespace
}  // namespace mercado::core

namespace mercado::core {
namespace {

// The project's rule (scripts/lint-coroutines.py): a lambda with by-value captures is named
// before it goes into a co_await operand. This checks that the named form keeps captures
// alive exactly once (GCC 12 destroys the unnamed form twice).
TEST(BlockingPool, NamedLambdaWithOwningCapturesIsDestroyedOnce) {
  BlockingPool pool(1);
  asio::io_context ctx;
  auto shared = std::make_shared<int>(7);
  long use_count_after = 0;
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    auto job = [shared] { return *shared; };
    int v = co_await pool.run(std::move(job));
    EXPECT_EQ(v, 7);
    use_count_after = shared.use_count();
  }, asio::detached);
  ctx.run();
  EXPECT_EQ(use_count_after, 1);
  EXPECT_EQ(shared.use_count(), 1);
}

}  // namespace
}  // namespace mercado::core
