#include <mercado/core/notifier.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mercado::core {

namespace asio = boost::asio;

void Notifier::notify_all() {
  std::vector<std::weak_ptr<asio::steady_timer>> woken;
  {
    std::lock_guard lock(mutex_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
    woken.swap(waiters_);
  }
  for (auto& w : woken) {
    if (auto t = w.lock()) {
      // The timer is only touched on its own executor's thread.
      asio::post(t->get_executor(), [t] { t->cancel(); });
    }
  }
}

asio::awaitable<std::uint64_t> Notifier::wait(std::uint64_t seen, std::chrono::milliseconds timeout) {
  auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor, timeout);
  {
    std::lock_guard lock(mutex_);
    if (generation_.load(std::memory_order_acquire) != seen) co_return generation_.load();
    std::erase_if(waiters_, [](const auto& w) { return w.expired(); });
    waiters_.push_back(timer);
  }
  co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
  co_return generation_.load(std::memory_order_acquire);
}

}  // namespace mercado::core
