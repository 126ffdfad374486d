#pragma once
// Circuit breaker: stops calling a downstream that keeps failing, lets a few trial calls
// through after a wait, and closes again when they succeed (docs/resilience.md).
//
// Models (CircuitBreakerConfig::model):
// - consecutive (the chapter's): CLOSED opens after `failure_threshold` consecutive
//   failures. After `wait_in_open`, the next call moves it to HALF_OPEN, which admits
//   exactly `success_threshold` trial calls: that many successes close it, any failure
//   re-opens it.
// - rate (resilience4j's): outcomes go into a sliding window (the last N calls or the last
//   N seconds). Once it holds `minimum_number_of_calls`, the breaker opens when the failure
//   rate >= failure_rate_threshold % or the slow-call rate >= slow_call_rate_threshold %.
//   HALF_OPEN admits exactly `permitted_calls_in_half_open` trial calls; once all have
//   reported, the same thresholds over those calls decide OPEN or CLOSED.
// DISABLED, FORCED_OPEN and METRICS_ONLY are entered only through transition_to().
//
// Protocol: every call asks first and reports once:
//   auto permit = breaker.try_acquire();
//   if (!permit) -> fail fast with a "not permitted" error, without touching the network
//   ... the call ...
//   breaker.on_result(permit, outcome, elapsed);
// Outcome::ignored hands a HALF_OPEN trial slot back without counting. A result whose
// permit was issued before a state change (the call outlived its state) is counted in
// circuit_breaker_calls_total but not used for decisions.
//
// Observability: gauge circuit_breaker_state{name} (CircuitState values), counter
// circuit_breaker_calls_total{name,outcome} (success, failure, ignored, not_permitted),
// and one log line per state transition (warn when opening, info otherwise).
//
// Thread-safety: every member may be called from any thread. In CLOSED, try_acquire() is
// one atomic load and on_result() a few atomic operations: no allocation, and no lock --
// except that a time-based window takes a mutex once per second to retire old buckets.
// A healthy count-based window (full, no failures or slow calls) is not even written to.
// Transitions, HALF_OPEN bookkeeping and listeners are serialised by a mutex. Listeners
// run under that mutex, in transition order: they may read the breaker (state(),
// snapshot()) but must not call transition_to() or reset() on it.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <mercado/core/clock.hpp>
#include <mercado/resilience/circuit_breaker_config.hpp>
#include <mercado/resilience/circuit_state.hpp>
#include <mercado/resilience/env.hpp>
#include <mercado/resilience/outcome.hpp>

namespace mercado::resilience {

// The answer of try_acquire(): permitted or not, and the state it was issued in.
// Trivially copyable; pass it back to on_result() exactly once when permitted.
class CircuitPermit {
 public:
  CircuitPermit() = default;
  explicit operator bool() const noexcept { return permitted_; }
  bool permitted() const noexcept { return permitted_; }
  CircuitState state() const noexcept { return static_cast<CircuitState>(word_ & 0xFFU); }

 private:
  friend class CircuitBreaker;
  CircuitPermit(std::uint64_t word, bool permitted) noexcept : word_(word), permitted_(permitted) {}
  std::uint64_t word_ = 0;  // generation << 8 | state
  bool permitted_ = false;
};

// Passed to listeners; the views are valid only during the call.
struct StateTransition {
  std::string_view breaker;  // the breaker's name
  CircuitState from;
  CircuitState to;
  std::string_view reason;   // e.g. "5 consecutive failures", "failure rate 60.0% >= 50.0%"
};

// What the breaker currently holds, for diagnostics and tests.
struct CircuitBreakerSnapshot {
  CircuitState state = CircuitState::closed;
  // Rate model: the sliding window (CLOSED, METRICS_ONLY) or the trial calls (HALF_OPEN).
  std::uint64_t calls = 0;
  std::uint64_t failed_calls = 0;
  std::uint64_t slow_calls = 0;
  float failure_rate = -1.0F;    // percent; -1 below the minimum number of calls
  float slow_call_rate = -1.0F;  // percent; -1 below the minimum number of calls
  // Consecutive model: the current run of failures (CLOSED) or successes (HALF_OPEN).
  std::uint32_t consecutive_failures = 0;
  std::uint32_t consecutive_successes = 0;
  std::uint32_t half_open_permits_left = 0;  // HALF_OPEN only
};

class CircuitBreaker {
 public:
  using Listener = std::function<void(const StateTransition&)>;

  // Throws std::invalid_argument for an invalid configuration (zero thresholds or window,
  // rates outside (0, 100], automatic transition without Env::scheduler).
  CircuitBreaker(std::string name, CircuitBreakerConfig config = {}, Env env = {});
  ~CircuitBreaker();
  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  // Asks to make one call. Not permitted in OPEN (before the wait has passed), FORCED_OPEN
  // and HALF_OPEN once every trial slot is taken; rejections count as not_permitted.
  CircuitPermit try_acquire() noexcept;

  // Reports the result of a permitted call; `elapsed` is its duration (slow-call
  // detection). Calling it with a non-permitted permit does nothing.
  void on_result(const CircuitPermit& permit, Outcome outcome, core::Duration elapsed) noexcept;

  CircuitState state() const noexcept;
  CircuitBreakerSnapshot snapshot() const;

  // Manual transitions (operators, tests, feature flags). Entering CLOSED, HALF_OPEN or
  // METRICS_ONLY starts with empty counts; entering OPEN starts a new wait. A transition
  // to the current state is a no-op.
  void transition_to(CircuitState target);
  // Back to CLOSED with empty counts, even from CLOSED.
  void reset();

  // Adds a listener called on every state transition (see the thread-safety note above).
  void add_listener(Listener listener);

  const std::string& name() const noexcept;
  const CircuitBreakerConfig& config() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mercado::resilience
