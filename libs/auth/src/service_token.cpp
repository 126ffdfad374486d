#include <mercado/auth/service_token.hpp>

#include <mercado/auth/bearer.hpp>
#include <mercado/http/problem.hpp>

namespace mercado::auth {

ServiceToken::ServiceToken(const JwtIssuer& issuer, std::string service_name)
    : issuer_(issuer), subject_("service:" + std::move(service_name)) {}

std::string ServiceToken::authorization() {
  std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (header_.empty() || now >= renew_at_) {
    auto token = issuer_.issue(subject_, {{"role", std::string(kServiceRole)}});
    if (token) {
      header_ = "Bearer " + *token;
      renew_at_ = now + issuer_.ttl() * 2 / 3;
    }
  }
  return header_;
}

bool is_service(const Claims& claims) noexcept {
  auto it = claims.extra.find("role");
  return it != claims.extra.end() && it->second == kServiceRole;
}

std::optional<http::Response> require_service(const http::Request& req, const JwtVerifier& verifier) {
  auto claims = authenticate(req, verifier);
  if (!claims) return unauthorized(req, claims.error());
  if (!is_service(*claims)) {
    return http::problem(req, Error(Errc::permission_denied, "this endpoint is for Mercado services only"));
  }
  return std::nullopt;
}

std::optional<http::Response> require_owner_or_service(const http::Request& req, const JwtVerifier& verifier,
                                                       std::string_view owner) {
  auto claims = authenticate(req, verifier);
  if (!claims) return unauthorized(req, claims.error());
  if (is_service(*claims)) return std::nullopt;
  return require_subject(req, *claims, owner);
}

}  // namespace mercado::auth
