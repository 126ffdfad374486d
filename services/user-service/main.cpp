// user-service: users, profiles, preferences, credentials; issues JWTs; publishes UserRegistered.
#include <mercado/observability/log.hpp>
#include <mercado/service/backend.hpp>
#include <mercado/service/security.hpp>

#include "api/routes.hpp"
#include "app/users.hpp"

int main(int argc, char** argv) {
  mercado::service::App app("user-service", "Mercado user-service: users, profiles, preferences and logins");
  mercado::service::Security security(app);
  if (auto rc = app.init(argc, argv)) return *rc;
  if (auto ok = security.load(); !ok) {
    mercado::log::error("cannot load the JWT secret", {{"error", ok.error().message}});
    return 1;
  }
  auto backend = mercado::service::Backend::open(app, {.migrations = user::app::migrations()});
  if (!backend) return 1;  // Backend::open logged why
  mercado::http::OpenApi openapi{"user-service", "0.1.0", "Users, profiles, preferences and logins"};
  mercado::core::BlockingPool hashing(2);  // argon2id, apart from the database's pool
  user::api::register_routes(app, **backend, hashing, security, openapi);
  mercado::http::add_openapi_route(app.server(), std::move(openapi));
  return app.run();
}
