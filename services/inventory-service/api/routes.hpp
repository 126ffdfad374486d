#pragma once
// inventory-service HTTP API.
//   GET    /products                   public catalogue: [{id, name, price, stock}]
//   GET    /products/{id}              404 when unknown
//   POST   /reservations {order_id, items:[{product_id, quantity}]}  (service token)
//          201 {id, order_id, items, status: RESERVED}; 409 insufficient-stock (nothing
//          reserved); 422 unknown-product; one reservation per order (the same order id
//          again: the reservation if the items are the same, else 409); Idempotency-Key
//   GET    /reservations/{id}          (service token)
//   DELETE /reservations/{id}          release (idempotent); 409 once committed
//   POST   /reservations/{id}/commit   reserved -> shipped (idempotent); 409 once released
//   GET    /stock                      per product: stock, reserved, shipped (service token)

#include <mercado/http/openapi.hpp>
#include <mercado/service/backend.hpp>
#include <mercado/service/security.hpp>

namespace inventory::api {

void register_routes(mercado::service::App& app, mercado::service::Backend& backend, mercado::service::Security& security,
                     mercado::http::OpenApi& openapi);

}  // namespace inventory::api
