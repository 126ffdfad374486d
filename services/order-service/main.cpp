// order-service: the Order aggregate (event sourced), the order saga over HTTP and the
// orders read model (CQRS).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json.hpp>

#include <mercado/eventsourcing/event_store.hpp>
#include <mercado/eventsourcing/projection.hpp>
#include <mercado/observability/log.hpp>
#include <mercado/resilience/service_client.hpp>
#include <mercado/saga/saga.hpp>
#include <mercado/service/backend.hpp>
#include <mercado/service/security.hpp>
#include <mercado/storage/migrations.hpp>

#include "api/routes.hpp"
#include "app/order_saga.hpp"
#include "app/orders.hpp"
#include "app/reservation_committer.hpp"

namespace {

namespace asio = boost::asio;
namespace bj = boost::json;
using namespace mercado;

// The saga's input, from the events that create an order (OrderCreated + ItemAdded...).
std::optional<std::pair<std::string, bj::object>> saga_input(std::span<const es::RecordedEvent> events) {
  if (events.empty() || events.front().event_type != "OrderCreated") return std::nullopt;
  const std::string order_id = events.front().stream_id.substr(std::string_view("order-").size());
  const auto created = events.front().json().as_object();
  bj::array items;
  std::int64_t total = 0;
  for (const auto& e : events) {
    if (e.event_type != "ItemAdded") continue;
    auto d = e.json().as_object();
    total += d.at("quantity").as_int64() * d.at("price").as_int64();
    items.push_back(std::move(d));
  }
  bj::object input;
  input["order_id"] = order_id;
  input["customer_id"] = created.at("customer_id");
  input["address"] = created.at("address");
  input["items"] = std::move(items);
  input["total"] = total;
  return std::pair{order_id, std::move(input)};
}

resilience::PipelineConfig downstream_policies() {
  resilience::PipelineConfig p;
  p.circuit_breaker = resilience::CircuitBreakerConfig::consecutive(5, std::chrono::seconds(10), 3);
  p.retry.max_attempts = 3;
  p.retry.backoff = {.initial = std::chrono::milliseconds(50), .multiplier = 2, .jitter = 0.5,
                     .max = std::chrono::milliseconds(1000)};
  p.bulkhead = resilience::BulkheadConfig{.max_concurrent_calls = 256};
  p.total_timeout = std::chrono::seconds(5);
  p.attempt_timeout = std::chrono::seconds(2);
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  service::App app("order-service", "Mercado order-service: orders (event sourced), the order saga and the read model");
  service::Security security(app);
  std::string inventory_url = "http://127.0.0.1:8002", payment_url = "http://127.0.0.1:8003",
              shipping_url = "http://127.0.0.1:8004";
  auto& cli = app.config().cli();
  cli.add_option("--inventory-url", inventory_url, "inventory-service base URL")->envname("INVENTORY_URL");
  cli.add_option("--payment-url", payment_url, "payment-service base URL")->envname("PAYMENT_URL");
  cli.add_option("--shipping-url", shipping_url, "shipping-service base URL")->envname("SHIPPING_URL");
  std::int64_t price_ttl_ms = 5000;
  cli.add_option("--price-ttl-ms", price_ttl_ms,
                 "How long a product's price from the catalogue is reused, in ms (0: ask for every order)")
      ->envname("PRICE_TTL_MS")
      ->check(CLI::Range(std::int64_t{0}, std::int64_t{24 * 3600 * 1000}));
  if (auto rc = app.init(argc, argv)) return *rc;
  if (auto ok = security.load(); !ok) {
    log::error("cannot load the JWT secret", {{"error", ok.error().message}});
    return 1;
  }
  auto backend = service::Backend::open(app, {.migrations = order::app::migrations()});
  if (!backend) return 1;  // Backend::open logged why
  auto& b = **backend;
  for (auto [scope, m] : {std::pair{"mercado_eventstore", es::EventStore::migrations()},
                          std::pair{"mercado_projections", es::ProjectionRunner::migrations()},
                          std::pair{"mercado_saga", saga::Orchestrator::migrations()}}) {
    if (auto r = storage::migrate_blocking(b.db(), scope, m); !r) {
      log::error("migration failed", {{"scope", scope}, {"error", r.error().message}});
      return 1;
    }
  }

  auto& metrics = app.metrics();
  auto& created = metrics.counter("orders_created_total", "Orders placed").get();
  auto& confirmed = metrics.counter("orders_confirmed_total", "Orders confirmed by the saga").get();
  auto& cancelled = metrics.counter("orders_cancelled_total", "Orders cancelled by the saga", {"reason"});

  resilience::ServiceClient inventory(app.client(), {.name = "inventory", .base_url = inventory_url, .policies = downstream_policies()});
  resilience::ServiceClient payment(app.client(), {.name = "payment", .base_url = payment_url, .policies = downstream_policies()});
  resilience::ServiceClient shipping(app.client(), {.name = "shipping", .base_url = shipping_url, .policies = downstream_policies()});

  saga::Orchestrator sagas(b.shared_db(), app.runtime().context(0).get_executor(),
                           {.owner = app.options().instance_id, .forward_checkpoint = saga::ForwardCheckpoint::deferred,
                            .metrics = &metrics});
  auto outbox_hook = order::app::append_hook(b.outbox());
  es::ProjectionRunner* view_runner = nullptr;  // set below: the runner needs the store
  // The order's events, its integration events (outbox), its saga and the orders_view read
  // model (an inline projection) commit together.
  es::EventStore store(b.shared_db(), [&](storage::Tx& tx, std::span<const es::RecordedEvent> events) -> Result<void> {
    if (auto r = outbox_hook(tx, events); !r) return r;
    if (auto input = saga_input(events)) {
      std::optional<obs::TraceContext> trace;
      boost::system::error_code ec;
      auto meta = bj::parse(events.front().metadata, ec);
      if (!ec && meta.is_object() && meta.as_object().contains("traceparent")) {
        trace = obs::TraceContext::parse(meta.as_object().at("traceparent").as_string());
      }
      auto c = sagas.create_in(tx, order::app::kOrderSaga, input->first, input->second, trace ? &*trace : nullptr);
      if (!c) return fail(std::move(c.error()));
    }
    return view_runner->catch_up_in(tx, events);
  });
  order::app::OrdersProjection projection;
  es::ProjectionRunner view(store, projection);
  view_runner = &view;
  order::app::Orders orders(store, view);
  order::app::ReservationCommitter committer(b.shared_db(), inventory, security.service_token(), metrics);
  sagas.define(order::app::order_saga(orders, {inventory, payment, shipping, security.service_token()}, committer));
  sagas.on_finished([&](const saga::State& s) {
    if (s.status == saga::Status::completed) {
      confirmed.inc();
    } else {
      cancelled.with({order::app::reason_slug(s.failure)}).inc();
    }
  });

  // Events an older order-service appended without the inline projection: applied now
  // (the first append would apply them too).
  asio::co_spawn(app.runtime().context(0), [&]() -> asio::awaitable<void> {
    if (auto r = co_await view.catch_up(); !r) log::error("orders_view catch-up failed", {{"error", r.error().message}});
  }, asio::detached);
  asio::co_spawn(app.runtime().context(0), [&]() -> asio::awaitable<void> {
    auto n = co_await sagas.resume_all();
    if (!n) log::error("cannot resume sagas", {{"error", n.error().message}});
  }, asio::detached);
  committer.start(app.runtime().context(0).get_executor());
  app.on_shutdown([&]() -> asio::awaitable<void> {
    if (!co_await sagas.shutdown(std::chrono::seconds(5))) log::warn("sagas still running at shutdown; they resume on restart");
    co_await committer.stop();
  });

  http::OpenApi openapi{"order-service", "0.1.0", "Orders, the order saga and the orders read model"};
  order::app::Catalogue catalogue(inventory, {.ttl = std::chrono::milliseconds(price_ttl_ms)});
  order::api::register_routes(app, {orders, sagas, catalogue, security, created}, openapi);
  http::add_openapi_route(app.server(), std::move(openapi));
  return app.run();
}
