#include <mercado/resilience/backoff.hpp>

#include <algorithm>
#include <cmath>

namespace mercado::resilience {

core::Duration backoff_delay(const BackoffConfig& config, std::uint32_t retry, double unit) noexcept {
  const double cap = static_cast<double>(std::max<core::Duration::rep>(config.max.count(), 0));
  const double exponent = static_cast<double>(std::max<std::uint32_t>(retry, 1) - 1);
  const double grown = static_cast<double>(config.initial.count()) * std::pow(config.multiplier, exponent);
  const double base = std::isfinite(grown) ? std::min(grown, cap) : cap;
  const double u = std::clamp(unit, 0.0, 1.0);
  const double jittered = base * (1.0 - config.jitter + 2.0 * config.jitter * u);
  return core::Duration(static_cast<core::Duration::rep>(std::clamp(jittered, 0.0, cap)));
}

}  // namespace mercado::resilience
