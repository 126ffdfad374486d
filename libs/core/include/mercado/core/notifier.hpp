#pragma once
// Wakes coroutines on any io thread when something happened (an append committed, a
// message arrived). Each notify_all() bumps a generation; wait(seen, timeout) returns at
// once if the generation moved past `seen`, otherwise when notified or at the timeout.
// No notification is lost between reading the generation and waiting. Thread-safe.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

namespace mercado::core {

class Notifier {
 public:
  std::uint64_t generation() const noexcept { return generation_.load(std::memory_order_acquire); }
  void notify_all();
  // Returns the generation observed when it returned.
  boost::asio::awaitable<std::uint64_t> wait(std::uint64_t seen, std::chrono::milliseconds timeout);

 private:
  std::atomic<std::uint64_t> generation_{0};
  std::mutex mutex_;
  std::vector<std::weak_ptr<boost::asio::steady_timer>> waiters_;
};

}  // namespace mercado::core
