#pragma once
// Which of a few per-thread shards the calling thread writes to, so counters updated on
// every call from several threads do not share a cache line. Threads are spread
// round-robin in the order they first ask.

#include <atomic>
#include <cstddef>

namespace mercado::resilience::detail {

inline constexpr std::size_t kThreadShards = 4;

inline std::size_t thread_shard() noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t shard = next.fetch_add(1, std::memory_order_relaxed) % kThreadShards;
  return shard;
}

}  // namespace mercado::resilience::detail
