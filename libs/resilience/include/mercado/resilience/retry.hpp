#pragma once
// Retry: decides, after each failed attempt, whether and when to try again.
//
// A call is retried only when every one of these holds (first failing check wins, and is
// the verdict):
//   - attempts left:     attempt < max_attempts (max_attempts counts the first call)
//   - retryable:         the failure is transient (the caller's classification)
//   - safe:              the request is idempotent, carries an Idempotency-Key, or
//                        certainly never reached the downstream
//   - Retry-After:       when the answer has one, it is at most max_retry_after; the delay
//                        is then at least Retry-After
//   - time:              the delay ends before the call's deadline
//   - budget:            the RetryBudget (if any) has a retry to spend
// The delay is backoff_delay(config.backoff, attempt, random), or Retry-After if longer.
//
// Metrics: retry_attempts_total{name} (retries granted), retry_budget_exhausted_total{name}.
// Each granted retry is logged at info, a spent budget at warn.
// Thread-safety: decide() from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <mercado/core/clock.hpp>
#include <mercado/resilience/backoff.hpp>
#include <mercado/resilience/env.hpp>
#include <mercado/resilience/retry_budget.hpp>

namespace mercado::resilience {

struct RetryConfig {
  std::uint32_t max_attempts = 3;  // including the first call; 1 disables retries
  BackoffConfig backoff;
  bool honour_retry_after = true;
  core::Duration max_retry_after = std::chrono::seconds(30);  // a longer Retry-After ends the call
};

enum class RetryVerdict : std::uint8_t {
  retry,
  attempts_exhausted,
  not_retryable,
  unsafe,
  retry_after_too_long,
  deadline,
  budget_exhausted,
};
std::string_view to_string(RetryVerdict verdict) noexcept;

struct RetryDecision {
  RetryVerdict verdict = RetryVerdict::not_retryable;
  core::Duration delay{0};  // retry only: wait this long first
  explicit operator bool() const noexcept { return verdict == RetryVerdict::retry; }
};

// What the caller knows about the attempt that just failed.
struct FailedAttempt {
  std::uint32_t attempt = 1;                      // 1-based number of the attempt
  bool retryable = false;                         // transient failure
  bool safe = false;                              // replaying it cannot do harm
  std::optional<core::Duration> retry_after;      // the answer's Retry-After, if any
  core::SteadyTime deadline = core::SteadyTime::max();  // the call's deadline (Env::clock)
};

class Retry {
 public:
  // `budget` is borrowed (may be null: no budget) and may be shared by several Retry.
  // Throws std::invalid_argument for max_attempts 0, multiplier < 1 or jitter outside [0, 1].
  Retry(std::string name, RetryConfig config = {}, Env env = {}, RetryBudget* budget = nullptr);

  RetryDecision decide(const FailedAttempt& failed) noexcept;

  const std::string& name() const noexcept { return name_; }
  const RetryConfig& config() const noexcept { return config_; }

 private:
  std::string name_;
  RetryConfig config_;
  Env env_;
  RetryBudget* budget_;
  obs::Counter* attempts_total_;
  obs::Counter* budget_exhausted_total_;
};

// Parses a Retry-After value: delta-seconds ("120") or an IMF-fixdate
// ("Sun, 06 Nov 1994 08:49:37 GMT", relative to `now`; a past date is 0). nullopt when
// the value is neither.
std::optional<core::Duration> parse_retry_after(std::string_view value,
                                                std::chrono::system_clock::time_point now) noexcept;

}  // namespace mercado::resilience
