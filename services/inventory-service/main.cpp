// inventory-service: products, stock and reservations (own database, outbox).
#include <mercado/observability/log.hpp>
#include <mercado/service/backend.hpp>
#include <mercado/service/security.hpp>

#include "api/routes.hpp"
#include "app/inventory.hpp"

int main(int argc, char** argv) {
  mercado::service::App app("inventory-service", "Mercado inventory-service: products, stock and reservations");
  mercado::service::Security security(app);
  if (auto rc = app.init(argc, argv)) return *rc;
  if (auto ok = security.load(); !ok) {
    mercado::log::error("cannot load the JWT secret", {{"error", ok.error().message}});
    return 1;
  }
  auto backend = mercado::service::Backend::open(app, {.migrations = inventory::app::migrations()});
  if (!backend) return 1;  // Backend::open logged why
  mercado::http::OpenApi openapi{"inventory-service", "0.1.0", "Products, stock and reservations"};
  inventory::api::register_routes(app, **backend, security, openapi);
  mercado::http::add_openapi_route(app.server(), std::move(openapi));
  return app.run();
}
