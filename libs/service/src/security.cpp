#include <mercado/service/security.hpp>

#include <cstdlib>

namespace mercado::service {

Security::Security(App& app) : app_(app) {
  app.config().cli().add_option("--jwt-secret-file", secret_file_, "File holding the JWT signing secret (else env JWT_SECRET)")
      ->envname("JWT_SECRET_FILE");
}

Result<void> Security::load() {
  const char* env = std::getenv("JWT_SECRET");
  auto secret = auth::load_secret(secret_file_, env != nullptr ? env : "");
  if (!secret) return fail(std::move(secret.error()));
  issuer_ = std::make_unique<auth::JwtIssuer>(*secret, std::string(kTokenIssuer), std::chrono::hours(1));
  verifier_ = std::make_unique<auth::JwtVerifier>(*secret, std::string(kTokenIssuer));
  service_token_ = std::make_unique<auth::ServiceToken>(*issuer_, app_.options().service_name);
  return {};
}

}  // namespace mercado::service
