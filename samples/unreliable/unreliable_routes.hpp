#pragma once
// The chapter's unreliable service (Ejercicio 1) over HTTP:
//   GET /work          -> 200 {"result":"Success"}, or 503 problem+json "Service unavailable":
//                         the first `fail_first` calls fail (an outage), then each call
//                         fails with probability `failure_rate`
//   PUT /failure-rate  body "0.1" -> 204: changes the failure rate at run time (to show the
//                         breaker closing again once the service recovers)

#include <atomic>
#include <cstdint>

#include <mercado/http/router.hpp>
#include <mercado/resilience/random.hpp>

namespace unreliable {

struct ServiceSettings {
  double failure_rate = 0.7;    // 0..1
  std::uint64_t fail_first = 0;  // calls that fail before the failure rate applies
};

// The service's mutable state; shared by every io thread.
struct ServiceState {
  explicit ServiceState(const ServiceSettings& s)
      : failure_rate(s.failure_rate), fail_first_left(static_cast<std::int64_t>(s.fail_first)) {}
  std::atomic<double> failure_rate;
  std::atomic<std::int64_t> fail_first_left;
};

// `state` and `random` are borrowed and must outlive the router; both are used from every
// io thread.
void register_routes(mercado::http::Router& router, ServiceState& state, mercado::resilience::Random& random);

}  // namespace unreliable
