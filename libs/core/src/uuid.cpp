#include <mercado/core/uuid.hpp>

#include <pthread.h>
#include <sys/random.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include <boost/uuid/uuid.hpp>
#include <boost/uuid/uuid_io.hpp>

namespace mercado::core {

namespace {

// Bumped in a forked child: its buffers (copies of the parent's) are never used again.
std::atomic<unsigned> fork_generation{0};

// Random bytes from the kernel (getrandom), fetched 512 at a time: one system call per
// fifty ids instead of one per id (Boost's random_generator asks for every id). Each byte
// is handed out once.
class RandomBytes {
 public:
  void take(unsigned char* out, std::size_t n) {
    const unsigned generation = fork_generation.load(std::memory_order_relaxed);
    if (generation != generation_ || used_ + n > bytes_.size()) refill(generation);
    std::memcpy(out, bytes_.data() + used_, n);
    std::memset(bytes_.data() + used_, 0, n);
    used_ += n;
  }

 private:
  void refill(unsigned generation) {
    for (std::size_t got = 0; got < bytes_.size();) {
      ssize_t r = ::getrandom(bytes_.data() + got, bytes_.size() - got, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        std::abort();  // no kernel randomness: nothing sensible to hand out
      }
      got += static_cast<std::size_t>(r);
    }
    used_ = 0;
    generation_ = generation;
  }

  std::array<unsigned char, 512> bytes_{};
  std::size_t used_ = bytes_.size();
  unsigned generation_ = 0;
};

}  // namespace

std::string new_uuid() {
  static const int at_fork = ::pthread_atfork(nullptr, nullptr, [] { fork_generation.fetch_add(1); });
  (void)at_fork;
  thread_local RandomBytes random;
  boost::uuids::uuid id{};
  random.take(id.data + 6, 10);  // 74 of these 80 bits stay random
  const auto ms = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
  for (int i = 0; i < 6; ++i) id.data[i] = static_cast<std::uint8_t>(ms >> (8 * (5 - i)));
  id.data[6] = static_cast<std::uint8_t>(0x70 | (id.data[6] & 0x0F));  // version 7
  id.data[8] = static_cast<std::uint8_t>(0x80 | (id.data[8] & 0x3F));  // variant 10 (RFC 9562)
  return boost::uuids::to_string(id);
}

}  // namespace mercado::core
