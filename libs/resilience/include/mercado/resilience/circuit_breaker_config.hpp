#pragma once
// Configuration of a circuit breaker. Two models (see circuit_breaker.hpp); the defaults
// are resilience4j's, the consecutive() factory gives the chapter's breaker.

#include <chrono>
#include <cstdint>

#include <mercado/core/clock.hpp>

namespace mercado::resilience {

enum class BreakerModel : std::uint8_t {
  consecutive,  // the chapter's: N consecutive failures open, M consecutive successes close
  rate,         // resilience4j's: failure / slow-call rate over a sliding window
};

enum class SlidingWindowType : std::uint8_t {
  count_based,  // the last `sliding_window_size` calls
  time_based,   // the calls of the last `sliding_window_size` seconds (1-second buckets)
};

struct CircuitBreakerConfig {
  BreakerModel model = BreakerModel::rate;

  // --- consecutive model
  std::uint32_t failure_threshold = 5;  // consecutive failures in CLOSED that open
  std::uint32_t success_threshold = 3;  // consecutive successes in HALF_OPEN that close;
                                        // HALF_OPEN admits exactly this many trial calls

  // --- rate model
  float failure_rate_threshold = 50.0F;     // percent; opens when the rate >= this
  float slow_call_rate_threshold = 100.0F;  // percent; opens when the rate >= this
  core::Duration slow_call_duration_threshold = std::chrono::seconds(60);  // >= is slow
  SlidingWindowType sliding_window_type = SlidingWindowType::count_based;
  std::uint32_t sliding_window_size = 100;  // calls (count based) or seconds (time based)
  // Calls the window must hold before a rate is computed; clamped to the window size
  // for count-based windows (as resilience4j does).
  std::uint32_t minimum_number_of_calls = 100;
  std::uint32_t permitted_calls_in_half_open = 10;  // trial calls in HALF_OPEN

  // --- both models
  // How long OPEN rejects calls (the chapter's `timeout`). After it, the next
  // try_acquire() moves the breaker to HALF_OPEN.
  core::Duration wait_in_open = std::chrono::seconds(60);
  // Also move OPEN -> HALF_OPEN by itself once the wait has passed (needs Env::scheduler).
  bool automatic_transition_to_half_open = false;

  // The chapter's breaker (Ejercicio 1 defaults: 5 failures, 60 s, 3 successes).
  static CircuitBreakerConfig consecutive(std::uint32_t failure_threshold = 5,
                                          core::Duration timeout = std::chrono::seconds(60),
                                          std::uint32_t success_threshold = 3) {
    CircuitBreakerConfig c;
    c.model = BreakerModel::consecutive;
    c.failure_threshold = failure_threshold;
    c.wait_in_open = timeout;
    c.success_threshold = success_threshold;
    return c;
  }
};

}  // namespace mercado::resilience
