#pragma once
// The JWT secret and what is built from it, for the shop's services:
//   - JWT_SECRET_FILE (--jwt-secret-file) or, failing that, the JWT_SECRET environment
//     variable (never a command-line flag: it would show in `ps`); never logged.
//   - an issuer and verifier for tokens with iss "mercado" (user tokens from user-service,
//     service tokens with role=service), and this service's own service token.
// Construct before app.init() (it adds the option), load() after.

#include <memory>
#include <string>

#include <mercado/auth/jwt.hpp>
#include <mercado/auth/service_token.hpp>
#include <mercado/service/app.hpp>

namespace mercado::service {

inline constexpr std::string_view kTokenIssuer = "mercado";

class Security {
 public:
  explicit Security(App& app);
  Result<void> load();

  const auth::JwtIssuer& issuer() const { return *issuer_; }
  const auth::JwtVerifier& verifier() const { return *verifier_; }
  auth::ServiceToken& service_token() { return *service_token_; }

 private:
  App& app_;
  std::string secret_file_;
  std::unique_ptr<auth::JwtIssuer> issuer_;
  std::unique_ptr<auth::JwtVerifier> verifier_;
  std::unique_ptr<auth::ServiceToken> service_token_;
};

}  // namespace mercado::service
