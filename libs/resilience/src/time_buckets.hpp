#pragma once
// K running totals over the last `buckets` x `width` of time (resilience4j's TIME_BASED
// sliding window: one partial aggregate per bucket plus window totals).
//
// add() is lock-free while the time falls in the newest bucket; moving to a newer bucket
// takes a mutex once per bucket width and retires the buckets that left the window
// (exchange to zero, subtract from the totals), so totals always converge to the sum of
// the live buckets. A thread descheduled for a whole window between reading the head and
// adding may land its delta in the bucket that replaced its own (counted, a window late).
//
// Thread-safety: every member from any thread.

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include <mercado/core/clock.hpp>

namespace mercado::resilience::detail {

template <std::size_t K>
class TimeBuckets {
 public:
  using Values = std::array<std::int64_t, K>;

  // buckets >= 1, width > 0.
  TimeBuckets(std::uint32_t buckets, core::Duration width, core::SteadyTime now)
      : n_(buckets), width_(width.count()), buckets_(std::make_unique<Bucket[]>(buckets)) {
    head_.store(index_of(now), std::memory_order_relaxed);
  }

  // Adds `delta` at time `now` and returns the window totals including it.
  Values add(core::SteadyTime now, const Values& delta) noexcept {
    const std::int64_t idx = index_of(now);
    std::int64_t head = head_.load(std::memory_order_acquire);
    if (idx > head) head = roll(idx);
    if (idx > head - n_) {  // older than the window (a late reader of the clock): dropped
      auto& b = buckets_[static_cast<std::size_t>(idx % n_)];
      for (std::size_t k = 0; k < K; ++k) {
        if (delta[k] == 0) continue;
        totals_[k].fetch_add(delta[k], std::memory_order_relaxed);
        b.v[k].fetch_add(delta[k], std::memory_order_relaxed);
      }
    }
    return read();
  }

  // The totals of the window ending at `now`.
  Values totals(core::SteadyTime now) noexcept {
    const std::int64_t idx = index_of(now);
    if (idx > head_.load(std::memory_order_acquire)) roll(idx);
    return read();
  }

  void reset() noexcept {
    std::lock_guard lock(mutex_);
    for (std::uint32_t i = 0; i < n_; ++i) retire(buckets_[i]);
  }

 private:
  struct alignas(64) Bucket {
    std::array<std::atomic<std::int64_t>, K> v{};
  };

  std::int64_t index_of(core::SteadyTime t) const noexcept { return t.time_since_epoch().count() / width_; }

  Values read() const noexcept {
    Values out{};
    for (std::size_t k = 0; k < K; ++k) out[k] = std::max<std::int64_t>(0, totals_[k].load(std::memory_order_relaxed));
    return out;
  }

  void retire(Bucket& b) noexcept {
    for (std::size_t k = 0; k < K; ++k) {
      const std::int64_t old = b.v[k].exchange(0, std::memory_order_relaxed);
      if (old != 0) totals_[k].fetch_sub(old, std::memory_order_relaxed);
    }
  }

  // Makes `idx` the newest bucket; returns the head afterwards.
  std::int64_t roll(std::int64_t idx) noexcept {
    std::lock_guard lock(mutex_);
    const std::int64_t head = head_.load(std::memory_order_relaxed);
    if (idx <= head) return head;
    const std::int64_t last = std::min<std::int64_t>(idx, head + n_);
    for (std::int64_t j = head + 1; j <= last; ++j) retire(buckets_[static_cast<std::size_t>(j % n_)]);
    head_.store(idx, std::memory_order_release);
    return idx;
  }

  const std::int64_t n_;
  const std::int64_t width_;
  const std::unique_ptr<Bucket[]> buckets_;
  alignas(64) std::atomic<std::int64_t> head_{0};
  std::array<std::atomic<std::int64_t>, K> totals_{};
  std::mutex mutex_;
};

}  // namespace mercado::resilience::detail
