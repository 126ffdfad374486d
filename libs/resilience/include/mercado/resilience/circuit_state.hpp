#pragma once
// The states of a circuit breaker (resilience4j's set).

#include <cstdint>
#include <string_view>

namespace mercado::resilience {

// The value of each state is what the gauge circuit_breaker_state{name} shows.
enum class CircuitState : std::uint8_t {
  closed = 0,        // calls flow; outcomes are recorded and may open the breaker
  open = 1,          // calls are rejected until the wait in OPEN has passed
  half_open = 2,     // a limited number of trial calls decide between CLOSED and OPEN
  disabled = 3,      // calls flow, nothing is recorded, no transitions (manual)
  forced_open = 4,   // every call is rejected, no transitions (manual)
  metrics_only = 5,  // calls flow and are recorded, no transitions (manual)
};

// "CLOSED", "OPEN", "HALF_OPEN", "DISABLED", "FORCED_OPEN", "METRICS_ONLY".
std::string_view to_string(CircuitState state) noexcept;

}  // namespace mercado::resilience
