#pragma once
// Randomness behind an interface, so that jittered backoff is reproducible in tests.

#include <atomic>
#include <cstdint>

namespace mercado::resilience {

// Thread-safe: implementations may be called concurrently.
class Random {
 public:
  virtual ~Random() = default;
  // A uniformly distributed number in [0, 1).
  virtual double next_unit() noexcept = 0;
};

// SplitMix64 over an atomic counter: lock-free and thread-safe; one thread calling it
// sees the same sequence for the same seed.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(std::uint64_t seed) noexcept : state_(seed) {}
  double next_unit() noexcept override;

 private:
  std::atomic<std::uint64_t> state_;
};

// The process-wide generator, seeded once from std::random_device. Never destroyed.
Random& default_random() noexcept;

}  // namespace mercado::resilience
