#pragma once
// Token bucket: `capacity` tokens, refilled at `refill_tokens` per `refill_period`; a
// request for n permits is granted when n tokens are in the bucket. Bursts up to the
// capacity, sustained rate = refill_tokens / refill_period.
//
// Implemented as GCRA (the generic cell rate algorithm): one atomic "theoretical arrival
// time" instead of a token count and a refill timestamp, so try_acquire() is a single
// lock-free compare-and-swap. Equivalent to the bucket above to the nanosecond.
//
// Thread-safety: every member from any thread. The clock is borrowed.

#include <atomic>
#include <chrono>
#include <cstdint>

#include <mercado/core/clock.hpp>
#include <mercado/resilience/rate_limiter.hpp>

namespace mercado::resilience {

struct TokenBucketConfig {
  std::uint64_t capacity = 10;       // tokens when full (the burst)
  std::uint64_t refill_tokens = 10;  // tokens added per refill_period
  core::Duration refill_period = std::chrono::seconds(1);
};

class TokenBucket final : public RateLimiter {
 public:
  // Starts full. Throws std::invalid_argument for a zero capacity or rate, or a rate above
  // one token per nanosecond.
  explicit TokenBucket(TokenBucketConfig config, const core::Clock& clock = core::SystemClock::instance());

  RateDecision try_acquire(std::uint32_t permits = 1) noexcept override;
  RateDecision peek(std::uint32_t permits = 1) const noexcept override;

  const TokenBucketConfig& config() const noexcept { return config_; }

 private:
  RateDecision decide(std::int64_t now, std::int64_t tat, std::uint32_t permits, std::int64_t& new_tat) const noexcept;

  TokenBucketConfig config_;
  const core::Clock* clock_;
  std::int64_t interval_;  // ns per token
  std::int64_t tau_;       // capacity × interval: how far the arrival time may run ahead
  std::atomic<std::int64_t> tat_{0};
};

}  // namespace mercado::resilience
