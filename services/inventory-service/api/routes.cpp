#include "api/routes.hpp"

#include <mercado/http/json_body.hpp>
#include <mercado/http/problem.hpp>
#include <mercado/service/idempotency.hpp>

#include "app/inventory.hpp"

namespace inventory::api {

namespace http = mercado::http;
using boost::asio::awaitable;
using mercado::Result;
using mercado::storage::Tx;
using mercado::storage::TxMode;

namespace {

struct ReserveRequest {
  std::string order_id;
  std::vector<app::ItemView> items;
};
BOOST_DESCRIBE_STRUCT(ReserveRequest, (), (order_id, items))

void validate(const ReserveRequest& r, mercado::json::Validator& v) {
  v.check(!r.order_id.empty() && r.order_id.size() <= 100, "order_id", "must be 1 to 100 characters");
  v.check(!r.items.empty() && r.items.size() <= 100, "items", "must have 1 to 100 lines");
  for (std::size_t i = 0; i < r.items.size(); ++i) {
    v.check(!r.items[i].product_id.empty(), "items[" + std::to_string(i) + "].product_id", "is required");
    v.check(r.items[i].quantity >= 1 && r.items[i].quantity <= 10'000, "items[" + std::to_string(i) + "].quantity",
            "must be 1 to 10000");
  }
}

struct CommitRequest {
  std::vector<std::string> ids;
};
BOOST_DESCRIBE_STRUCT(CommitRequest, (), (ids))

void validate(const CommitRequest& r, mercado::json::Validator& v) {
  v.check(!r.ids.empty() && r.ids.size() <= 256, "ids", "must have 1 to 256 reservation ids");
  for (std::size_t i = 0; i < r.ids.size(); ++i) {
    v.check(!r.ids[i].empty() && r.ids[i].size() <= 110, "ids[" + std::to_string(i) + "]", "must be 1 to 110 characters");
  }
}

struct CommitFailure {
  std::string id;
  std::string reason;
};
BOOST_DESCRIBE_STRUCT(CommitFailure, (), (id, reason))

struct CommitResult {
  std::vector<std::string> committed;  // now or before (idempotent)
  std::vector<CommitFailure> failed;   // unknown or released reservations
};
BOOST_DESCRIBE_STRUCT(CommitResult, (), (committed, failed))

}  // namespace

void register_routes(mercado::service::App& app, mercado::service::Backend& backend, mercado::service::Security& security,
                     http::OpenApi& openapi) {
  auto& r = app.router();
  // stock_reservations_total{outcome}: reserved, insufficient_stock, unknown_product, conflict (the order's
  // reservation was released, or holds other items), error; released, committed
  auto* reservations = &app.metrics().counter("stock_reservations_total", "Reservation requests by outcome", {"outcome"});
  auto& db = backend.db();
  const auto& verifier = security.verifier();

  r.get("/products", [&db](http::Request& req) -> awaitable<http::Response> {
    auto list = co_await db.transaction([](Tx& tx) { return app::list_products(tx); }, TxMode::read);
    if (!list) co_return http::problem(req, list.error());
    co_return http::json_response(200, *list);
  }, "The catalogue");

  r.get("/products/{id}", [&db](http::Request& req) -> awaitable<http::Response> {
    const std::string id = req.param("id").value_or("");
    auto p = co_await db.transaction([&](Tx& tx) { return app::find_product(tx, id); }, TxMode::read);
    if (!p) co_return http::problem(req, p.error());
    if (!*p) co_return http::problem(req, mercado::Error(mercado::Errc::not_found, "no product " + id));
    co_return http::json_response(200, **p);
  }, "One product");

  r.post("/reservations", [&db, &backend, &verifier, reservations](http::Request& req) -> awaitable<http::Response> {
    if (auto denied = mercado::auth::require_service(req, verifier)) co_return *denied;
    auto in = http::read_json<ReserveRequest>(req);
    if (!in) co_return http::problem(req, in.error());
    std::vector<domain::Line> lines;
    for (const auto& i : in->items) lines.push_back({i.product_id, i.quantity});
    const std::string tp = req.trace().traceparent();
    std::string refused;  // the problem type when the reservation was refused
    auto res = co_await mercado::service::idempotent(db, req, [&](Tx& tx) -> Result<http::Response> {
      refused.clear();  // the command may run more than once: only the last run counts
      auto v = app::reserve(tx, backend.outbox(), in->order_id, lines, tp);
      if (!v) {
        refused = v.error().type;
        return mercado::fail(std::move(v.error()));
      }
      return http::json_response(201, *v);
    });
    const char* outcome = res.status == 201                 ? "reserved"
                          : refused == "insufficient-stock" ? "insufficient_stock"
                          : refused == "unknown-product"    ? "unknown_product"
                          : res.status == 409               ? "conflict"
                                                            : "error";
    reservations->with({outcome}).inc();
    co_return res;
  }, "Reserves the stock of an order: all lines or none");

  r.get("/reservations/{id}", [&db, &verifier](http::Request& req) -> awaitable<http::Response> {
    if (auto denied = mercado::auth::require_service(req, verifier)) co_return *denied;
    const std::string id = req.param("id").value_or("");
    auto v = co_await db.transaction([&](Tx& tx) { return app::find_reservation(tx, id); }, TxMode::read);
    if (!v) co_return http::problem(req, v.error());
    if (!*v) co_return http::problem(req, mercado::Error(mercado::Errc::not_found, "no reservation " + id));
    co_return http::json_response(200, **v);
  }, "One reservation");

  r.del("/reservations/{id}", [&db, &backend, &verifier, reservations](http::Request& req) -> awaitable<http::Response> {
    if (auto denied = mercado::auth::require_service(req, verifier)) co_return *denied;
    const std::string id = req.param("id").value_or("");
    const std::string tp = req.trace().traceparent();
    auto v = co_await db.transaction([&](Tx& tx) { return app::release(tx, backend.outbox(), id, tp); });
    if (!v) co_return http::problem(req, v.error());
    reservations->with({"released"}).inc();
    co_return http::json_response(200, *v);
  }, "Releases a reservation (idempotent)");

  r.post("/reservations/{id}/commit", [&db, &backend, &verifier, reservations](http::Request& req) -> awaitable<http::Response> {
    if (auto denied = mercado::auth::require_service(req, verifier)) co_return *denied;
    const std::string id = req.param("id").value_or("");
    const std::string tp = req.trace().traceparent();
    auto v = co_await db.transaction([&](Tx& tx) { return app::commit(tx, backend.outbox(), id, tp); });
    if (!v) co_return http::problem(req, v.error());
    reservations->with({"committed"}).inc();
    co_return http::json_response(200, *v);
  }, "Commits a reservation: reserved stock is shipped (idempotent)");

  // The batch form, for callers that commit reservations after the fact (order-service's
  // committer): one transaction for all of them. A reservation that cannot be committed
  // (unknown, released) is reported, not an error for the others.
  r.post("/reservations/commit", [&db, &backend, &verifier, reservations](http::Request& req) -> awaitable<http::Response> {
    if (auto denied = mercado::auth::require_service(req, verifier)) co_return *denied;
    auto in = http::read_json<CommitRequest>(req);
    if (!in) co_return http::problem(req, in.error());
    const std::string tp = req.trace().traceparent();
    auto result = co_await db.transaction([&](Tx& tx) -> Result<CommitResult> {
      CommitResult out;
      for (const auto& id : in->ids) {
        auto v = app::commit(tx, backend.outbox(), id, tp);
        if (v) {
          out.committed.push_back(id);
        } else if (v.error().code == mercado::Errc::not_found || v.error().code == mercado::Errc::conflict) {
          out.failed.push_back({id, v.error().message});  // checked before anything was written
        } else {
          return mercado::fail(std::move(v.error()));
        }
      }
      return out;
    }, TxMode::write, mercado::storage::Rerun::allowed);
    if (!result) co_return http::problem(req, result.error());
    reservations->with({"committed"}).inc(result->committed.size());
    co_return http::json_response(200, *result);
  }, "Commits several reservations in one transaction (idempotent); reports those it cannot commit");

  r.get("/stock", [&db, &verifier](http::Request& req) -> awaitable<http::Response> {
    if (auto denied = mercado::auth::require_service(req, verifier)) co_return *denied;
    auto levels = co_await db.transaction([](Tx& tx) { return app::stock_levels(tx); }, TxMode::read);
    if (!levels) co_return http::problem(req, levels.error());
    co_return http::json_response(200, *levels);
  }, "Stock levels per product: available, reserved, shipped");

  openapi.describe(http::Method::get, "/products", {.response = http::schema_of<std::vector<app::ProductView>>()});
  openapi.describe(http::Method::get, "/products/{id}", {.response = http::schema_of<app::ProductView>()});
  openapi.describe(http::Method::post, "/reservations",
                   {.request = http::schema_of<ReserveRequest>(), .response = http::schema_of<app::ReservationView>(),
                    .status = 201, .bearer = true, .parameters = {http::idempotency_key_header()},
                    .errors = {{409, "Insufficient stock (nothing is reserved), or the order's reservation was released or holds other items"},
                               {422, "An unknown product, or the Idempotency-Key reused"}}});
  for (auto m : {http::Method::get, http::Method::delete_}) {
    openapi.describe(m, "/reservations/{id}",
                     {.response = http::schema_of<app::ReservationView>(), .bearer = true,
                      .errors = m == http::Method::delete_
                                    ? std::vector<std::pair<int, std::string>>{{409, "A committed reservation cannot be released"}}
                                    : std::vector<std::pair<int, std::string>>{}});
  }
  openapi.describe(http::Method::post, "/reservations/{id}/commit",
                   {.response = http::schema_of<app::ReservationView>(), .bearer = true,
                    .errors = {{409, "A released reservation cannot be committed"}}});
  openapi.describe(http::Method::post, "/reservations/commit",
                   {.request = http::schema_of<CommitRequest>(), .response = http::schema_of<CommitResult>(), .bearer = true});
  openapi.describe(http::Method::get, "/stock", {.response = http::schema_of<std::vector<app::StockLevels>>(), .bearer = true});
}

}  // namespace inventory::api
