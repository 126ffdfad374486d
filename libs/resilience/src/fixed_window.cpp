#include <mercado/resilience/fixed_window.hpp>

#include <algorithm>
#include <stdexcept>

namespace mercado::resilience {

FixedWindow::FixedWindow(FixedWindowConfig config, const core::Clock& clock) : config_(config), clock_(&clock) {
  if (config_.limit == 0) throw std::invalid_argument("fixed window: limit must be >= 1");
  if (config_.window < std::chrono::milliseconds(1)) throw std::invalid_argument("fixed window: window must be >= 1 ms");
}

RateDecision FixedWindow::decide(std::uint32_t permits, bool take) const noexcept {
  const std::int64_t wall = std::chrono::duration_cast<core::Duration>(clock_->wall_now().time_since_epoch()).count();
  const std::int64_t width = config_.window.count();
  std::int64_t index = wall / width;
  RateDecision d;
  d.limit = config_.limit;

  std::lock_guard lock(mutex_);
  // A thread that read the clock just before another moved to the next window counts in
  // the newer window rather than resetting it.
  index = std::max(index, window_index_);
  d.reset = core::Duration(std::max<std::int64_t>((index + 1) * width - wall, 0));
  std::uint64_t count = index == window_index_ ? count_ : 0;
  if (count + permits > config_.limit) {
    d.remaining = config_.limit - std::min(count, config_.limit);
    d.retry_after = permits > config_.limit ? core::Duration::max() : d.reset;
    return d;
  }
  count += permits;
  if (take) {
    window_index_ = index;
    count_ = count;
  }
  d.allowed = true;
  d.remaining = config_.limit - count;
  return d;
}

RateDecision FixedWindow::try_acquire(std::uint32_t permits) noexcept { return decide(permits, true); }
RateDecision FixedWindow::peek(std::uint32_t permits) const noexcept { return decide(permits, false); }

}  // namespace mercado::resilience
