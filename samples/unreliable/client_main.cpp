// unreliable-client: Ejercicio 1's client. Calls GET /work of an unreliable service through
// the chapter's circuit breaker and prints every transition and the outcome counts.
#include <CLI/CLI.hpp>

#include <iostream>

#include <mercado/observability/log.hpp>

#include "exercise.hpp"

int main(int argc, char** argv) {
  namespace resilience = mercado::resilience;
  CLI::App cli("Calls an unreliable service through a circuit breaker and shows what the breaker does");
  unreliable::ExerciseOptions o;
  std::string model = "consecutive";
  unsigned failure_threshold = 5, success_threshold = 3, interval_ms = 100;
  double timeout_s = 2.0;
  std::string log_level = "off";
  cli.add_option("--url", o.base_url, "Base URL of unreliable-service")->required()->envname("UNRELIABLE_URL");
  cli.add_option("--calls", o.calls, "Number of calls (default 100)")->check(CLI::PositiveNumber);
  cli.add_option("--interval-ms", interval_ms, "Milliseconds between calls (default 100)");
  cli.add_option("--model", model, "consecutive (the chapter's) or rate (resilience4j's)")
      ->check(CLI::IsMember({"consecutive", "rate"}));
  cli.add_option("--failure-threshold", failure_threshold, "Consecutive failures that open (default 5)");
  cli.add_option("--timeout", timeout_s, "Seconds in OPEN before a trial (default 2)");
  cli.add_option("--success-threshold", success_threshold, "Consecutive trial successes that close (default 3)");
  cli.add_option("--log-level", log_level, "JSON log lines on stderr: info shows one per transition (default off)");
  CLI11_PARSE(cli, argc, argv);

  mercado::log::init({.service = "unreliable-client",
                      .level = mercado::log::parse_level(log_level).value_or(mercado::log::Level::off),
                      .path = "/dev/stderr"});
  o.interval = std::chrono::milliseconds(interval_ms);
  const auto timeout = std::chrono::duration_cast<mercado::core::Duration>(std::chrono::duration<double>(timeout_s));
  if (model == "consecutive") {
    o.breaker = resilience::CircuitBreakerConfig::consecutive(failure_threshold, timeout, success_threshold);
  } else {
    o.breaker = {};
    o.breaker.sliding_window_size = 10;
    o.breaker.minimum_number_of_calls = 10;
    o.breaker.permitted_calls_in_half_open = success_threshold;
    o.breaker.wait_in_open = timeout;
  }
  mercado::obs::Registry metrics;
  unreliable::run_exercise(o, metrics, std::cout);
  return 0;
}
