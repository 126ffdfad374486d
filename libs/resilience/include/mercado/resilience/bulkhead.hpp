#pragma once
// Bulkhead: caps the calls in flight to one downstream, so that a slow downstream cannot
// take every connection and coroutine of the caller (resilience4j's SemaphoreBulkhead:
// 25 concurrent calls, no wait, by default).
//
// Over the limit a call waits up to `max_wait` for a slot -- first come, first served: a
// released slot is handed to the longest waiter -- and is rejected after that. The default
// max_wait 0 rejects at once. Metrics: bulkhead_rejected_total{name}.
//
// Thread-safety: any thread. With max_wait 0 acquiring and releasing are lock-free; with a
// wait they take a mutex and a waiter is woken on its own executor, which must be run by
// one thread (core::IoRuntime's model) or be a strand. The bulkhead must outlive its
// permits and waiting coroutines.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include <mercado/core/clock.hpp>
#include <mercado/resilience/env.hpp>

namespace mercado::resilience {

struct BulkheadConfig {
  std::uint32_t max_concurrent_calls = 25;
  core::Duration max_wait{0};  // 0: reject at once when full
};

class Bulkhead;

// One slot of a bulkhead, released on destruction (or release()). Empty when rejected.
// Move-only.
class BulkheadPermit {
 public:
  BulkheadPermit() = default;
  ~BulkheadPermit() { release(); }
  BulkheadPermit(BulkheadPermit&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)) {}
  BulkheadPermit& operator=(BulkheadPermit&& other) noexcept {
    if (this != &other) {
      release();
      owner_ = std::exchange(other.owner_, nullptr);
    }
    return *this;
  }
  BulkheadPermit(const BulkheadPermit&) = delete;
  BulkheadPermit& operator=(const BulkheadPermit&) = delete;

  explicit operator bool() const noexcept { return owner_ != nullptr; }
  void release() noexcept;

 private:
  friend class Bulkhead;
  explicit BulkheadPermit(Bulkhead* owner) noexcept : owner_(owner) {}
  Bulkhead* owner_ = nullptr;
};

class Bulkhead {
 public:
  // Throws std::invalid_argument for max_concurrent_calls 0 or a negative max_wait.
  Bulkhead(std::string name, BulkheadConfig config = {}, Env env = {});
  ~Bulkhead();
  Bulkhead(const Bulkhead&) = delete;
  Bulkhead& operator=(const Bulkhead&) = delete;

  // A slot now, or an empty permit (counted as rejected). Never waits; does not jump the
  // queue of waiting coroutines.
  BulkheadPermit try_acquire() noexcept;

  // A slot, waiting at most min(max_wait, deadline − Env::clock now) (the wait itself runs
  // on a real-time timer). An empty permit, counted as rejected, when none came in time or
  // the wait was cancelled.
  boost::asio::awaitable<BulkheadPermit> acquire(std::optional<core::SteadyTime> deadline = std::nullopt);

  std::uint32_t in_use() const noexcept { return in_use_.load(std::memory_order_relaxed); }
  std::size_t waiting() const;
  const std::string& name() const noexcept { return name_; }
  const BulkheadConfig& config() const noexcept { return config_; }

 private:
  friend class BulkheadPermit;
  struct Waiter;

  void release() noexcept;
  BulkheadPermit reject() noexcept;

  std::string name_;
  BulkheadConfig config_;
  Env env_;
  obs::Counter* rejected_;
  alignas(64) std::atomic<std::uint32_t> in_use_{0};
  mutable std::mutex mutex_;  // waiting mode: in_use_ changes and waiters_
  std::deque<std::shared_ptr<Waiter>> waiters_;
};

inline void BulkheadPermit::release() noexcept {
  if (owner_ != nullptr) std::exchange(owner_, nullptr)->release();
}

}  // namespace mercado::resilience
