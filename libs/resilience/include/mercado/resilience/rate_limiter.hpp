#pragma once
// Rate limiting: the interface shared by the token bucket and the fixed window, used by
// the pipeline for outbound calls and reusable by the gateway for inbound ones (one
// limiter per consumer and period; RateDecision carries what the RateLimit-* and
// Retry-After headers need).

#include <chrono>
#include <cstdint>

#include <mercado/core/clock.hpp>

namespace mercado::resilience {

struct RateDecision {
  bool allowed = false;
  std::uint64_t limit = 0;      // permits per window / bucket capacity
  std::uint64_t remaining = 0;  // permits left after this decision
  // Denied: how long until the same request could be granted (Retry-After);
  // core::Duration::max() when it never can (more permits than the limit).
  core::Duration retry_after{0};
  // Until the window resets (fixed window) or the bucket is full again (token bucket).
  core::Duration reset{0};
};

// Thread-safe: implementations may be called from any thread.
class RateLimiter {
 public:
  virtual ~RateLimiter() = default;
  // Takes `permits` if they are available now; takes nothing when denied.
  virtual RateDecision try_acquire(std::uint32_t permits = 1) noexcept = 0;
  // What try_acquire(permits) would answer now, without taking anything (for a caller
  // that must check several limits before consuming from any, as Kong does).
  virtual RateDecision peek(std::uint32_t permits = 1) const noexcept = 0;
};

}  // namespace mercado::resilience
