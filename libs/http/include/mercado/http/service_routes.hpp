#pragma once
// The contract routes every Mercado service serves:
//   GET /health   liveness: 200 {"status":"UP","service":…,"instance":…}
//   GET /ready    readiness: 200 {"status":"READY","checks":[…]} or 503 problem+json with
//                 "checks" — and 503 once the server is draining for shutdown
//   GET /metrics  Prometheus text format 0.0.4 of the registry

#include <memory>
#include <string>

#include <mercado/http/readiness.hpp>
#include <mercado/http/server.hpp>
#include <mercado/observability/metrics.hpp>

namespace mercado::http {

struct ServiceIdentity {
  std::string service;
  std::string instance;
  std::string version = "0.1.0";
};

void add_service_routes(Server& server, ServiceIdentity identity,
                        std::shared_ptr<const Readiness> readiness,
                        obs::Registry& registry = obs::Registry::global());

}  // namespace mercado::http
