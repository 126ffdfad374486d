#pragma once
// payment-service HTTP API (exercise 2's BankAccount, event sourced).
//   POST /accounts/{customer_id}/deposits {amount}  -> 201 {customer_id, balance, version}
//        (the owner or a service; opens the account if needed; Idempotency-Key: once)
//   GET  /accounts/{customer_id}                    -> 200 {customer_id, balance, version}; 404
//   POST /payments {order_id, customer_id, amount}  -> 201 {id, order_id, customer_id, amount, status}
//        (service token; one payment per order; 409 insufficient-funds, nothing taken)
//   GET  /payments/{id}                             -> 200; 404     (service token)
//   POST /payments/{id}/refund                      -> 200 {.. status: REFUNDED} (idempotent; 404)
// Amounts are integer cents.

#include <mercado/http/openapi.hpp>
#include <mercado/service/backend.hpp>
#include <mercado/service/security.hpp>

#include "app/payments.hpp"

namespace payment::api {

void register_routes(mercado::service::App& app, app::Payments& payments, mercado::service::Security& security,
                     mercado::http::OpenApi& openapi);

}  // namespace payment::api
