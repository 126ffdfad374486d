#include <mercado/auth/bearer.hpp>

#include <mercado/http/headers.hpp>
#include <mercado/http/problem.hpp>

namespace mercado::auth {

Result<Claims> authenticate(const http::Request& req, const JwtVerifier& verifier) {
  auto h = req.header("Authorization");
  if (!h) return fail(Errc::unauthenticated, "missing bearer token");
  std::string_view v = *h;
  if (v.size() < 7 || !http::iequals(v.substr(0, 7), "Bearer ")) {
    return fail(Errc::unauthenticated, "the Authorization header must be 'Bearer <token>'");
  }
  v.remove_prefix(7);
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  return verifier.verify(v);
}

http::Response unauthorized(const http::Request& req, const Error& error) {
  auto res = http::problem(req, error);
  res.status = 401;
  const bool had_token = req.header("Authorization").has_value();
  res.headers.set("WWW-Authenticate", had_token ? "Bearer error=\"invalid_token\"" : "Bearer");
  return res;
}

std::optional<http::Response> require_subject(const http::Request& req, const Claims& claims, std::string_view owner) {
  if (claims.subject == owner) return std::nullopt;
  return http::problem(req, Error(Errc::permission_denied, "this resource belongs to another user"));
}

}  // namespace mercado::auth
