#include <mercado/resilience/retry_budget.hpp>

#include <cmath>
#include <stdexcept>

#include "thread_shard.hpp"
#include "time_buckets.hpp"

namespace mercado::resilience {

namespace {
constexpr std::uint32_t kBuckets = 10;
}

RetryBudget::RetryBudget(RetryBudgetConfig config, Env env) : config_(config), env_(env) {
  if (!(config_.ratio >= 0.0) || !std::isfinite(config_.ratio)) throw std::invalid_argument("retry budget: ratio must be >= 0");
  if (config_.window.count() < kBuckets) throw std::invalid_argument("retry budget: window too short");
  static_assert(kShards == detail::kThreadShards);
  const auto now = env_.clock->now();
  for (auto& shard : calls_) shard = std::make_unique<detail::TimeBuckets<1>>(kBuckets, config_.window / kBuckets, now);
  retries_ = std::make_unique<detail::TimeBuckets<1>>(kBuckets, config_.window / kBuckets, now);
}

RetryBudget::~RetryBudget() = default;

void RetryBudget::record_call() noexcept { record_call(env_.clock->now()); }
void RetryBudget::record_call(core::SteadyTime now) noexcept { calls_[detail::thread_shard()]->add(now, {1}); }

std::int64_t RetryBudget::calls_in_window(core::SteadyTime now) const noexcept {
  std::int64_t calls = 0;
  for (const auto& shard : calls_) calls += shard->totals(now)[0];
  return calls;
}

bool RetryBudget::try_spend() noexcept {
  std::lock_guard lock(spend_mutex_);
  const auto now = env_.clock->now();
  const std::int64_t calls = calls_in_window(now);
  const std::int64_t retries = retries_->totals(now)[0];
  const auto allowed = static_cast<std::int64_t>(config_.min_retries) +
                       static_cast<std::int64_t>(std::floor(config_.ratio * static_cast<double>(calls)));
  if (retries + 1 > allowed) return false;
  retries_->add(now, {1});
  return true;
}

RetryBudget::Snapshot RetryBudget::snapshot() const {
  std::lock_guard lock(spend_mutex_);
  const auto now = env_.clock->now();
  const std::int64_t calls = calls_in_window(now);
  return {static_cast<std::uint64_t>(calls), static_cast<std::uint64_t>(retries_->totals(now)[0]),
          config_.min_retries + static_cast<std::uint64_t>(std::floor(config_.ratio * static_cast<double>(calls)))};
}

}  // namespace mercado::resilience
