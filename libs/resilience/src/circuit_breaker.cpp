#include <mercado/resilience/circuit_breaker.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <vector>

#include <mercado/observability/log.hpp>

#include "count_window.hpp"
#include "time_buckets.hpp"

namespace mercado::resilience {

std::string_view to_string(CircuitState state) noexcept {
  switch (state) {
    case CircuitState::closed: return "CLOSED";
    case CircuitState::open: return "OPEN";
    case CircuitState::half_open: return "HALF_OPEN";
    case CircuitState::disabled: return "DISABLED";
    case CircuitState::forced_open: return "FORCED_OPEN";
    case CircuitState::metrics_only: return "METRICS_ONLY";
  }
  return "UNKNOWN";
}

namespace {

// The breaker's state word: a generation that grows with every transition, and the state.
// A permit carries the word it was issued under, so a result can tell whether the state
// it was admitted in is still the current one.
constexpr std::uint64_t make_word(std::uint64_t generation, CircuitState s) noexcept {
  return generation << 8 | static_cast<std::uint8_t>(s);
}
constexpr CircuitState state_of(std::uint64_t word) noexcept { return static_cast<CircuitState>(word & 0xFFU); }
constexpr std::uint64_t generation_of(std::uint64_t word) noexcept { return word >> 8; }

// HALF_OPEN trial slots: the low 32 bits of the generation they belong to, and how many
// are left. Packed into one word so a slot is never taken from another generation.
constexpr std::uint64_t make_slots(std::uint64_t word, std::uint32_t left) noexcept {
  return (generation_of(word) & 0xFFFFFFFFU) << 32 | left;
}
constexpr bool slots_match(std::uint64_t slots, std::uint64_t word) noexcept {
  return (slots >> 32) == (generation_of(word) & 0xFFFFFFFFU);
}
constexpr std::uint32_t slots_left(std::uint64_t slots) noexcept { return static_cast<std::uint32_t>(slots); }

enum CallIndex : std::size_t { kSuccess = 0, kFailure = 1, kIgnored = 2, kNotPermitted = 3 };

void validate(const CircuitBreakerConfig& c, const Env& env) {
  auto bad = [](const char* what) { throw std::invalid_argument(std::string("circuit breaker: ") + what); };
  if (c.model == BreakerModel::consecutive) {
    if (c.failure_threshold == 0) bad("failure_threshold must be >= 1");
    if (c.success_threshold == 0) bad("success_threshold must be >= 1");
  } else {
    if (!(c.failure_rate_threshold > 0.0F && c.failure_rate_threshold <= 100.0F)) bad("failure_rate_threshold must be in (0, 100]");
    if (!(c.slow_call_rate_threshold > 0.0F && c.slow_call_rate_threshold <= 100.0F)) bad("slow_call_rate_threshold must be in (0, 100]");
    if (c.sliding_window_size == 0) bad("sliding_window_size must be >= 1");
    if (c.minimum_number_of_calls == 0) bad("minimum_number_of_calls must be >= 1");
    if (c.permitted_calls_in_half_open == 0) bad("permitted_calls_in_half_open must be >= 1");
  }
  if (c.wait_in_open.count() < 0) bad("wait_in_open must be >= 0");
  if (c.slow_call_duration_threshold.count() <= 0) bad("slow_call_duration_threshold must be > 0");
  if (c.automatic_transition_to_half_open && env.scheduler == nullptr) {
    bad("automatic_transition_to_half_open needs Env::scheduler");
  }
  if (env.clock == nullptr || env.metrics == nullptr) bad("Env::clock and Env::metrics are required");
}

}  // namespace

struct CircuitBreaker::Impl {
  // Lets a scheduled automatic transition find out whether the breaker still exists.
  struct Liveness {
    std::mutex mutex;
    Impl* self = nullptr;
  };

  // --- hot: read or written by calls in CLOSED
  alignas(64) std::atomic<std::uint64_t> word{make_word(0, CircuitState::closed)};
  alignas(64) std::atomic<std::uint32_t> consecutive_failures{0};
  std::atomic<std::uint64_t> half_open_slots{0};
  std::atomic<std::int64_t> open_until_ns{0};

  const std::string name;
  const CircuitBreakerConfig cfg;
  const Env env;
  const std::uint64_t min_calls;       // minimum calls, clamped for count windows
  const std::uint32_t half_open_calls;  // trial calls admitted in HALF_OPEN
  std::unique_ptr<detail::CountWindow> count_window;
  std::unique_ptr<detail::TimeBuckets<3>> time_window;
  std::array<obs::Counter*, 4> calls{};
  obs::Gauge* state_gauge = nullptr;

  // --- cold: guarded by mutex
  std::mutex mutex;
  std::vector<Listener> listeners;
  std::uint32_t half_open_recorded = 0;
  std::uint32_t half_open_failures = 0;
  std::uint32_t half_open_slow = 0;
  std::uint32_t half_open_successes = 0;
  std::shared_ptr<Liveness> liveness = std::make_shared<Liveness>();

  Impl(std::string n, const CircuitBreakerConfig& c, const Env& e)
      : name(std::move(n)),
        cfg(c),
        env(e),
        min_calls(c.sliding_window_type == SlidingWindowType::count_based
                      ? std::min(c.minimum_number_of_calls, c.sliding_window_size)
                      : c.minimum_number_of_calls),
        half_open_calls(c.model == BreakerModel::consecutive ? c.success_threshold : c.permitted_calls_in_half_open) {
    liveness->self = this;
    if (cfg.model == BreakerModel::rate) {
      if (cfg.sliding_window_type == SlidingWindowType::count_based) {
        count_window = std::make_unique<detail::CountWindow>(cfg.sliding_window_size);
      } else {
        time_window = std::make_unique<detail::TimeBuckets<3>>(cfg.sliding_window_size, std::chrono::seconds(1),
                                                               env.clock->now());
      }
    }
    auto& family = env.metrics->counter("circuit_breaker_calls_total",
                                        "Calls through a circuit breaker by outcome", {"name", "outcome"});
    calls[kSuccess] = &family.with({name, "success"});
    calls[kFailure] = &family.with({name, "failure"});
    calls[kIgnored] = &family.with({name, "ignored"});
    calls[kNotPermitted] = &family.with({name, "not_permitted"});
    state_gauge = &env.metrics
                       ->gauge("circuit_breaker_state",
                               "Circuit breaker state: 0 CLOSED, 1 OPEN, 2 HALF_OPEN, 3 DISABLED, 4 FORCED_OPEN, "
                               "5 METRICS_ONLY",
                               {"name"})
                       .with({name});
    state_gauge->set(0);
  }

  ~Impl() {
    std::lock_guard lock(liveness->mutex);
    liveness->self = nullptr;
  }

  CircuitPermit reject(std::uint64_t w) noexcept {
    calls[kNotPermitted]->inc();
    return {w, false};
  }

  bool rate_exceeded(const detail::WindowCounts& c, std::uint64_t minimum) const noexcept {
    if (c.calls == 0 || c.calls < minimum) return false;
    const double n = static_cast<double>(c.calls);
    return static_cast<double>(c.failures) * 100.0 >= static_cast<double>(cfg.failure_rate_threshold) * n ||
           static_cast<double>(c.slow) * 100.0 >= static_cast<double>(cfg.slow_call_rate_threshold) * n;
  }

  std::string rate_reason(const detail::WindowCounts& c) const {
    const double n = static_cast<double>(c.calls);
    const double fr = 100.0 * static_cast<double>(c.failures) / n;
    const double sr = 100.0 * static_cast<double>(c.slow) / n;
    return fmt::format("failure rate {:.1f}% (threshold {:.1f}%), slow-call rate {:.1f}% (threshold {:.1f}%) over {} calls",
                       fr, static_cast<double>(cfg.failure_rate_threshold), sr,
                       static_cast<double>(cfg.slow_call_rate_threshold), c.calls);
  }

  detail::WindowCounts window_counts() const noexcept {
    if (count_window) return count_window->counts();
    if (time_window) {
      auto t = time_window->totals(env.clock->now());
      return {static_cast<std::uint64_t>(t[0]), static_cast<std::uint64_t>(t[1]), static_cast<std::uint64_t>(t[2])};
    }
    return {};
  }

  void reset_counts() noexcept {
    consecutive_failures.store(0, std::memory_order_relaxed);
    if (count_window) count_window->reset();
    if (time_window) time_window->reset();
  }

  // Moves from `expected` to `to` unless another transition got there first.
  void transition(std::uint64_t expected, CircuitState to, std::string_view reason) {
    std::lock_guard lock(mutex);
    if (word.load(std::memory_order_relaxed) != expected) return;
    enter(expected, to, reason);
  }

  // Requires `mutex`. Prepares the new state's data, then publishes the new word.
  void enter(std::uint64_t current, CircuitState to, std::string_view reason) {
    const CircuitState from = state_of(current);
    const std::uint64_t next = make_word(generation_of(current) + 1, to);
    switch (to) {
      case CircuitState::closed:
      case CircuitState::metrics_only:
        reset_counts();
        break;
      case CircuitState::open:
        open_until_ns.store((env.clock->now() + cfg.wait_in_open).time_since_epoch().count(),
                            std::memory_order_relaxed);
        break;
      case CircuitState::half_open:
        half_open_recorded = half_open_failures = half_open_slow = half_open_successes = 0;
        half_open_slots.store(make_slots(next, half_open_calls), std::memory_order_relaxed);
        break;
      case CircuitState::disabled:
      case CircuitState::forced_open:
        break;
    }
    word.store(next, std::memory_order_release);
    state_gauge->set(static_cast<double>(static_cast<std::uint8_t>(to)));

    const log::Fields fields = {{"breaker", name}, {"from", to_string(from)}, {"to", to_string(to)}, {"reason", reason}};
    if (to == CircuitState::open || to == CircuitState::forced_open) {
      log::warn("circuit breaker state transition", fields);
    } else {
      log::info("circuit breaker state transition", fields);
    }
    const StateTransition t{name, from, to, reason};
    for (const auto& l : listeners) l(t);

    if (to == CircuitState::open && cfg.automatic_transition_to_half_open) {
      env.scheduler->schedule_after(cfg.wait_in_open, [live = liveness, next] {
        std::lock_guard guard(live->mutex);
        if (live->self != nullptr) live->self->transition(next, CircuitState::half_open, "wait in OPEN elapsed (automatic)");
      });
    }
  }

  // CLOSED and METRICS_ONLY: lock-free unless the outcome opens the breaker.
  void record(std::uint64_t w, bool failure, bool slow) noexcept {
    if (cfg.model == BreakerModel::consecutive) {
      if (!failure) {
        if (consecutive_failures.load(std::memory_order_relaxed) != 0) {
          consecutive_failures.store(0, std::memory_order_relaxed);
        }
        return;
      }
      const std::uint32_t n = consecutive_failures.fetch_add(1, std::memory_order_relaxed) + 1;
      if (n >= cfg.failure_threshold && state_of(w) == CircuitState::closed) {
        transition(w, CircuitState::open, fmt::format("{} consecutive failures", n));
      }
      return;
    }
    detail::WindowCounts c;
    if (count_window) {
      c = count_window->record(failure, slow);
    } else {
      auto t = time_window->add(env.clock->now(), {1, failure ? 1 : 0, slow ? 1 : 0});
      c = {static_cast<std::uint64_t>(t[0]), static_cast<std::uint64_t>(t[1]), static_cast<std::uint64_t>(t[2])};
    }
    if (state_of(w) == CircuitState::closed && rate_exceeded(c, min_calls)) {
      transition(w, CircuitState::open, rate_reason(c));
    }
  }

  void release_slot(std::uint64_t w) noexcept {
    std::uint64_t s = half_open_slots.load(std::memory_order_relaxed);
    while (slots_match(s, w) &&
           !half_open_slots.compare_exchange_weak(s, s + 1, std::memory_order_acq_rel, std::memory_order_relaxed)) {
    }
  }

  void record_half_open(std::uint64_t w, Outcome outcome, bool slow) {
    std::lock_guard lock(mutex);
    if (word.load(std::memory_order_relaxed) != w) return;
    if (outcome == Outcome::ignored) {
      release_slot(w);
      return;
    }
    const bool failure = outcome == Outcome::failure;
    if (cfg.model == BreakerModel::consecutive) {
      if (failure) {
        enter(w, CircuitState::open, "failure in HALF_OPEN");
      } else if (++half_open_successes >= cfg.success_threshold) {
        enter(w, CircuitState::closed, fmt::format("{} consecutive successes in HALF_OPEN", half_open_successes));
      }
      return;
    }
    ++half_open_recorded;
    half_open_failures += failure ? 1 : 0;
    half_open_slow += slow ? 1 : 0;
    if (half_open_recorded < half_open_calls) return;
    const detail::WindowCounts c{half_open_recorded, half_open_failures, half_open_slow};
    enter(w, rate_exceeded(c, half_open_calls) ? CircuitState::open : CircuitState::closed,
          "trial calls in HALF_OPEN: " + rate_reason(c));
  }
};

CircuitBreaker::CircuitBreaker(std::string name, CircuitBreakerConfig config, Env env) {
  validate(config, env);
  impl_ = std::make_unique<Impl>(std::move(name), config, env);
}

CircuitBreaker::~CircuitBreaker() = default;

CircuitPermit CircuitBreaker::try_acquire() noexcept {
  Impl& im = *impl_;
  for (;;) {
    const std::uint64_t w = im.word.load(std::memory_order_acquire);
    switch (state_of(w)) {
      case CircuitState::closed:
      case CircuitState::disabled:
      case CircuitState::metrics_only:
        return {w, true};
      case CircuitState::forced_open:
        return im.reject(w);
      case CircuitState::open:
        if (im.env.clock->now().time_since_epoch().count() < im.open_until_ns.load(std::memory_order_relaxed)) {
          return im.reject(w);
        }
        im.transition(w, CircuitState::half_open, "wait in OPEN elapsed");
        continue;  // decide again in the state we are in now
      case CircuitState::half_open: {
        std::uint64_t s = im.half_open_slots.load(std::memory_order_acquire);
        for (;;) {
          if (!slots_match(s, w) || slots_left(s) == 0) return im.reject(w);
          if (im.half_open_slots.compare_exchange_weak(s, s - 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
            return {w, true};
          }
        }
      }
    }
    return im.reject(w);
  }
}

void CircuitBreaker::on_result(const CircuitPermit& permit, Outcome outcome, core::Duration elapsed) noexcept {
  if (!permit.permitted_) return;
  Impl& im = *impl_;
  im.calls[static_cast<std::size_t>(outcome)]->inc();
  const bool slow = elapsed >= im.cfg.slow_call_duration_threshold;
  switch (permit.state()) {
    case CircuitState::closed:
    case CircuitState::metrics_only:
      if (outcome == Outcome::ignored) return;
      if (im.word.load(std::memory_order_acquire) != permit.word_) return;  // admitted before a transition
      im.record(permit.word_, outcome == Outcome::failure, slow);
      return;
    case CircuitState::half_open:
      im.record_half_open(permit.word_, outcome, slow);
      return;
    case CircuitState::open:
    case CircuitState::disabled:
    case CircuitState::forced_open:
      return;
  }
}

CircuitState CircuitBreaker::state() const noexcept { return state_of(impl_->word.load(std::memory_order_acquire)); }

CircuitBreakerSnapshot CircuitBreaker::snapshot() const {
  Impl& im = *impl_;
  std::lock_guard lock(im.mutex);
  const std::uint64_t w = im.word.load(std::memory_order_acquire);
  CircuitBreakerSnapshot s;
  s.state = state_of(w);
  s.consecutive_failures = im.consecutive_failures.load(std::memory_order_relaxed);
  if (s.state == CircuitState::half_open) {
    const std::uint64_t slots = im.half_open_slots.load(std::memory_order_relaxed);
    s.half_open_permits_left = slots_match(slots, w) ? slots_left(slots) : 0;
    s.consecutive_successes = im.half_open_successes;
  }
  if (im.cfg.model == BreakerModel::rate) {
    detail::WindowCounts c;
    std::uint64_t minimum = im.min_calls;
    if (s.state == CircuitState::half_open) {
      c = {im.half_open_recorded, im.half_open_failures, im.half_open_slow};
      minimum = im.half_open_calls;
    } else {
      c = im.window_counts();
    }
    s.calls = c.calls;
    s.failed_calls = c.failures;
    s.slow_calls = c.slow;
    if (c.calls > 0 && c.calls >= minimum) {
      s.failure_rate = static_cast<float>(100.0 * static_cast<double>(c.failures) / static_cast<double>(c.calls));
      s.slow_call_rate = static_cast<float>(100.0 * static_cast<double>(c.slow) / static_cast<double>(c.calls));
    }
  }
  return s;
}

void CircuitBreaker::transition_to(CircuitState target) {
  Impl& im = *impl_;
  std::lock_guard lock(im.mutex);
  const std::uint64_t w = im.word.load(std::memory_order_relaxed);
  if (state_of(w) == target) return;
  im.enter(w, target, "manual transition");
}

void CircuitBreaker::reset() {
  Impl& im = *impl_;
  std::lock_guard lock(im.mutex);
  im.enter(im.word.load(std::memory_order_relaxed), CircuitState::closed, "reset");
}

void CircuitBreaker::add_listener(Listener listener) {
  std::lock_guard lock(impl_->mutex);
  impl_->listeners.push_back(std::move(listener));
}

const std::string& CircuitBreaker::name() const noexcept { return impl_->name; }
const CircuitBreakerConfig& CircuitBreaker::config() const noexcept { return impl_->cfg; }

}  // namespace mercado::resilience
