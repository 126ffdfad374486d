#include <mercado/core/io_runtime.hpp>

#include <gtest/gtest.h>

#include <boost/asio/post.hpp>
#include <csignal>
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

TEST(IoRuntime, ZeroThreadsIsAProgrammerError) {
  EXPECT_THROW(IoRuntime(0), std::invalid_argument);
}

}  // namespace
}  // namespace mercado::core
