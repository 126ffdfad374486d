#include <mercado/core/notifier.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mercado::core {

namespace asio = boost::asio;

// The cancel is posted under the mutex, and a waiter takes the mutex before it returns: so
// either the waiter has gone (its timer expired, nothing to post), or the post is queued on
// the timer's io_context before the waiter returns — that context then still has work and
// is alive, and the last reference to the timer is dropped on the timer's own thread. (A
// waiter whose io_context was destroyed right after its wait returned used to be cancelled,
// and its timer released, from this thread afterwards: ASan, in the saga tests.)
void Notifier::notify_all() {
  std::lock_guard lock(mutex_);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  for (auto& w : waiters_) {
    if (auto t = w.lock()) asio::post(t->get_executor(), [t] { t->cancel(); });
  }
  waiters_.clear();
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
  {
    std::lock_guard lock(mutex_);  // see notify_all
    std::erase_if(waiters_, [&](const auto& w) { return w.expired() || w.lock() == timer; });
  }
  co_return generation_.load(std::memory_order_acquire);
}

}  // namespace mercado::core
