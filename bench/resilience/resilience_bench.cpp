// Overhead per call of the circuit breaker (CLOSED) and of the whole pipeline, against a
// bare call, on 1 and 2 threads, with heap allocations counted per call.
//
// "Bare" is the same downstream stand-in without any policy: a non-inlined function (for
// the breaker) or a co_awaited coroutine (for the pipeline). Allocations are counted by
// interposing the C allocator (a thread-local counter), so a figure of 0 means no call to
// the heap at all on the measured path.
#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <cerrno>

#include <mercado/resilience/circuit_breaker.hpp>
#include <mercado/resilience/pipeline.hpp>
#include <mercado/resilience/token_bucket.hpp>

// Every heap allocation of the process goes through the C allocator (operator new, and
// Asio's recycling allocator for coroutine frames, which calls aligned_alloc directly).
// These definitions interpose glibc's and count the calls per thread.
namespace {
thread_local std::uint64_t t_allocations = 0;
}

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* __libc_memalign(std::size_t, std::size_t);
void __libc_free(void*);

void* malloc(std::size_t n) {
  ++t_allocations;
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  ++t_allocations;
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  ++t_allocations;
  return __libc_realloc(p, n);
}
void* aligned_alloc(std::size_t align, std::size_t n) {
  ++t_allocations;
  return __libc_memalign(align, n);
}
void* memalign(std::size_t align, std::size_t n) {
  ++t_allocations;
  return __libc_memalign(align, n);
}
int posix_memalign(void** out, std::size_t align, std::size_t n) {
  ++t_allocations;
  void* p = __libc_memalign(align, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
void free(void* p) { __libc_free(p); }
}

namespace {

namespace asio = boost::asio;
namespace http = mercado::http;
namespace res = mercado::resilience;
using namespace std::chrono_literals;

// Reports heap allocations per iteration, summed over the benchmark's threads.
class AllocationCounter {
 public:
  explicit AllocationCounter(benchmark::State& state) : state_(state), start_(t_allocations) {}
  ~AllocationCounter() {
    state_.counters["allocs/op"] =
        benchmark::Counter(static_cast<double>(t_allocations - start_), benchmark::Counter::kAvgIterations);
  }

 private:
  benchmark::State& state_;
  std::uint64_t start_;
};

// The downstream stand-in: opaque to the optimiser, costs a function call.
[[gnu::noinline]] res::Outcome downstream(std::int64_t i) {
  benchmark::DoNotOptimize(i);
  return res::Outcome::success;
}

res::Env bench_env() {
  static mercado::obs::Registry registry;
  res::Env env;
  env.metrics = &registry;
  return env;
}

// --- the breaker alone ------------------------------------------------------------------

void BM_BareCall(benchmark::State& state) {
  AllocationCounter allocations(state);
  std::int64_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(downstream(++i));
}
BENCHMARK(BM_BareCall)->Threads(1)->Threads(2);

// What one read of the process clock costs here (the time-based window and the pipeline
// read it; the count-based breaker does not).
void BM_ClockNow(benchmark::State& state) {
  AllocationCounter allocations(state);
  const mercado::core::Clock& clock = mercado::core::SystemClock::instance();
  for (auto _ : state) benchmark::DoNotOptimize(clock.now());
}
BENCHMARK(BM_ClockNow)->Threads(1)->Threads(2);

// `failure_every`: 0 for a healthy downstream, else every n-th call fails.
template <class MakeConfig>
void run_breaker(benchmark::State& state, MakeConfig make, std::int64_t failure_every = 0) {
  // Thread 0 sets up; the start of the timed loop is a barrier for every thread.
  static std::unique_ptr<res::CircuitBreaker> breaker;
  if (state.thread_index() == 0) breaker = std::make_unique<res::CircuitBreaker>("bench", make(), bench_env());
  AllocationCounter allocations(state);
  std::int64_t i = 0;
  for (auto _ : state) {
    const res::CircuitPermit permit = breaker->try_acquire();
    res::Outcome outcome = downstream(++i);
    if (failure_every != 0 && i % failure_every == 0) outcome = res::Outcome::failure;
    breaker->on_result(permit, outcome, 1ms);
  }
  if (breaker->state() != res::CircuitState::closed) state.SkipWithError("the breaker left CLOSED");
}

void BM_BreakerClosed_RateCountWindow(benchmark::State& state) {
  run_breaker(state, [] { return res::CircuitBreakerConfig{}; });  // resilience4j defaults
}
BENCHMARK(BM_BreakerClosed_RateCountWindow)->Threads(1)->Threads(2);

// One failure in 100 calls: the window always holds a failure, so every call writes a slot.
void BM_BreakerClosed_RateCountWindow_1pcFailures(benchmark::State& state) {
  run_breaker(state, [] { return res::CircuitBreakerConfig{}; }, 100);
}
BENCHMARK(BM_BreakerClosed_RateCountWindow_1pcFailures)->Threads(1)->Threads(2);

void BM_BreakerClosed_Consecutive(benchmark::State& state) {
  run_breaker(state, [] { return res::CircuitBreakerConfig::consecutive(); });
}
BENCHMARK(BM_BreakerClosed_Consecutive)->Threads(1)->Threads(2);

void BM_BreakerClosed_RateTimeWindow(benchmark::State& state) {
  run_breaker(state, [] {
    res::CircuitBreakerConfig c;
    c.sliding_window_type = res::SlidingWindowType::time_based;
    c.sliding_window_size = 60;
    return c;
  });
}
BENCHMARK(BM_BreakerClosed_RateTimeWindow)->Threads(1)->Threads(2);

// --- the whole pipeline ------------------------------------------------------------------

asio::awaitable<http::ClientResult> fake_attempt(mercado::core::SteadyTime deadline) {
  benchmark::DoNotOptimize(deadline);
  http::ClientResult r{std::in_place};
  r->status = 200;
  co_return r;
}

// Runs the timed loop inside one coroutine on this thread's own io_context; each iteration
// co_awaits the awaitable that `make()` returns (no extra coroutine frame per iteration).
template <class Make>
void run_in_coroutine(benchmark::State& state, Make make) {
  asio::io_context ctx(1);
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    AllocationCounter allocations(state);
    for (auto _ : state) {
      auto r = co_await make();
      benchmark::DoNotOptimize(r);
    }
  }, asio::detached);
  ctx.run();
}

void BM_BareCoroutineCall(benchmark::State& state) {
  run_in_coroutine(state, [] { return fake_attempt(mercado::core::SteadyTime{}); });
}
BENCHMARK(BM_BareCoroutineCall)->Threads(1)->Threads(2);

void BM_Pipeline(benchmark::State& state) {
  static std::unique_ptr<res::Pipeline> pipeline;
  if (state.thread_index() == 0) {
    res::PipelineConfig c;  // breaker (rate, count window), retry + budget, bulkhead: the defaults
    pipeline = std::make_unique<res::Pipeline>("bench", c, bench_env());
  }
  auto attempt = [](mercado::core::SteadyTime d) { return fake_attempt(d); };
  run_in_coroutine(state, [&] { return pipeline->execute(res::CallSpec{.replay_safe = true}, attempt); });
}
BENCHMARK(BM_Pipeline)->Threads(1)->Threads(2);

// --- the rate limiter the gateway will reuse ----------------------------------------------

void BM_TokenBucket(benchmark::State& state) {
  static std::unique_ptr<res::TokenBucket> bucket;
  if (state.thread_index() == 0) {
    bucket = std::make_unique<res::TokenBucket>(
        res::TokenBucketConfig{.capacity = 1'000'000'000, .refill_tokens = 1'000'000'000, .refill_period = 1s});
  }
  AllocationCounter allocations(state);
  for (auto _ : state) benchmark::DoNotOptimize(bucket->try_acquire());
}
BENCHMARK(BM_TokenBucket)->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();
