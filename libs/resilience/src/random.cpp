#include <mercado/resilience/random.hpp>

#include <random>

namespace mercado::resilience {

double SeededRandom::next_unit() noexcept {
  // SplitMix64 (Steele, Lea, Flood 2014): a Weyl sequence through a bijective mixer.
  std::uint64_t z = state_.fetch_add(0x9E3779B97F4A7C15ULL, std::memory_order_relaxed) + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  z ^= z >> 31;
  return static_cast<double>(z >> 11) * 0x1.0p-53;  // the top 53 bits: uniform in [0, 1)
}

Random& default_random() noexcept {
  static SeededRandom* const instance = [] {
    std::random_device device;
    const std::uint64_t seed = (static_cast<std::uint64_t>(device()) << 32) ^ device();
    return new SeededRandom(seed);
  }();
  return *instance;
}

}  // namespace mercado::resilience
