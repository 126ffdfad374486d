#include <mercado/core/clock.hpp>

namespace mercado::core {

const SystemClock& SystemClock::instance() noexcept {
  static const SystemClock clock;
  return clock;
}

}  // namespace mercado::core
