#include <mercado/resilience/token_bucket.hpp>

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace mercado::resilience {

TokenBucket::TokenBucket(TokenBucketConfig config, const core::Clock& clock) : config_(config), clock_(&clock) {
  if (config_.capacity == 0) throw std::invalid_argument("token bucket: capacity must be >= 1");
  if (config_.refill_tokens == 0 || config_.refill_period.count() <= 0) {
    throw std::invalid_argument("token bucket: refill rate must be > 0");
  }
  interval_ = config_.refill_period.count() / static_cast<std::int64_t>(config_.refill_tokens);
  if (interval_ == 0) throw std::invalid_argument("token bucket: more than one token per nanosecond");
  if (config_.capacity > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max() / interval_ / 4)) {
    throw std::invalid_argument("token bucket: capacity too large");
  }
  tau_ = static_cast<std::int64_t>(config_.capacity) * interval_;
}

RateDecision TokenBucket::decide(std::int64_t now, std::int64_t tat, std::uint32_t permits,
                                 std::int64_t& new_tat) const noexcept {
  RateDecision d;
  d.limit = config_.capacity;
  const std::int64_t base = std::max(tat, now);  // the bucket's "empty-until" time, at least now
  if (permits > config_.capacity) {
    d.remaining = static_cast<std::uint64_t>((tau_ - (base - now)) / interval_);
    d.retry_after = core::Duration::max();
    d.reset = core::Duration(base - now);
    return d;
  }
  new_tat = base + static_cast<std::int64_t>(permits) * interval_;
  if (new_tat - now > tau_) {
    d.remaining = static_cast<std::uint64_t>((tau_ - (base - now)) / interval_);
    d.retry_after = core::Duration(new_tat - now - tau_);
    d.reset = core::Duration(base - now);
    return d;
  }
  d.allowed = true;
  d.remaining = static_cast<std::uint64_t>((tau_ - (new_tat - now)) / interval_);
  d.reset = core::Duration(new_tat - now);
  return d;
}

RateDecision TokenBucket::try_acquire(std::uint32_t permits) noexcept {
  const std::int64_t now = clock_->now().time_since_epoch().count();
  std::int64_t tat = tat_.load(std::memory_order_relaxed);
  for (;;) {
    std::int64_t new_tat = 0;
    RateDecision d = decide(now, tat, permits, new_tat);
    if (!d.allowed) return d;
    if (tat_.compare_exchange_weak(tat, new_tat, std::memory_order_relaxed)) return d;
  }
}

RateDecision TokenBucket::peek(std::uint32_t permits) const noexcept {
  std::int64_t ignored = 0;
  return decide(clock_->now().time_since_epoch().count(), tat_.load(std::memory_order_relaxed), permits, ignored);
}

}  // namespace mercado::resilience
