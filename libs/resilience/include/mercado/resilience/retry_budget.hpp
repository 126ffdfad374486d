#pragma once
// Retry budget (after Finagle's RetryBudget and Envoy's retry_budget): retries may add at
// most a share of the calls made in a sliding window, plus a small floor, so that retries
// cannot multiply an outage: when a downstream fails every call, retries stop at
// `ratio` extra load instead of (max_attempts − 1)×.
//
//   retries in the window  <=  min_retries + ratio × calls in the window
//
// Metrics: the Retry that spends from it counts retry_budget_exhausted_total{name}.
// Thread-safety: every member from any thread. record_call() is lock-free (except once
// per tenth of the window) and counts into a per-thread shard, so calls from several
// threads do not contend; try_spend() takes a mutex (retries are the rare path).

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <mercado/core/clock.hpp>
#include <mercado/resilience/env.hpp>

namespace mercado::resilience {

namespace detail {
template <std::size_t K>
class TimeBuckets;
}

struct RetryBudgetConfig {
  double ratio = 0.2;                               // share of calls that may be retried
  std::uint32_t min_retries = 10;                   // retries allowed per window regardless
  core::Duration window = std::chrono::seconds(10);  // sliding window (10 buckets)
};

class RetryBudget {
 public:
  // Throws std::invalid_argument for ratio < 0 or a window < 10 ns.
  explicit RetryBudget(RetryBudgetConfig config = {}, Env env = {});
  ~RetryBudget();
  RetryBudget(const RetryBudget&) = delete;
  RetryBudget& operator=(const RetryBudget&) = delete;

  // Counts one call (its first attempt): deposits `ratio` into the budget. `now` is
  // Env::clock's time, for callers that have just read it.
  void record_call() noexcept;
  void record_call(core::SteadyTime now) noexcept;
  // Takes one retry from the budget; false when it is spent.
  bool try_spend() noexcept;

  struct Snapshot {
    std::uint64_t calls = 0;
    std::uint64_t retries = 0;
    std::uint64_t allowed = 0;  // retries the window allows now
  };
  Snapshot snapshot() const;

  const RetryBudgetConfig& config() const noexcept { return config_; }

 private:
  std::int64_t calls_in_window(core::SteadyTime now) const noexcept;

  static constexpr std::size_t kShards = 4;
  RetryBudgetConfig config_;
  Env env_;
  std::array<std::unique_ptr<detail::TimeBuckets<1>>, kShards> calls_;  // per thread shard
  std::unique_ptr<detail::TimeBuckets<1>> retries_;
  mutable std::mutex spend_mutex_;
};

}  // namespace mercado::resilience
