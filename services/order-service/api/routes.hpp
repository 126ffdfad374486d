#pragma once
// order-service HTTP API.
//   POST /orders {customer_id, items:[{product_id, quantity}], address}
//        -> 202 {id, status: "PENDING", customer_id, items (priced), total, ...}; the saga
//        runs in the background. The bearer token's subject must be customer_id (or a
//        service). Idempotency-Key: the same key for the same customer is the same order.
//        400 listing every bad field; 422 unknown-product; 503 when prices are unavailable.
//   GET  /orders/{id}                 -> {id, customer_id, items, total, status, reason, address}
//   GET  /orders?customer_id=...      -> [ ... ] newest first (the customer or a service)
//   GET  /sagas/{id}                  -> saga state and full history       (service token)
//   GET  /sagas?status=compensating   -> sagas in that state               (service token)

#include <mercado/http/openapi.hpp>
#include <mercado/resilience/service_client.hpp>
#include <mercado/saga/saga.hpp>
#include <mercado/service/security.hpp>

#include "app/catalogue.hpp"
#include "app/orders.hpp"

namespace order::api {

struct Dependencies {
  app::Orders& orders;
  mercado::saga::Orchestrator& sagas;
  app::Catalogue& catalogue;
  mercado::service::Security& security;
  mercado::obs::Counter& created;  // orders_created_total
};

void register_routes(mercado::service::App& app, Dependencies deps, mercado::http::OpenApi& openapi);

}  // namespace order::api
