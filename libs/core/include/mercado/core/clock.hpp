#pragma once
// Time behind an interface so that time-dependent logic (breakers, windows, backoff,
// timeouts) is tested with a ManualClock and never sleeps.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace mercado::core {

using SteadyTime = std::chrono::steady_clock::time_point;
using Duration = std::chrono::nanoseconds;

// Milliseconds since the Unix epoch: the timestamp format of the services' tables.
inline std::int64_t unix_millis(std::chrono::system_clock::time_point t = std::chrono::system_clock::now()) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// Thread-safe: implementations may be called concurrently.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime now() const noexcept = 0;
  virtual std::chrono::system_clock::time_point wall_now() const noexcept = 0;
};

// The process clock: std::chrono::steady_clock / system_clock.
class SystemClock final : public Clock {
 public:
  SteadyTime now() const noexcept override { return std::chrono::steady_clock::now(); }
  std::chrono::system_clock::time_point wall_now() const noexcept override {
    return std::chrono::system_clock::now();
  }
  // A process-wide instance (never destroyed before main returns).
  static const SystemClock& instance() noexcept;
};

// A clock that moves only when told to. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(SteadyTime start = SteadyTime{} + std::chrono::hours(1))
      : now_ns_(start.time_since_epoch().count()) {}
  SteadyTime now() const noexcept override {
    return SteadyTime(Duration(now_ns_.load(std::memory_order_acquire)));
  }
  std::chrono::system_clock::time_point wall_now() const noexcept override {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            Duration(now_ns_.load(std::memory_order_acquire))));
  }
  void advance(Duration d) noexcept { now_ns_.fetch_add(d.count(), std::memory_order_acq_rel); }

 private:
  std::atomic<Duration::rep> now_ns_;
};

}  // namespace mercado::core
