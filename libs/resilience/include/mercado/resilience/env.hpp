#pragma once
// The side effects every resilience policy uses, injected (after leveldb's Env): time,
// randomness, waiting, deferred work and the metrics registry. Tests pass a
// core::ManualClock, a SeededRandom, a Sleeper that advances the clock and a private
// obs::Registry; production code takes the defaults.
//
// Ownership: every pointer is borrowed and must outlive the policies built with it.

#include <mercado/core/clock.hpp>
#include <mercado/observability/metrics.hpp>
#include <mercado/resilience/random.hpp>
#include <mercado/resilience/scheduler.hpp>
#include <mercado/resilience/sleeper.hpp>

namespace mercado::resilience {

struct Env {
  const core::Clock* clock = &core::SystemClock::instance();
  obs::Registry* metrics = &obs::Registry::global();
  Random* random = &default_random();
  Sleeper* sleeper = &AsioSleeper::instance();
  // Needed only by breakers configured with automatic_transition_to_half_open.
  Scheduler* scheduler = nullptr;
};

}  // namespace mercado::resilience
