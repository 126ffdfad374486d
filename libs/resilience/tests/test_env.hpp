#pragma once
// Deterministic surroundings for resilience tests: a manual clock, seeded randomness, a
// sleeper that advances the clock instead of sleeping, a scheduler fired by hand and a
// private metrics registry.

#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <mercado/core/clock.hpp>
#include <mercado/observability/metrics.hpp>
#include <mercado/resilience/env.hpp>

namespace mercado::resilience::testing {

// Records each delay and moves the clock by it; never suspends.
class ClockSleeper final : public Sleeper {
 public:
  explicit ClockSleeper(core::ManualClock& clock) : clock_(clock) {}
  boost::asio::awaitable<void> sleep(core::Duration delay) override {
    {
      std::lock_guard lock(mutex_);
      delays_.push_back(delay);
    }
    if (delay.count() > 0) clock_.advance(delay);
    co_return;
  }
  std::vector<core::Duration> delays() const {
    std::lock_guard lock(mutex_);
    return delays_;
  }

 private:
  core::ManualClock& clock_;
  mutable std::mutex mutex_;
  std::vector<core::Duration> delays_;
};

// Keeps scheduled tasks until the test runs them.
class ManualScheduler final : public Scheduler {
 public:
  void schedule_after(core::Duration delay, std::function<void()> task) override {
    std::lock_guard lock(mutex_);
    tasks_.emplace_back(delay, std::move(task));
  }
  std::size_t pending() const {
    std::lock_guard lock(mutex_);
    return tasks_.size();
  }
  core::Duration delay_of(std::size_t i) const {
    std::lock_guard lock(mutex_);
    return tasks_.at(i).first;
  }
  // Runs the i-th pending task and removes it.
  void run(std::size_t i) {
    std::function<void()> task;
    {
      std::lock_guard lock(mutex_);
      task = std::move(tasks_.at(i).second);
      tasks_.erase(tasks_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    task();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<core::Duration, std::function<void()>>> tasks_;
};

struct TestEnv {
  core::ManualClock clock;
  obs::Registry registry;
  SeededRandom random{42};
  ClockSleeper sleeper{clock};
  ManualScheduler scheduler;

  Env env() { return Env{&clock, &registry, &random, &sleeper, &scheduler}; }

  // A counter labelled only by `name` (retry_attempts_total, bulkhead_rejected_total, ...).
  std::uint64_t counter(const std::string& family, std::string_view name) {
    return registry.counter(family, "", {"name"}).with({name}).value();
  }
  std::uint64_t calls(const std::string& breaker, std::string_view outcome) {
    return registry.counter("circuit_breaker_calls_total", "", {"name", "outcome"}).with({breaker, outcome}).value();
  }
  double state_gauge(const std::string& breaker) {
    return registry.gauge("circuit_breaker_state", "", {"name"}).with({breaker}).value();
  }
};

}  // namespace mercado::resilience::testing
