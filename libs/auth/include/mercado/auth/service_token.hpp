#pragma once
// Service-to-service authentication: internal endpoints (reserve stock, take a payment,
// create a shipment) accept only tokens with the claim role=service, signed with the shared
// secret. Each service mints its own (subject "service:<name>") and renews it before it
// expires. The shop's internal calls are thus authenticated even without a mesh.

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include <mercado/auth/jwt.hpp>
#include <mercado/http/request.hpp>
#include <mercado/http/response.hpp>

namespace mercado::auth {

inline constexpr std::string_view kServiceRole = "service";

// Holds this service's token and renews it when less than a third of its life is left.
// Thread-safe.
class ServiceToken {
 public:
  ServiceToken(const JwtIssuer& issuer, std::string service_name);
  // "Bearer <token>", for the Authorization header.
  std::string authorization();

 private:
  const JwtIssuer& issuer_;
  std::string subject_;
  std::mutex mutex_;
  std::string header_;
  std::chrono::steady_clock::time_point renew_at_{};
};

bool is_service(const Claims& claims) noexcept;

// nullopt when the request carries a valid service token; otherwise the 401/403 to answer.
std::optional<http::Response> require_service(const http::Request& req, const JwtVerifier& verifier);
// nullopt when the token's subject is `owner` or it is a service token.
std::optional<http::Response> require_owner_or_service(const http::Request& req, const JwtVerifier& verifier,
                                                       std::string_view owner);

}  // namespace mercado::auth
