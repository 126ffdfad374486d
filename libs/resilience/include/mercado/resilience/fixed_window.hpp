#pragma once
// Fixed-window counter aligned to the clock (Kong's rate-limiting "local" policy): at most
// `limit` permits per window, where windows start at whole multiples of `window` since the
// Unix epoch (a minute window resets at second :00 of every minute, a day window at
// 00:00 UTC). Reads the wall clock (core::Clock::wall_now()).
//
// Thread-safety: every member from any thread (a mutex per limiter). The clock is borrowed.

#include <chrono>
#include <cstdint>
#include <mutex>

#include <mercado/core/clock.hpp>
#include <mercado/resilience/rate_limiter.hpp>

namespace mercado::resilience {

struct FixedWindowConfig {
  std::uint64_t limit = 100;
  core::Duration window = std::chrono::seconds(1);  // second, minute, hour, day, ...
};

class FixedWindow final : public RateLimiter {
 public:
  // Throws std::invalid_argument for a zero limit or a window shorter than 1 ms.
  explicit FixedWindow(FixedWindowConfig config, const core::Clock& clock = core::SystemClock::instance());

  RateDecision try_acquire(std::uint32_t permits = 1) noexcept override;
  RateDecision peek(std::uint32_t permits = 1) const noexcept override;

  const FixedWindowConfig& config() const noexcept { return config_; }

 private:
  RateDecision decide(std::uint32_t permits, bool take) const noexcept;

  FixedWindowConfig config_;
  const core::Clock* clock_;
  mutable std::mutex mutex_;
  mutable std::int64_t window_index_ = -1;  // the window count_ belongs to
  mutable std::uint64_t count_ = 0;
};

}  // namespace mercado::resilience
