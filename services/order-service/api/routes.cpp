#include "api/routes.hpp"

#include <boost/json.hpp>

#include <mercado/auth/bearer.hpp>
#include <mercado/core/uuid.hpp>
#include <mercado/http/json_body.hpp>
#include <mercado/http/problem.hpp>
#include <mercado/service/idempotency.hpp>
#include <mercado/json/rules.hpp>

namespace order::api {

namespace http = mercado::http;
namespace auth = mercado::auth;
namespace json = boost::json;
using boost::asio::awaitable;
using mercado::Errc;
using mercado::Error;

namespace {

struct ItemRequest {
  std::string product_id;
  std::int64_t quantity = 0;
};
BOOST_DESCRIBE_STRUCT(ItemRequest, (), (product_id, quantity))

struct CreateOrder {
  std::string customer_id;
  std::vector<ItemRequest> items;
  std::string address;
};
BOOST_DESCRIBE_STRUCT(CreateOrder, (), (customer_id, items, address))

void validate(const CreateOrder& c, mercado::json::Validator& v) {
  v.check(!c.customer_id.empty() && c.customer_id.size() <= 100, "customer_id", "must be 1 to 100 characters");
  v.check(!c.items.empty() && c.items.size() <= 50, "items", "must have 1 to 50 lines");
  for (std::size_t i = 0; i < c.items.size(); ++i) {
    v.check(!c.items[i].product_id.empty() && c.items[i].product_id.size() <= 64,
            "items[" + std::to_string(i) + "].product_id", "must be 1 to 64 characters");
    v.check(c.items[i].quantity >= 1 && c.items[i].quantity <= 1000, "items[" + std::to_string(i) + "].quantity",
            "must be 1 to 1000");
  }
  v.check(mercado::json::rules::length_between(c.address, 5, 200) && mercado::json::rules::is_printable_utf8(c.address),
          "address", "must be 5 to 200 printable characters");
}

// A stable order id for (customer, Idempotency-Key): the same request twice is one order.
std::string order_id_for_key(std::string_view customer, std::string_view key) {
  std::uint64_t h1 = 1469598103934665603ULL, h2 = 0x9E3779B97F4A7C15ULL;
  for (std::string_view part : {customer, std::string_view("\x1f"), key}) {
    for (unsigned char c : part) {
      h1 = (h1 ^ c) * 1099511628211ULL;
      h2 = (h2 ^ c) * 0x100000001B3ULL + 0x632BE59BD9B4E019ULL;
    }
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "k%016llx%016llx", static_cast<unsigned long long>(h1), static_cast<unsigned long long>(h2));
  return buf;
}

}  // namespace

void register_routes(mercado::service::App& app, Dependencies deps, http::OpenApi& openapi) {
  auto& r = app.router();

  r.post("/orders", [deps](http::Request& req) -> awaitable<http::Response> {
    auto claims = auth::authenticate(req, deps.security.verifier());
    if (!claims) co_return auth::unauthorized(req, claims.error());
    auto in = http::read_json<CreateOrder>(req);
    if (!in) co_return http::problem(req, in.error());
    if (!auth::is_service(*claims)) {
      if (auto denied = auth::require_subject(req, *claims, in->customer_id)) co_return *denied;
    }
    auto key = mercado::service::idempotency_key(req);  // refused before any call is made
    if (!key) co_return http::problem(req, key.error());
    // Price every product once, from the catalogue (recently seen prices are kept).
    std::vector<std::string> products;
    for (const auto& item : in->items) products.push_back(item.product_id);
    auto prices = co_await deps.catalogue.prices(std::move(products), mercado::resilience::CallContext::from(req));
    if (!prices) co_return http::problem(req, prices.error());
    std::vector<app::ItemView> items;
    for (const auto& i : in->items) items.push_back({i.product_id, i.quantity, prices->at(i.product_id)});

    const std::string order_id = *key ? order_id_for_key(in->customer_id, **key) : mercado::core::new_uuid();
    auto placed = co_await deps.orders.place(order_id, in->customer_id, in->address, std::move(items), req.trace().traceparent());
    if (!placed) {
      co_return http::problem(req, placed.error());
    }
    deps.sagas.launch(order_id);  // its row was created with the order's events (append hook)
    if (!placed->replayed) {
      // Just created: the read model holds exactly this (written in the same transaction).
      deps.created.inc();
      auto res = http::json_response(202, placed->order);
      res.headers.set("Location", "/orders/" + order_id);
      co_return res;
    }
    // A retried request: answer with the order as it is now. orders_view is an inline
    // projection, committed with the events, so this does not wait.
    co_await deps.orders.visible(placed->position, std::chrono::seconds(2));
    auto view = co_await deps.orders.get(order_id);
    if (!view || !*view) co_return http::json_response(202, json::value{{"id", order_id}, {"status", "PENDING"}});
    auto res = http::json_response(202, **view);
    res.headers.set("Location", "/orders/" + order_id);
    co_return res;
  }, "Places an order; the order saga runs in the background");

  r.get("/orders/{id}", [deps](http::Request& req) -> awaitable<http::Response> {
    auto claims = auth::authenticate(req, deps.security.verifier());
    if (!claims) co_return auth::unauthorized(req, claims.error());
    const std::string id = req.param("id").value_or("");
    auto v = co_await deps.orders.get(id);
    if (!v) co_return http::problem(req, v.error());
    if (!*v) co_return http::problem(req, Error(Errc::not_found, "no order " + id));
    if (!auth::is_service(*claims)) {
      if (auto denied = auth::require_subject(req, *claims, (*v)->customer_id)) co_return *denied;
    }
    co_return http::json_response(200, **v);
  }, "Reads an order (the read model)");

  r.get("/orders", [deps](http::Request& req) -> awaitable<http::Response> {
    auto claims = auth::authenticate(req, deps.security.verifier());  // 401 before any 400
    if (!claims) co_return auth::unauthorized(req, claims.error());
    auto customer = req.query("customer_id");
    if (!customer || customer->empty()) {
      co_return http::problem(req, Error(Errc::invalid_argument,
                                         "the customer_id query parameter is required (percent-encoded)"));
    }
    if (!auth::is_service(*claims)) {
      if (auto denied = auth::require_subject(req, *claims, *customer)) co_return *denied;
    }
    auto list = co_await deps.orders.by_customer(*customer, 100);
    if (!list) co_return http::problem(req, list.error());
    co_return http::json_response(200, *list);
  }, "A customer's orders, newest first (the read model)");

  r.get("/sagas/{id}", [deps](http::Request& req) -> awaitable<http::Response> {
    if (auto denied = auth::require_service(req, deps.security.verifier())) co_return *denied;
    const std::string id = req.param("id").value_or("");
    auto s = co_await deps.sagas.get(id);
    if (!s) co_return http::problem(req, s.error());
    if (!*s) co_return http::problem(req, Error(Errc::not_found, "no saga " + id));
    json::array history;
    for (const auto& h : (*s)->history) {
      history.push_back(json::object{{"at_ms", h.at_ms}, {"event", h.event}, {"step", h.step}, {"detail", h.detail}});
    }
    json::object out{{"id", (*s)->id},         {"type", (*s)->type},        {"status", mercado::saga::to_string((*s)->status)},
                     {"step", (*s)->step},     {"failure", (*s)->failure}, {"attempts", (*s)->attempts},
                     {"data", (*s)->data},     {"history", std::move(history)}};
    co_return http::json_response(200, out);
  }, "A saga's state and history");

  r.get("/sagas", [deps](http::Request& req) -> awaitable<http::Response> {
    if (auto denied = auth::require_service(req, deps.security.verifier())) co_return *denied;
    std::optional<mercado::saga::Status> status;
    if (auto s = req.query("status")) {
      status = mercado::saga::parse_status(*s);
      if (!status) co_return http::problem(req, Error(Errc::invalid_argument, "unknown status " + *s));
    }
    auto list = co_await deps.sagas.list(status, 100);
    if (!list) co_return http::problem(req, list.error());
    json::array out;
    for (const auto& s : *list) {
      out.push_back(json::object{{"id", s.id}, {"status", mercado::saga::to_string(s.status)}, {"step", s.step},
                                 {"failure", s.failure}, {"attempts", s.attempts}});
    }
    co_return http::json_response(200, out);
  }, "Sagas, newest first; ?status=running|compensating|completed|compensated");

  openapi.describe(http::Method::post, "/orders",
                   {.request = http::schema_of<CreateOrder>(), .response = http::schema_of<app::OrderView>(), .status = 202,
                    .bearer = true, .parameters = {http::idempotency_key_header()},
                    .errors = {{422, "An unknown product (unknown-product), or the Idempotency-Key used with a different "
                                     "order (idempotency-key-reused)"},
                               {503, "The catalogue (inventory-service) cannot be reached to price the items"}}});
  openapi.describe(http::Method::get, "/orders/{id}", {.response = http::schema_of<app::OrderView>(), .bearer = true});
  openapi.describe(http::Method::get, "/orders",
                   {.response = http::schema_of<std::vector<app::OrderView>>(), .bearer = true,
                    .parameters = {{.name = "customer_id", .required = true, .description = "The customer whose orders to list"}}});
  openapi.describe(http::Method::get, "/sagas/{id}", {.bearer = true});
  openapi.describe(http::Method::get, "/sagas",
                   {.bearer = true,
                    .parameters = {{.name = "status", .description = "running, compensating, completed or compensated"}}});
}

}  // namespace order::api
