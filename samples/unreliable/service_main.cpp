// unreliable-service: the chapter's unreliable service (Ejercicio 1) as a Mercado service.
#include <memory>

#include <mercado/resilience/random.hpp>
#include <mercado/service/app.hpp>

#include "unreliable_routes.hpp"

int main(int argc, char** argv) {
  mercado::service::App app("unreliable-service", "Answers GET /work, failing a share of the calls with 503");
  unreliable::ServiceSettings settings;
  std::uint64_t seed = 0;
  app.config().cli().add_option("--failure-rate", settings.failure_rate, "Share of calls that fail (0..1, default 0.7)")
      ->envname("FAILURE_RATE")
      ->check(CLI::Range(0.0, 1.0));
  app.config().cli().add_option("--fail-first", settings.fail_first, "Calls that fail before --failure-rate applies (default 0)")
      ->envname("FAIL_FIRST");
  app.config().cli().add_option("--seed", seed, "Seed for the failures (0: random)")->envname("SEED");
  if (auto rc = app.init(argc, argv)) return *rc;
  std::unique_ptr<mercado::resilience::SeededRandom> seeded;
  mercado::resilience::Random* random = &mercado::resilience::default_random();
  if (seed != 0) {
    seeded = std::make_unique<mercado::resilience::SeededRandom>(seed);
    random = seeded.get();
  }
  unreliable::ServiceState state(settings);
  unreliable::register_routes(app.router(), state, *random);
  return app.run();
}
