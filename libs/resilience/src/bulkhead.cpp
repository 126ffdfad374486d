#include <mercado/resilience/bulkhead.hpp>

#include <algorithm>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <mercado/observability/log.hpp>

namespace mercado::resilience {

namespace asio = boost::asio;

// A coroutine waiting for a slot. `granted` is guarded by the bulkhead's mutex; the timer
// is touched only on its own executor.
struct Bulkhead::Waiter {
  explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  bool granted = false;
};

Bulkhead::Bulkhead(std::string name, BulkheadConfig config, Env env)
    : name_(std::move(name)), config_(config), env_(env) {
  if (config_.max_concurrent_calls == 0) throw std::invalid_argument("bulkhead: max_concurrent_calls must be >= 1");
  if (config_.max_wait.count() < 0) throw std::invalid_argument("bulkhead: max_wait must be >= 0");
  rejected_ = &env_.metrics->counter("bulkhead_rejected_total", "Calls rejected by a full bulkhead", {"name"}).with({name_});
}

Bulkhead::~Bulkhead() = default;

BulkheadPermit Bulkhead::reject() noexcept {
  rejected_->inc();
  log::debug("bulkhead full", {{"name", name_}, {"max_concurrent_calls", config_.max_concurrent_calls}});
  return BulkheadPermit();
}

BulkheadPermit Bulkhead::try_acquire() noexcept {
  if (config_.max_wait.count() == 0) {
    std::uint32_t n = in_use_.load(std::memory_order_relaxed);
    do {
      if (n >= config_.max_concurrent_calls) return reject();
    } while (!in_use_.compare_exchange_weak(n, n + 1, std::memory_order_acquire, std::memory_order_relaxed));
    return BulkheadPermit(this);
  }
  {
    std::lock_guard lock(mutex_);
    const std::uint32_t n = in_use_.load(std::memory_order_relaxed);
    if (waiters_.empty() && n < config_.max_concurrent_calls) {
      in_use_.store(n + 1, std::memory_order_relaxed);
      return BulkheadPermit(this);
    }
  }
  return reject();
}

asio::awaitable<BulkheadPermit> Bulkhead::acquire(std::optional<core::SteadyTime> deadline) {
  if (config_.max_wait.count() == 0) co_return try_acquire();
  core::Duration wait = config_.max_wait;
  if (deadline) wait = std::min(wait, *deadline - env_.clock->now());

  const auto executor = co_await asio::this_coro::executor;
  std::shared_ptr<Waiter> waiter;
  {
    std::lock_guard lock(mutex_);
    const std::uint32_t n = in_use_.load(std::memory_order_relaxed);
    if (waiters_.empty() && n < config_.max_concurrent_calls) {
      in_use_.store(n + 1, std::memory_order_relaxed);
      co_return BulkheadPermit(this);
    }
    if (wait.count() > 0) {
      waiter = std::make_shared<Waiter>(executor);
      waiter->timer.expires_after(wait);
      waiters_.push_back(waiter);
    }
  }
  if (!waiter) co_return reject();

  // Ends when the wait expires, or early when release() hands this waiter a slot.
  co_await waiter->timer.async_wait(asio::as_tuple(asio::use_awaitable));

  {
    std::lock_guard lock(mutex_);
    if (waiter->granted) co_return BulkheadPermit(this);  // the releaser's slot is ours
    std::erase(waiters_, waiter);
  }
  co_return reject();
}

void Bulkhead::release() noexcept {
  if (config_.max_wait.count() == 0) {
    in_use_.fetch_sub(1, std::memory_order_release);
    return;
  }
  std::shared_ptr<Waiter> next;
  {
    std::lock_guard lock(mutex_);
    if (waiters_.empty()) {
      in_use_.fetch_sub(1, std::memory_order_relaxed);
      return;
    }
    next = std::move(waiters_.front());
    waiters_.pop_front();
    next->granted = true;
  }
  auto ex = next->timer.get_executor();
  asio::post(ex, [w = std::move(next)] { w->timer.cancel(); });
}

std::size_t Bulkhead::waiting() const {
  std::lock_guard lock(mutex_);
  return waiters_.size();
}

}  // namespace mercado::resilience
