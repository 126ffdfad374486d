#pragma once
// Waiting behind an interface: the retry backoff and the rate limiter's wait go through a
// Sleeper, so tests substitute one that advances a core::ManualClock instead of sleeping.

#include <boost/asio/awaitable.hpp>

#include <mercado/core/clock.hpp>

namespace mercado::resilience {

// Thread-safe: one Sleeper serves coroutines on every io thread.
class Sleeper {
 public:
  virtual ~Sleeper() = default;
  // Resumes the calling coroutine after `delay` (at once when delay <= 0), on its own
  // executor. Cancelling the coroutine ends the wait early.
  virtual boost::asio::awaitable<void> sleep(core::Duration delay) = 0;
};

// Waits on a boost::asio::steady_timer of the calling coroutine's executor (real time).
class AsioSleeper final : public Sleeper {
 public:
  boost::asio::awaitable<void> sleep(core::Duration delay) override;
  // A process-wide instance (stateless, never destroyed).
  static AsioSleeper& instance() noexcept;
};

}  // namespace mercado::resilience
