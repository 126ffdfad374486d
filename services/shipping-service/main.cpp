// shipping-service: shipments for orders (own database, outbox, service-token API).
#include <mercado/observability/log.hpp>
#include <mercado/service/backend.hpp>
#include <mercado/service/security.hpp>

#include "api/routes.hpp"
#include "app/shipments.hpp"

int main(int argc, char** argv) {
  mercado::service::App app("shipping-service", "Mercado shipping-service: shipments for orders");
  mercado::service::Security security(app);
  shipping::api::Settings settings{{"Atlantis"}};
  app.config().cli().add_option("--blocked-regions", settings.blocked_regions, "Regions we do not ship to")
      ->envname("SHIPPING_BLOCKED_REGIONS")->delimiter(',');
  if (auto rc = app.init(argc, argv)) return *rc;
  if (auto ok = security.load(); !ok) {
    mercado::log::error("cannot load the JWT secret", {{"error", ok.error().message}});
    return 1;
  }
  auto backend = mercado::service::Backend::open(app, {.migrations = shipping::app::migrations()});
  if (!backend) return 1;  // Backend::open logged why
  mercado::http::OpenApi openapi{"shipping-service", "0.1.0", "Shipments for orders"};
  shipping::api::register_routes(app, **backend, security, settings, openapi);
  mercado::http::add_openapi_route(app.server(), std::move(openapi));
  return app.run();
}
