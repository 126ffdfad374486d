#include "api/routes.hpp"

#include <mercado/http/json_body.hpp>
#include <mercado/http/problem.hpp>
#include <mercado/service/idempotency.hpp>

namespace payment::api {

namespace http = mercado::http;
namespace auth = mercado::auth;
using boost::asio::awaitable;
using mercado::Errc;
using mercado::Error;

namespace {

struct DepositRequest {
  std::int64_t amount = 0;
};
BOOST_DESCRIBE_STRUCT(DepositRequest, (), (amount))
void validate(const DepositRequest& d, mercado::json::Validator& v) {
  v.check(d.amount > 0 && d.amount <= 100'000'000'00, "amount", "must be 1 to 10000000000 cents");
}

struct PaymentRequest {
  std::string order_id;
  std::string customer_id;
  std::int64_t amount = 0;
};
BOOST_DESCRIBE_STRUCT(PaymentRequest, (), (order_id, customer_id, amount))
void validate(const PaymentRequest& p, mercado::json::Validator& v) {
  v.check(!p.order_id.empty() && p.order_id.size() <= 100, "order_id", "must be 1 to 100 characters");
  v.check(!p.customer_id.empty() && p.customer_id.size() <= 100, "customer_id", "must be 1 to 100 characters");
  v.check(p.amount > 0, "amount", "must be positive (cents)");
}

}  // namespace

void register_routes(mercado::service::App& app, app::Payments& payments, mercado::service::Security& security,
                     http::OpenApi& openapi) {
  auto& r = app.router();
  const auto& verifier = security.verifier();
  // payments_total{outcome}: completed, insufficient_funds, refunded, error
  auto* payments_total = &app.metrics().counter("payments_total", "Payment requests by outcome", {"outcome"});

  r.post("/accounts/{customer_id}/deposits", [&payments, &verifier](http::Request& req) -> awaitable<http::Response> {
    const std::string customer = req.param("customer_id").value_or("");
    if (auto denied = auth::require_owner_or_service(req, verifier, customer)) co_return *denied;
    auto in = http::read_json<DepositRequest>(req);
    if (!in) co_return http::problem(req, in.error());
    auto key = mercado::service::idempotency_key(req);
    if (!key) co_return http::problem(req, key.error());
    auto a = co_await payments.deposit(customer, in->amount, std::string(key->value_or("")), req.trace().traceparent());
    if (!a) co_return http::problem(req, a.error());
    co_return http::json_response(201, *a);
  }, "Deposits money into a customer's account");

  r.get("/accounts/{customer_id}", [&payments, &verifier](http::Request& req) -> awaitable<http::Response> {
    const std::string customer = req.param("customer_id").value_or("");
    if (auto denied = auth::require_owner_or_service(req, verifier, customer)) co_return *denied;
    auto a = co_await payments.account(customer);
    if (!a) co_return http::problem(req, a.error());
    if (!*a) co_return http::problem(req, Error(Errc::not_found, "no account for " + customer));
    co_return http::json_response(200, **a);
  }, "A customer's balance and account version");

  r.post("/payments", [&payments, &verifier, payments_total](http::Request& req) -> awaitable<http::Response> {
    if (auto denied = auth::require_service(req, verifier)) co_return *denied;
    auto in = http::read_json<PaymentRequest>(req);
    if (!in) co_return http::problem(req, in.error());
    // Idempotent by order id (one payment per order, `pay-<order_id>`); a key is checked
    // like on every other command (400 when empty, too long or sent twice) and not stored.
    if (auto key = mercado::service::idempotency_key(req); !key) co_return http::problem(req, key.error());
    auto p = co_await payments.pay(in->order_id, in->customer_id, in->amount, req.trace().traceparent());
    if (!p) {
      payments_total->with({p.error().type == "insufficient-funds" ? "insufficient_funds" : "error"}).inc();
      co_return http::problem(req, p.error());
    }
    payments_total->with({"completed"}).inc();
    co_return http::json_response(201, *p);
  }, "Takes the payment of an order");

  r.get("/payments/{id}", [&payments, &verifier](http::Request& req) -> awaitable<http::Response> {
    if (auto denied = auth::require_service(req, verifier)) co_return *denied;
    const std::string id = req.param("id").value_or("");
    auto p = co_await payments.find(id);
    if (!p) co_return http::problem(req, p.error());
    if (!*p) co_return http::problem(req, Error(Errc::not_found, "no payment " + id));
    co_return http::json_response(200, **p);
  }, "One payment");

  r.post("/payments/{id}/refund", [&payments, &verifier, payments_total](http::Request& req) -> awaitable<http::Response> {
    if (auto denied = auth::require_service(req, verifier)) co_return *denied;
    const std::string id = req.param("id").value_or("");
    if (auto key = mercado::service::idempotency_key(req); !key) co_return http::problem(req, key.error());
    auto p = co_await payments.refund(id, req.trace().traceparent());
    if (!p) co_return http::problem(req, p.error());
    payments_total->with({"refunded"}).inc();
    co_return http::json_response(200, *p);
  }, "Refunds a payment (idempotent)");

  openapi.describe(http::Method::post, "/accounts/{customer_id}/deposits",
                   {.request = http::schema_of<DepositRequest>(), .response = http::schema_of<app::AccountView>(),
                    .status = 201, .bearer = true, .parameters = {http::idempotency_key_header()},
                    .errors = {{422, "The Idempotency-Key was used with a different deposit"}},
                    .not_found = false});  // the first deposit opens the account
  openapi.describe(http::Method::get, "/accounts/{customer_id}", {.response = http::schema_of<app::AccountView>(), .bearer = true});
  openapi.describe(http::Method::post, "/payments",
                   {.request = http::schema_of<PaymentRequest>(), .response = http::schema_of<app::PaymentView>(),
                    .status = 201, .bearer = true, .parameters = {http::idempotency_key_header()},
                    .errors = {{409, "Insufficient funds, no account, or the order paid already with other details"}}});
  openapi.describe(http::Method::get, "/payments/{id}", {.response = http::schema_of<app::PaymentView>(), .bearer = true});
  openapi.describe(http::Method::post, "/payments/{id}/refund", {.response = http::schema_of<app::PaymentView>(), .bearer = true,
                                                                  .parameters = {http::idempotency_key_header()},
                                                                  .errors = {{409, "The payment was refunded already"}}});
}

}  // namespace payment::api
