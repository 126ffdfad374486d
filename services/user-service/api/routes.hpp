#pragma once
// user-service HTTP API.
//   POST /users {email, password, name}      -> 201 {id, email, name}; 409 email-taken;
//                                               400 listing every invalid field; Idempotency-Key
//   POST /auth/login {email, password}       -> 200 {access_token, token_type: "Bearer", expires_in, user_id};
//                                               401 invalid-credentials
//   GET  /users/{id}                         -> 200 {id, email, name}        (the token's owner)
//   GET  /users/{id}/profile, PUT /users/{id}/profile {name, address?, phone?}   (owner)
//   GET  /users/{id}/preferences, PUT ... {language, currency, newsletter}        (owner)
// "Owner" endpoints answer 401 without a valid token and 403 for another user's token;
// service tokens may read.

#include <mercado/http/openapi.hpp>
#include <mercado/service/backend.hpp>
#include <mercado/service/security.hpp>

namespace user::api {

// `hashing` runs argon2id (tens of milliseconds of CPU each): a pool of its own, so that
// logins never queue the service's database calls behind them.
void register_routes(mercado::service::App& app, mercado::service::Backend& backend, mercado::core::BlockingPool& hashing,
                     mercado::service::Security& security,
                     mercado::http::OpenApi& openapi);

}  // namespace user::api
