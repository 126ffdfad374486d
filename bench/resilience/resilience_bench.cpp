// Overhead per call of the circuit breaker (CLOSED) and of the whole pipeline, against a
// bare call, on 1 and 2 threads, with heap allocations counted per call.
//
// "Bare" is the same downstream stand-in without any policy: a non-inlined function (for
// the breaker) or a co_awaited coroutine (for the pipeline). Allocations are counted by
// replacing the global operator new (a thread-local counter), so a figure of 0 means no
// call to the heap at all on the measured path.
#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>

#include <mercado/resilience/circuit_breaker.hpp>
#include <mercado/resilience/pipeline.hpp>
#include <mercado/resilience/token_bucket.hpp>

namespace {
thread_local std::uint64_t t_allocations = 0;
}

void* operator new(std::size_t n) {
  ++t_allocations;
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  ++t_allocations;
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept { return ::operator new(n, t); }
void* operator new(std::size_t n, std::align_val_t a) {
  ++t_allocations;
  const auto align = static_cast<std::size_t>(a);
  if (void* p = std::aligned_alloc(align, (std::max<std::size_t>(n, 1) + align - 1) / align * align)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) { return ::operator new(n, a); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

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

// Runs the timed loop inside one coroutine on this thread's own io_context.
template <class Body>
void run_in_coroutine(benchmark::State& state, Body body) {
  asio::io_context ctx(1);
  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    AllocationCounter allocations(state);
    for (auto _ : state) co_await body();
  }, asio::detached);
  ctx.run();
}

void BM_BareCoroutineCall(benchmark::State& state) {
  run_in_coroutine(state, []() -> asio::awaitable<void> {
    auto r = co_await fake_attempt(mercado::core::SteadyTime{});
    benchmark::DoNotOptimize(r);
  });
}
BENCHMARK(BM_BareCoroutineCall)->Threads(1)->Threads(2);

void BM_Pipeline(benchmark::State& state) {
  static std::unique_ptr<res::Pipeline> pipeline;
  if (state.thread_index() == 0) {
    res::PipelineConfig c;  // breaker (rate, count window), retry + budget, bulkhead: the defaults
    pipeline = std::make_unique<res::Pipeline>("bench", c, bench_env());
  }
  auto attempt = [](mercado::core::SteadyTime d) { return fake_attempt(d); };
  run_in_coroutine(state, [&]() -> asio::awaitable<void> {
    auto r = co_await pipeline->execute(res::CallSpec{.replay_safe = true}, attempt);
    benchmark::DoNotOptimize(r);
  });
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
