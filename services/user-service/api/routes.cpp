#include "api/routes.hpp"

#include <mercado/auth/bearer.hpp>
#include <mercado/auth/password.hpp>
#include <mercado/http/json_body.hpp>
#include <mercado/http/problem.hpp>
#include <mercado/observability/log.hpp>
#include <mercado/service/idempotency.hpp>

#include "app/users.hpp"

namespace user::api {

namespace http = mercado::http;
namespace auth = mercado::auth;
using boost::asio::awaitable;
using mercado::Errc;
using mercado::Error;
using mercado::Result;
using mercado::storage::Tx;
using mercado::storage::TxMode;

namespace {

struct Login {
  std::string email;
  std::string password;
};
BOOST_DESCRIBE_STRUCT(Login, (), (email, password))

struct TokenView {
  std::string access_token;
  std::string token_type;
  std::int64_t expires_in = 0;
  std::string user_id;  // the token's subject, so a client that logs in knows whose /users/{id} it may use
};
BOOST_DESCRIBE_STRUCT(TokenView, (), (access_token, token_type, expires_in, user_id))

Error invalid_credentials() {
  Error e(Errc::unauthenticated, "invalid email or password");
  e.type = "invalid-credentials";
  return e;
}

}  // namespace

void register_routes(mercado::service::App& app, mercado::service::Backend& backend, mercado::core::BlockingPool& pool,
                     mercado::service::Security& security,
                     http::OpenApi& openapi) {
  auto& r = app.router();
  auto& db = backend.db();
  // Unknown emails are checked against this hash too, so a login takes as long whether or
  // not the address is registered.
  auto dummy_hash = std::make_shared<std::string>(auth::hash_password("not-a-real-password-0").value_or(""));

  r.post("/users", [&db, &pool, &backend](http::Request& req) -> awaitable<http::Response> {
    auto in = http::read_json<domain::Registration>(req);
    if (!in) co_return http::problem(req, in.error());
    // Captures by reference only: GCC 12 destroys a co_await operand's lambda temporary twice
    // when its captures have destructors (the values live in this coroutine's frame).
    auto hash = co_await pool.run([&in] { return auth::hash_password(in->password); });
    if (!hash) co_return http::problem(req, hash.error());
    const std::string tp = req.trace().traceparent();
    co_return co_await mercado::service::idempotent(db, req, [&](Tx& tx) -> Result<http::Response> {
      auto user = app::register_user(tx, backend.outbox(), *in, *hash, tp);
      if (!user) return mercado::fail(std::move(user.error()));
      auto res = http::json_response(201, *user);
      res.headers.set("Location", "/users/" + user->id);
      return res;
    });
  }, "Registers a user");

  r.post("/auth/login", [&db, &pool, &security, dummy_hash](http::Request& req) -> awaitable<http::Response> {
    auto in = http::read_json<Login>(req);
    if (!in) co_return http::problem(req, in.error());
    auto creds = co_await db.transaction([&](Tx& tx) { return app::credentials(tx, in->email); }, TxMode::read);
    if (!creds) co_return http::problem(req, creds.error());
    const std::string stored = *creds ? (*creds)->password_hash : *dummy_hash;
    const bool ok = co_await pool.run([&in, &stored] { return auth::verify_password(in->password, stored); });
    if (!ok || !*creds) {
      mercado::log::info(req.trace(), "login failed");  // no email: logs are not an oracle
      auto res = http::problem(req, invalid_credentials());
      res.headers.set("WWW-Authenticate", "Bearer");
      co_return res;
    }
    std::map<std::string, std::string> claims;  // (built apart: GCC 12 mis-compiles braced lists in coroutines)
    claims["email"] = domain::normalize_email(in->email);
    auto token = security.issuer().issue((*creds)->id, claims);
    if (!token) co_return http::problem(req, token.error());
    co_return http::json_response(200, TokenView{*token, "Bearer", security.issuer().ttl().count(), (*creds)->id});
  }, "Logs in: a JWT (HS256) for the user");

  r.get("/users/{id}", [&db, &security](http::Request& req) -> awaitable<http::Response> {
    const std::string id = req.param("id").value_or("");
    if (auto denied = auth::require_owner_or_service(req, security.verifier(), id)) co_return *denied;
    auto u = co_await db.transaction([&](Tx& tx) { return app::find_user(tx, id); }, TxMode::read);
    if (!u) co_return http::problem(req, u.error());
    if (!*u) co_return http::problem(req, Error(Errc::not_found, "no user " + id));
    co_return http::json_response(200, **u);
  }, "Reads a user (owner)");

  r.get("/users/{id}/profile", [&db, &security](http::Request& req) -> awaitable<http::Response> {
    const std::string id = req.param("id").value_or("");
    if (auto denied = auth::require_owner_or_service(req, security.verifier(), id)) co_return *denied;
    auto p = co_await db.transaction([&](Tx& tx) { return app::find_profile(tx, id); }, TxMode::read);
    if (!p) co_return http::problem(req, p.error());
    if (!*p) co_return http::problem(req, Error(Errc::not_found, "no user " + id));
    co_return http::json_response(200, **p);
  }, "Reads a profile (owner)");

  r.put("/users/{id}/profile", [&db, &security](http::Request& req) -> awaitable<http::Response> {
    const std::string id = req.param("id").value_or("");
    if (auto denied = auth::require_owner_or_service(req, security.verifier(), id)) co_return *denied;
    auto in = http::read_json<domain::Profile>(req);
    if (!in) co_return http::problem(req, in.error());
    auto p = co_await db.transaction([&](Tx& tx) { return app::save_profile(tx, id, *in); });
    if (!p) co_return http::problem(req, p.error());
    co_return http::json_response(200, *p);
  }, "Updates a profile (owner)");

  r.get("/users/{id}/preferences", [&db, &security](http::Request& req) -> awaitable<http::Response> {
    const std::string id = req.param("id").value_or("");
    if (auto denied = auth::require_owner_or_service(req, security.verifier(), id)) co_return *denied;
    auto p = co_await db.transaction([&](Tx& tx) { return app::find_preferences(tx, id); }, TxMode::read);
    if (!p) co_return http::problem(req, p.error());
    if (!*p) co_return http::problem(req, Error(Errc::not_found, "no user " + id));
    co_return http::json_response(200, **p);
  }, "Reads preferences (owner)");

  r.put("/users/{id}/preferences", [&db, &security](http::Request& req) -> awaitable<http::Response> {
    const std::string id = req.param("id").value_or("");
    if (auto denied = auth::require_owner_or_service(req, security.verifier(), id)) co_return *denied;
    auto in = http::read_json<domain::Preferences>(req);
    if (!in) co_return http::problem(req, in.error());
    auto p = co_await db.transaction([&](Tx& tx) { return app::save_preferences(tx, id, *in); });
    if (!p) co_return http::problem(req, p.error());
    co_return http::json_response(200, *p);
  }, "Replaces preferences (owner)");

  openapi.describe(http::Method::post, "/users",
                   {.request = http::schema_of<domain::Registration>(), .response = http::schema_of<app::UserView>(), .status = 201,
                    .parameters = {http::idempotency_key_header()},
                    .errors = {{409, "The email address is already registered"},
                               {422, "The Idempotency-Key was used with a different request"}}});
  openapi.describe(http::Method::post, "/auth/login", {.request = http::schema_of<Login>(), .response = http::schema_of<TokenView>(),
                                                       .errors = {{401, "Wrong email or password"}}});
  openapi.describe(http::Method::get, "/users/{id}", {.response = http::schema_of<app::UserView>(), .bearer = true});
  openapi.describe(http::Method::get, "/users/{id}/profile", {.response = http::schema_of<domain::Profile>(), .bearer = true});
  openapi.describe(http::Method::put, "/users/{id}/profile",
                   {.request = http::schema_of<domain::Profile>(), .response = http::schema_of<domain::Profile>(), .bearer = true});
  openapi.describe(http::Method::get, "/users/{id}/preferences", {.response = http::schema_of<domain::Preferences>(), .bearer = true});
  openapi.describe(http::Method::put, "/users/{id}/preferences",
                   {.request = http::schema_of<domain::Preferences>(), .response = http::schema_of<domain::Preferences>(),
                    .bearer = true});
}

}  // namespace user::api
