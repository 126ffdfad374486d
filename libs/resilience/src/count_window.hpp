#pragma once
// The outcomes of the last N calls (resilience4j's COUNT_BASED sliding window), recorded
// without a lock.
//
// Each slot holds one call's outcome bits; running totals are kept beside the slots. A fast
// success arriving at a full window without failures or slow calls changes nothing and
// writes nothing (the steady state of a healthy downstream costs three loads). Every
// change of a slot goes through an atomic exchange whose previous value is subtracted from
// the totals, so the totals always converge to the sum over the slots, even when a reset
// runs concurrently with record(). A snapshot taken while records are in flight may be off
// by the in-flight calls (never negative: reads are clamped).
//
// Thread-safety: record() and counts() from any thread; reset() is serialised by the
// caller (the breaker's mutex) but may overlap record().

#include <atomic>
#include <cstdint>
#include <memory>

#include "window_counts.hpp"

namespace mercado::resilience::detail {

class CountWindow {
 public:
  explicit CountWindow(std::uint32_t size)
      : size_(size), slots_(std::make_unique<std::atomic<std::uint8_t>[]>(size)) {}

  // Records one outcome and returns the window's counts including it.
  WindowCounts record(bool failure, bool slow) noexcept {
    // A full window of fast successes stays exactly that when one more fast success
    // arrives, whichever slot it would take: nothing to write. This keeps the common case
    // free of read-modify-write operations (and of cache-line ping-pong between threads).
    if (!failure && !slow) {
      const WindowCounts c = counts();
      if (c.failures == 0 && c.slow == 0 && c.calls == size_) return c;
    }
    std::uint32_t i = next_.load(std::memory_order_relaxed);
    while (!next_.compare_exchange_weak(i, i + 1 == size_ ? 0 : i + 1, std::memory_order_relaxed)) {
    }
    const std::uint8_t now = kRecorded | (failure ? kFailed : 0) | (slow ? kSlow : 0);
    auto& slot = slots_[i];
    std::uint8_t before = slot.load(std::memory_order_relaxed);
    if (before != now) {
      before = slot.exchange(now, std::memory_order_relaxed);
      account(before, now);
    }
    return counts();
  }

  WindowCounts counts() const noexcept {
    return {clamp(filled_.load(std::memory_order_relaxed)), clamp(failures_.load(std::memory_order_relaxed)),
            clamp(slow_.load(std::memory_order_relaxed))};
  }

  void reset() noexcept {
    for (std::uint32_t i = 0; i < size_; ++i) account(slots_[i].exchange(0, std::memory_order_relaxed), 0);
    next_.store(0, std::memory_order_relaxed);
  }

  std::uint32_t size() const noexcept { return size_; }

 private:
  static constexpr std::uint8_t kRecorded = 1;
  static constexpr std::uint8_t kFailed = 2;
  static constexpr std::uint8_t kSlow = 4;

  static std::uint64_t clamp(std::int64_t v) noexcept { return v < 0 ? 0 : static_cast<std::uint64_t>(v); }
  static int bit(std::uint8_t v, std::uint8_t mask) noexcept { return (v & mask) != 0 ? 1 : 0; }

  void account(std::uint8_t before, std::uint8_t now) noexcept {
    if (before == now) return;
    if (int d = bit(now, kRecorded) - bit(before, kRecorded)) filled_.fetch_add(d, std::memory_order_relaxed);
    if (int d = bit(now, kFailed) - bit(before, kFailed)) failures_.fetch_add(d, std::memory_order_relaxed);
    if (int d = bit(now, kSlow) - bit(before, kSlow)) slow_.fetch_add(d, std::memory_order_relaxed);
  }

  const std::uint32_t size_;
  const std::unique_ptr<std::atomic<std::uint8_t>[]> slots_;
  alignas(64) std::atomic<std::uint32_t> next_{0};
  alignas(64) std::atomic<std::int64_t> filled_{0};
  std::atomic<std::int64_t> failures_{0};
  std::atomic<std::int64_t> slow_{0};
};

}  // namespace mercado::resilience::detail
