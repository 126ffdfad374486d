#include <mercado/core/io_runtime.hpp>

#include <gtest/gtest.h>

#include "forbid_io_uring.hpp"

#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cstdio>
#include <atomic>
#include <csignal>
#include <functional>
#include <thread>
#include <vector>
#include <future>
#include <set>
#include <mutex>

namespace mercado::core {
namespace {

TEST(IoRuntime, EachContextRunsOnItsOwnThread) {
  IoRuntime rt(3);
  rt.start();
  std::mutex m;
  std::set<std::thread::id> ids;
  std::vector<std::future<void>> done;
  for (unsigned i = 0; i < rt.size(); ++i) {
    auto p = std::make_shared<std::promise<void>>();
    done.push_back(p->get_future());
    boost::asio::post(rt.context(i), [&, p] {
      std::lock_guard lk(m);
      ids.insert(std::this_thread::get_id());
      p->set_value();
    });
  }
  for (auto& f : done) f.get();
  rt.stop();
  rt.join();
  EXPECT_EQ(ids.size(), 3U);
}

TEST(IoRuntime, NextRoundRobins) {
  IoRuntime rt(2);
  auto* a = &rt.next();
  auto* b = &rt.next();
  auto* c = &rt.next();
  EXPECT_NE(a, b);
  EXPECT_EQ(a, c);
}

TEST(IoRuntime, FirstSignalCallsHandlerThenRunReturnsOnStop) {
  IoRuntime rt(2);
  int seen = 0;
  rt.on_shutdown_signal([&](int signo) {
    seen = signo;
    rt.stop();
  });
  boost::asio::post(rt.context(0), [] { std::raise(SIGTERM); });
  rt.run();
  EXPECT_EQ(seen, SIGTERM);
}

TEST(IoRuntime, SecondSignalStopsAtOnce) {
  IoRuntime rt(1);
  int calls = 0;
  rt.on_shutdown_signal([&](int) {
    ++calls;
    std::raise(SIGINT);  // the handler does not stop; the second signal must.
  });
  boost::asio::post(rt.context(0), [] { std::raise(SIGINT); });
  rt.run();
  EXPECT_EQ(calls, 1);
  EXPECT_TRUE(rt.stopped());
}

// Threads that give way (after every handler here, the most often) still run every
// handler on their own context, in order, and stop when asked, with work still queued.
TEST(IoRuntime, ThreadsThatGiveWayRunEveryHandlerInOrderAndStop) {
  for (unsigned every : {0U, 1U, 3U, 256U}) {
    SCOPED_TRACE("yield every " + std::to_string(every));
    IoRuntime rt(2, every);
    constexpr int kChain = 20'000;
    struct Chain {
      boost::asio::io_context* ctx = nullptr;
      std::thread::id thread;
      int next = 0;
      bool in_order = true, one_thread = true;
      std::promise<void> done;
    };
    std::vector<std::unique_ptr<Chain>> chains;
    std::function<void(Chain&, int)> step = [&](Chain& c, int i) {
      if (c.next == 0) c.thread = std::this_thread::get_id();
      c.in_order = c.in_order && c.next == i;
      c.one_thread = c.one_thread && c.thread == std::this_thread::get_id();
      c.next = i + 1;
      if (c.next == kChain) {
        c.done.set_value();
        return;
      }
      boost::asio::post(*c.ctx, [&step, &c, i] { step(c, i + 1); });
    };
    for (unsigned i = 0; i < rt.size(); ++i) {
      chains.push_back(std::make_unique<Chain>());
      chains.back()->ctx = &rt.context(i);
      // Two chains per context interleave: each handler has another one queued behind it.
      chains.push_back(std::make_unique<Chain>());
      chains.back()->ctx = &rt.context(i);
    }
    std::vector<std::future<void>> done;
    for (auto& c : chains) done.push_back(c->done.get_future());
    auto finished = std::async(std::launch::async, [&] { rt.run(); });
    for (auto& c : chains) boost::asio::post(*c->ctx, [&step, c = c.get()] { step(*c, 0); });
    for (auto& f : done) f.get();
    for (auto& c : chains) {
      EXPECT_EQ(c->next, kChain);
      EXPECT_TRUE(c->in_order);
      EXPECT_TRUE(c->one_thread);
    }
    // Stopping while handlers keep arriving: run() returns.
    std::atomic<bool> spinning{true};
    std::function<void()> spin = [&] {
      if (spinning) boost::asio::post(rt.context(0), spin);
    };
    boost::asio::post(rt.context(0), spin);
    rt.stop();
    EXPECT_EQ(finished.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    spinning = false;
    finished.get();
  }
}

TEST(IoRuntime, ZeroThreadsIsAProgrammerError) {
  EXPECT_THROW(IoRuntime(0), std::invalid_argument);
}

#if defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
TEST(IoRuntimeDeathTest, AHostWithoutIoUringFailsAtStartAndSaysWhatToDo) {
  if (!mercado::testing::can_forbid_io_uring()) GTEST_SKIP() << "no seccomp filter for this architecture";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        mercado::testing::forbid_io_uring();
        try {
          IoRuntime rt(1);
        } catch (const std::runtime_error& e) {
          std::fputs(e.what(), stderr);
          ::_exit(3);
        }
        ::_exit(0);
      },
      ::testing::ExitedWithCode(3), "io_uring is not available here .*MERCADO_IO_BACKEND=epoll");
}
#endif

}  // namespace
}  // namespace mercado::core
