#pragma once
// Deferred work behind an interface: the circuit breaker's optional automatic
// OPEN -> HALF_OPEN transition runs through a Scheduler, so tests fire it by hand.

#include <functional>

#include <boost/asio/any_io_executor.hpp>

#include <mercado/core/clock.hpp>

namespace mercado::resilience {

// Thread-safe: schedule_after() may be called from any thread.
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Runs `task` once, after `delay`, on some thread other than the caller's stack frame
  // (never inline: callers may hold locks). Tasks still pending when the scheduler's
  // execution context is destroyed are dropped without running.
  virtual void schedule_after(core::Duration delay, std::function<void()> task) = 0;
};

// Runs tasks on a boost::asio::steady_timer of the given executor (real time).
class AsioScheduler final : public Scheduler {
 public:
  explicit AsioScheduler(boost::asio::any_io_executor executor) : executor_(std::move(executor)) {}
  void schedule_after(core::Duration delay, std::function<void()> task) override;

 private:
  boost::asio::any_io_executor executor_;
};

}  // namespace mercado::resilience
