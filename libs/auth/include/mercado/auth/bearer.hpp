#pragma once
// Bearer-token authentication for HTTP handlers: services verify the JWT themselves, so
// they are safe without a gateway in front.
//
//   auto claims = auth::authenticate(req, verifier);          // 401 problem on failure
//   if (!claims) co_return auth::unauthorized(req, claims.error());
//   if (auto denied = auth::require_subject(req, *claims, user_id)) co_return *denied;  // 403

#include <optional>
#include <string_view>

#include <mercado/auth/jwt.hpp>
#include <mercado/http/request.hpp>
#include <mercado/http/response.hpp>

namespace mercado::auth {

// The verified claims of `Authorization: Bearer <token>`; unauthenticated when missing or invalid.
Result<Claims> authenticate(const http::Request& req, const JwtVerifier& verifier);
// 401 problem+json with `WWW-Authenticate: Bearer` (and error="invalid_token" when a token was sent).
http::Response unauthorized(const http::Request& req, const Error& error);
// A 403 problem unless the token's subject is `owner`.
std::optional<http::Response> require_subject(const http::Request& req, const Claims& claims, std::string_view owner);

}  // namespace mercado::auth
