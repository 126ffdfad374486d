#pragma once
// Exponential backoff with jitter and a cap (resilience4j's exponential random backoff,
// with the cap applied after the jitter so that no delay ever exceeds it).

#include <chrono>
#include <cstdint>

#include <mercado/core/clock.hpp>

namespace mercado::resilience {

struct BackoffConfig {
  core::Duration initial = std::chrono::milliseconds(500);  // before the first retry
  double multiplier = 1.5;                                  // growth per retry (>= 1)
  double jitter = 0.5;                                      // randomisation, 0..1 (±50 %)
  core::Duration max = std::chrono::seconds(30);            // cap on any single delay
};

// The delay before retry number `retry` (1 = the first retry):
//   base  = min(initial × multiplier^(retry−1), max)
//   delay = min(base × (1 − jitter + 2 × jitter × unit), max)
// so delay ∈ [base × (1 − jitter), min(base × (1 + jitter), max)]. `unit` is a uniform
// random number in [0, 1) (Random::next_unit()). Pure; thread-safe.
core::Duration backoff_delay(const BackoffConfig& config, std::uint32_t retry, double unit) noexcept;

}  // namespace mercado::resilience
