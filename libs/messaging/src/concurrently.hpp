#pragma once
// Runs fn(0) ... fn(n-1) on the calling coroutine's executor with at most `width` running at
// once, and returns when all have finished. fn must not throw (a throw is a bug: it ends the
// io thread's run loop).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/this_coro.hpp>

#include <mercado/core/notifier.hpp>

namespace mercado::messaging::detail {

inline boost::asio::awaitable<void> for_each_concurrently(
    std::size_t n, std::size_t width, const std::function<boost::asio::awaitable<void>(std::size_t)>& fn) {
  if (width <= 1 || n <= 1) {
    for (std::size_t i = 0; i < n; ++i) co_await fn(i);
    co_return;
  }
  struct Shared {
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> live{0};
    core::Notifier done;
  };
  auto shared = std::make_shared<Shared>();
  std::size_t workers = std::min(width, n);
  shared->live = workers;
  auto ex = co_await boost::asio::this_coro::executor;
  for (std::size_t k = 0; k < workers; ++k) {
    boost::asio::co_spawn(ex, [shared, &fn, n]() -> boost::asio::awaitable<void> {
      for (std::size_t i = shared->next++; i < n; i = shared->next++) co_await fn(i);
      if (--shared->live == 0) shared->done.notify_all();
    }, boost::asio::detached);
  }
  while (true) {
    auto seen = shared->done.generation();
    if (shared->live.load() == 0) break;
    co_await shared->done.wait(seen, std::chrono::hours(1));
  }
}

}  // namespace mercado::messaging::detail
