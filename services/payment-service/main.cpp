// payment-service: accounts as event streams (exercise 2), payments and refunds.
#include <boost/asio/co_spawn.hpp>

#include <mercado/eventsourcing/event_store.hpp>
#include <mercado/messaging/inbox.hpp>
#include <mercado/observability/log.hpp>
#include <mercado/service/backend.hpp>
#include <mercado/service/security.hpp>
#include <mercado/storage/migrations.hpp>

#include "api/routes.hpp"
#include "app/payments.hpp"

int main(int argc, char** argv) {
  namespace asio = boost::asio;
  using namespace mercado;
  service::App app("payment-service", "Mercado payment-service: event-sourced accounts, payments and refunds");
  service::Security security(app);
  if (auto rc = app.init(argc, argv)) return *rc;
  if (auto ok = security.load(); !ok) {
    log::error("cannot load the JWT secret", {{"error", ok.error().message}});
    return 1;
  }
  // 256 KiB of SQLite cache per connection: account commands read through the aggregate cache.
  auto backend = service::Backend::open(app, {.migrations = payment::app::migrations(), .sqlite_cache_kib = 256});
  if (!backend) return 1;  // Backend::open logged why
  auto& b = **backend;
  if (auto m = storage::migrate_blocking(b.db(), "mercado_eventstore", es::EventStore::migrations()); !m) {
    log::error("cannot migrate the event store", {{"error", m.error().message}});
    return 1;
  }
  es::EventStore store(b.shared_db(), payment::app::append_hook(b.outbox()));
  payment::app::Payments payments(store, b.db());

  // A registered user gets an account (once: the inbox and the deterministic event id).
  b.subscribe({.queue = "payment-service.accounts",
               .event_types = {"UserRegistered"},
               .handler = [&payments](const messaging::Delivery& d) -> asio::awaitable<messaging::Outcome> {
                 const auto* data = d.envelope.data.if_object();
                 const auto* user = data != nullptr ? data->if_contains("user_id") : nullptr;
                 if (user == nullptr || !user->is_string()) co_return messaging::Outcome::dead_letter("no user_id");
                 auto r = co_await payments.open(std::string(user->as_string()), d.envelope.traceparent);
                 if (!r) co_return messaging::Outcome::retry(r.error().message);
                 co_return messaging::Outcome::ack();
               }});

  http::OpenApi openapi{"payment-service", "0.1.0", "Event-sourced accounts, payments and refunds"};
  payment::api::register_routes(app, payments, security, openapi);
  http::add_openapi_route(app.server(), std::move(openapi));
  return app.run();
}
