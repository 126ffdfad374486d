#pragma once
// What a sliding window holds: calls, and how many of them failed or were slow.

#include <cstdint>

namespace mercado::resilience::detail {

struct WindowCounts {
  std::uint64_t calls = 0;
  std::uint64_t failures = 0;
  std::uint64_t slow = 0;
};

}  // namespace mercado::resilience::detail
