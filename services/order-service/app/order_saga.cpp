#include "app/order_saga.hpp"

#include <boost/json.hpp>

namespace order::app {

namespace asio = boost::asio;
namespace http = mercado::http;
namespace json = boost::json;
namespace resilience = mercado::resilience;
namespace saga = mercado::saga;
using saga::StepContext;
using saga::StepResult;

std::string reason_text(std::string_view failure) {
  auto colon = failure.find(": ");
  return std::string(colon == std::string_view::npos ? failure : failure.substr(colon + 2));
}

std::string reason_slug(std::string_view failure) {
  std::string text = reason_text(failure);
  auto colon = text.find(':');
  std::string slug = colon == std::string::npos ? text : text.substr(0, colon);
  // Only kebab-case slugs make labels; anything else is bucketed.
  for (char c : slug) {
    if (!(c == '-' || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) return "other";
  }
  return slug.empty() || slug.size() > 40 ? "other" : slug;
}

namespace {

// The problem type's slug and detail of an error response, e.g. "insufficient-stock: ...".
std::string refusal(const http::ClientResponse& r, std::string_view service) {
  boost::system::error_code ec;
  auto v = json::parse(r.body, ec);
  std::string slug = service.empty() ? "refused" : std::string(service) + "-refused";
  std::string detail = "HTTP " + std::to_string(r.status);
  if (!ec && v.is_object()) {
    const auto& o = v.as_object();
    if (auto t = o.if_contains("type"); t && t->is_string()) {
      std::string_view type = t->as_string();
      slug = std::string(type.substr(type.rfind(':') + 1));
    }
    if (auto d = o.if_contains("detail"); d && d->is_string()) detail = d->as_string();
  }
  return slug + ": " + detail;
}

// One downstream call of a step (or compensation) and what it means for the saga. A step's
// answer is kept in the saga's data under `output` ("reservation", "payment", "shipment"):
// merged at the top level, the callees' `id`s and `status`es would overwrite each other and
// the reservation's `items` the order's. A compensation passes an empty `output`.
asio::awaitable<StepResult> call(resilience::ServiceClient& service, mercado::auth::ServiceToken& token,
                                 const StepContext& ctx, http::Method method, std::string path, std::string body,
                                 bool not_found_is_done, std::string output = {}) {
  http::ClientRequest req;
  req.method = method;
  req.url = std::move(path);
  req.body = std::move(body);
  if (!req.body.empty()) req.content_type = "application/json";
  req.headers.add("Authorization", token.authorization());
  req.headers.add("Idempotency-Key", ctx.idempotency_key);
  auto r = co_await service.send(std::move(req), resilience::CallContext{&ctx.trace, std::nullopt});
  if (!r) {
    const auto& e = r.error();
    const bool may_have_arrived =
        e.code == resilience::CallErrc::deadline_exceeded ||
        (e.code == resilience::CallErrc::downstream && e.downstream.maybe_delivered);
    if (may_have_arrived) co_return StepResult::retry(service.name() + " did not answer: " + e.message);
    co_return StepResult::failed(service.name() + "-unavailable: " + e.message);
  }
  if (r->ok()) {
    boost::system::error_code ec;
    auto v = json::parse(r->body, ec);
    if (output.empty() || ec || !v.is_object()) co_return StepResult::ok();
    json::object out;
    out[output] = std::move(v);
    co_return StepResult::ok(std::move(out));
  }
  if (r->status == 404 && not_found_is_done) co_return StepResult::ok();
  if (r->status >= 500 || r->status == 429 || r->status == 408) {
    co_return StepResult::retry(service.name() + " answered HTTP " + std::to_string(r->status));
  }
  co_return StepResult::failed(refusal(*r, service.name()));
}

std::string str(const json::object& data, std::string_view key) {
  auto it = data.find(key);
  return it != data.end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
}

}  // namespace

StepResult validate_order(const json::object& order) {
  if (str(order, "order_id").empty()) return StepResult::failed("invalid-order: no order id");
  const auto* items = order.if_contains("items");
  if (items == nullptr || !items->is_array() || items->as_array().empty()) {
    return StepResult::failed("invalid-order: no items");
  }
  std::int64_t sum = 0;
  for (const auto& v : items->as_array()) {
    const auto* item = v.if_object();
    const auto* quantity = item ? item->if_contains("quantity") : nullptr;
    const auto* price = item ? item->if_contains("price") : nullptr;
    if (item == nullptr || str(*item, "product_id").empty() || quantity == nullptr || !quantity->is_int64() ||
        quantity->as_int64() <= 0 || price == nullptr || !price->is_int64() || price->as_int64() < 0) {
      return StepResult::failed("invalid-order: a malformed item");
    }
    sum += quantity->as_int64() * price->as_int64();
  }
  const auto* total = order.if_contains("total");
  if (total == nullptr || !total->is_int64() || total->as_int64() != sum) {
    return StepResult::failed("invalid-order: the total is not the sum of the items");
  }
  return StepResult::ok();
}

saga::Definition order_saga(Orders& orders, Downstreams d, const ReservationCommitter& committer) {
  saga::Definition def{std::string(kOrderSaga), {}};
  def.max_attempts = 3;
  def.initial_backoff = std::chrono::milliseconds(200);
  def.max_backoff = std::chrono::seconds(10);

  def.steps.push_back(saga::Step{
      "validate_order",
      // The saga's input is the order itself: written from the order's creating events, in
      // the transaction that appended them, and only this saga changes the order's status
      // afterwards. So the order is PENDING here and its content is checked from the input,
      // without reading the order back.
      [](const StepContext& ctx) -> asio::awaitable<StepResult> {
        co_return validate_order(ctx.data);
      },
      [&orders](const StepContext& ctx) -> asio::awaitable<StepResult> {
        auto r = co_await orders.cancel(str(ctx.data, "order_id"), reason_text(ctx.failure), ctx.trace.traceparent());
        if (!r && r.error().code != mercado::Errc::not_found) co_return StepResult::retry(r.error().message);
        co_return StepResult::ok();
      }});

  def.steps.push_back(saga::Step{
      "reserve_inventory",
      [d](const StepContext& ctx) -> asio::awaitable<StepResult> {
        json::array items;
        for (const auto& i : ctx.data.at("items").as_array()) {
          items.push_back(json::object{{"product_id", i.at("product_id")}, {"quantity", i.at("quantity")}});
        }
        std::string body = json::serialize(json::object{{"order_id", ctx.data.at("order_id")}, {"items", std::move(items)}});
        co_return co_await call(d.inventory, d.token, ctx, http::Method::post, "/reservations", std::move(body), false,
                                "reservation");
      },
      [d](const StepContext& ctx) -> asio::awaitable<StepResult> {
        co_return co_await call(d.inventory, d.token, ctx, http::Method::delete_,
                                "/reservations/res-" + str(ctx.data, "order_id"), "", true);
      }});

  def.steps.push_back(saga::Step{
      "process_payment",
      [d](const StepContext& ctx) -> asio::awaitable<StepResult> {
        std::string body = json::serialize(json::object{{"order_id", ctx.data.at("order_id")},
                                                        {"customer_id", ctx.data.at("customer_id")},
                                                        {"amount", ctx.data.at("total")}});
        co_return co_await call(d.payment, d.token, ctx, http::Method::post, "/payments", std::move(body), false,
                                "payment");
      },
      [d](const StepContext& ctx) -> asio::awaitable<StepResult> {
        co_return co_await call(d.payment, d.token, ctx, http::Method::post,
                                "/payments/pay-" + str(ctx.data, "order_id") + "/refund", "", true);
      }});

  def.steps.push_back(saga::Step{
      "ship_order",
      [d](const StepContext& ctx) -> asio::awaitable<StepResult> {
        std::string body =
            json::serialize(json::object{{"order_id", ctx.data.at("order_id")}, {"address", ctx.data.at("address")}});
        co_return co_await call(d.shipping, d.token, ctx, http::Method::post, "/shipments", std::move(body), false,
                                "shipment");
      },
      [d](const StepContext& ctx) -> asio::awaitable<StepResult> {
        co_return co_await call(d.shipping, d.token, ctx, http::Method::delete_,
                                "/shipments/shp-" + str(ctx.data, "order_id"), "", true);
      }});

  // OrderConfirmed is appended in the transaction that completes the saga: one commit for
  // both, and an order is CONFIRMED exactly when its saga is completed. The same transaction
  // records that the order's reservation is to be committed: paid and shipped, nothing can
  // undo the order any more, and the committer commits reservations in batches after the
  // fact (app/reservation_committer.hpp) instead of a step on every order's path.
  def.on_completed = [&orders, &committer](mercado::storage::Tx& tx, const saga::State& s) -> mercado::Result<void> {
    const std::string order_id = str(s.data, "order_id");
    if (auto r = orders.confirm_in(tx, order_id, s.traceparent); !r) return r;
    return committer.enqueue_in(tx, "res-" + order_id);
  };
  return def;
}

}  // namespace order::app
