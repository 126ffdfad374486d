#include "api/routes.hpp"

#include <mercado/http/json_body.hpp>
#include <mercado/http/problem.hpp>
#include <mercado/json/rules.hpp>
#include <mercado/service/idempotency.hpp>

#include "app/shipments.hpp"

namespace shipping::api {

namespace http = mercado::http;
using boost::asio::awaitable;
using mercado::Result;

namespace {

struct CreateShipment {
  std::string order_id;
  std::string address;
};
BOOST_DESCRIBE_STRUCT(CreateShipment, (), (order_id, address))

void validate(const CreateShipment& c, mercado::json::Validator& v) {
  v.check(!c.order_id.empty() && c.order_id.size() <= 100, "order_id", "must be 1 to 100 characters");
  // The domain checks it again (check_address); here it is reported like every other field.
  v.check(mercado::json::rules::length_between(c.address, 5, 200) && mercado::json::rules::is_printable_utf8(c.address),
          "address", "must be 5 to 200 printable characters");
}

}  // namespace

void register_routes(mercado::service::App& app, mercado::service::Backend& backend, mercado::service::Security& security,
                     const Settings& settings, http::OpenApi& openapi) {
  auto& r = app.router();
  r.post("/shipments", [&backend, &security, settings](http::Request& req) -> awaitable<http::Response> {
    if (auto denied = mercado::auth::require_service(req, security.verifier())) co_return *denied;
    auto in = http::read_json<CreateShipment>(req);
    if (!in) co_return http::problem(req, in.error());
    const std::string tp = req.trace().traceparent();
    co_return co_await mercado::service::idempotent(backend.db(), req, [&](mercado::storage::Tx& tx) -> Result<http::Response> {
      auto s = app::create_shipment(tx, backend.outbox(), in->order_id, in->address, settings.blocked_regions, tp);
      if (!s) return mercado::fail(std::move(s.error()));
      return http::json_response(201, *s);
    });
  }, "Creates the shipment of an order");

  r.del("/shipments/{id}", [&backend, &security](http::Request& req) -> awaitable<http::Response> {
    if (auto denied = mercado::auth::require_service(req, security.verifier())) co_return *denied;
    const std::string id = req.param("id").value_or("");
    const std::string tp = req.trace().traceparent();
    auto s = co_await backend.db().transaction([&](mercado::storage::Tx& tx) {
      return app::cancel_shipment(tx, backend.outbox(), id, tp);
    });
    if (!s) co_return http::problem(req, s.error());
    co_return http::json_response(200, *s);
  }, "Cancels a shipment (idempotent)");

  r.get("/shipments/{id}", [&backend, &security](http::Request& req) -> awaitable<http::Response> {
    if (auto denied = mercado::auth::require_service(req, security.verifier())) co_return *denied;
    const std::string id = req.param("id").value_or("");
    auto s = co_await backend.db().transaction([&](mercado::storage::Tx& tx) { return app::find_shipment(tx, id); },
                                               mercado::storage::TxMode::read);
    if (!s) co_return http::problem(req, s.error());
    if (!*s) co_return http::problem(req, mercado::Error(mercado::Errc::not_found, "no shipment " + id));
    co_return http::json_response(200, **s);
  }, "Reads a shipment");

  openapi.describe(http::Method::post, "/shipments",
                   {.request = http::schema_of<CreateShipment>(), .response = http::schema_of<app::ShipmentView>(),
                    .status = 201, .bearer = true, .parameters = {http::idempotency_key_header()},
                    .errors = {{409, "The order's shipment was cancelled, or goes to another address"},
                               {422, "A region we do not ship to (shipping-refused), or the Idempotency-Key reused"}}});
  openapi.describe(http::Method::delete_, "/shipments/{id}", {.response = http::schema_of<app::ShipmentView>(), .bearer = true});
  openapi.describe(http::Method::get, "/shipments/{id}", {.response = http::schema_of<app::ShipmentView>(), .bearer = true});
}

}  // namespace shipping::api
