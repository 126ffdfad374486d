// hello-service: a complete Mercado service in miniature. Copy this shape.
#include <mercado/service/app.hpp>

#include "api/routes.hpp"

int main(int argc, char** argv) {
  mercado::service::App app("hello-service", "Mercado sample service: greets people");
  hello::api::Settings settings;
  app.config().cli().add_option("--greeting", settings.word, "Greeting word (default: per language)")->envname("GREETING");
  app.config().cli().add_option("--upstream-url", settings.upstream_url, "Base URL for /chain/{name}")->envname("UPSTREAM_URL");
  if (auto rc = app.init(argc, argv)) return *rc;
  hello::api::register_routes(app.router(), settings, app.client());
  return app.run();
}
