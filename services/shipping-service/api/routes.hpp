#pragma once
// shipping-service HTTP API (internal: every endpoint takes a service token).
//   POST   /shipments {order_id, address} -> 201 {id, order_id, address, status}
//          422 shipping-refused for a region we do not ship to; Idempotency-Key supported,
//          and one shipment per order anyway (the same order id again: the shipment if the
//          address is the same, else 409)
//   DELETE /shipments/{id}               -> 200 {.. status: CANCELLED} (idempotent), 404
//   GET    /shipments/{id}               -> 200, 404

#include <string>
#include <vector>

#include <mercado/http/openapi.hpp>
#include <mercado/service/backend.hpp>
#include <mercado/service/security.hpp>

namespace shipping::api {

struct Settings {
  std::vector<std::string> blocked_regions;
};

void register_routes(mercado::service::App& app, mercado::service::Backend& backend, mercado::service::Security& security,
                     const Settings& settings, mercado::http::OpenApi& openapi);

}  // namespace shipping::api
