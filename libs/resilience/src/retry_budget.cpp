#include <mercado/resilience/retry_budget.hpp>

#include <cmath>
#include <stdexcept>

#include "time_buckets.hpp"

namespace mercado::resilience {

namespace {
constexpr std::uint32_t kBuckets = 10;
}

RetryBudget::RetryBudget(RetryBudgetConfig config, Env env) : config_(config), env_(env) {
  if (!(config_.ratio >= 0.0) || !std::isfinite(config_.ratio)) throw std::invalid_argument("retry budget: ratio must be >= 0");
  if (config_.window.count() < kBuckets) throw std::invalid_argument("retry budget: window too short");
  window_ = std::make_unique<detail::TimeBuckets<2>>(kBuckets, config_.window / kBuckets, env_.clock->now());
}

RetryBudget::~RetryBudget() = default;

void RetryBudget::record_call() noexcept { record_call(env_.clock->now()); }
void RetryBudget::record_call(core::SteadyTime now) noexcept { window_->add(now, {1, 0}); }

bool RetryBudget::try_spend() noexcept {
  std::lock_guard lock(spend_mutex_);
  const auto now = env_.clock->now();
  const auto t = window_->totals(now);
  const auto allowed = static_cast<std::int64_t>(config_.min_retries) +
                       static_cast<std::int64_t>(std::floor(config_.ratio * static_cast<double>(t[0])));
  if (t[1] + 1 > allowed) return false;
  window_->add(now, {0, 1});
  return true;
}

RetryBudget::Snapshot RetryBudget::snapshot() const {
  std::lock_guard lock(spend_mutex_);
  const auto t = window_->totals(env_.clock->now());
  return {static_cast<std::uint64_t>(t[0]), static_cast<std::uint64_t>(t[1]),
          config_.min_retries + static_cast<std::uint64_t>(std::floor(config_.ratio * static_cast<double>(t[0])))};
}

}  // namespace mercado::resilience
