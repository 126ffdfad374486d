#pragma once
// The client side of Ejercicio 1: calls an unreliable service through a ServiceClient with
// the chapter's circuit breaker, prints every state transition as it happens and, at the
// end, the outcome of every call (from circuit_breaker_calls_total).

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <mercado/observability/metrics.hpp>
#include <mercado/resilience/circuit_breaker_config.hpp>
#include <mercado/resilience/circuit_state.hpp>

namespace unreliable {

struct ExerciseOptions {
  std::string base_url;  // the unreliable service, e.g. http://127.0.0.1:8000
  std::string path = "/work";
  int calls = 100;
  std::chrono::milliseconds interval{100};  // between the start of one call and the next
  mercado::resilience::CircuitBreakerConfig breaker =
      mercado::resilience::CircuitBreakerConfig::consecutive(5, std::chrono::seconds(2), 3);
};

struct Transition {
  int call = 0;  // the call during which it happened (1-based)
  mercado::resilience::CircuitState from;
  mercado::resilience::CircuitState to;
  std::string reason;
};

struct ExerciseReport {
  std::uint64_t success = 0;        // 2xx
  std::uint64_t failure = 0;        // 5xx, refused, timed out
  std::uint64_t not_permitted = 0;  // failed fast by the breaker: never sent
  std::uint64_t ignored = 0;
  std::vector<Transition> transitions;
  std::string timeline;  // one character per call: '.' success, 'x' failure, '-' not permitted
};

// Runs the calls one after the other on the calling thread, writing progress to `out`.
// Metrics go to `metrics` (breaker name "unreliable").
ExerciseReport run_exercise(const ExerciseOptions& options, mercado::obs::Registry& metrics, std::ostream& out);

}  // namespace unreliable
