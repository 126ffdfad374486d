#pragma once
// JSON Web Tokens (RFC 7519) signed with HS256 (HMAC-SHA256 from libsodium). The issuer signs
// {iss, sub, iat, exp} (+ extra string claims); verifiers check the signature, that the
// header's alg is exactly HS256 (no "none", no algorithm confusion), the issuer, and exp /
// nbf with a small leeway. Secrets are never logged. Thread-safe.

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <mercado/core/clock.hpp>
#include <mercado/core/error.hpp>

namespace mercado::auth {

struct Claims {
  std::string issuer;
  std::string subject;
  std::int64_t issued_at = 0;   // seconds since epoch
  std::int64_t expires_at = 0;  // seconds since epoch
  std::map<std::string, std::string> extra;
};

class JwtIssuer {
 public:
  JwtIssuer(std::string secret, std::string issuer, std::chrono::seconds ttl,
            const core::Clock& clock = core::SystemClock::instance());
  Result<std::string> issue(std::string_view subject, const std::map<std::string, std::string>& extra = {}) const;
  std::chrono::seconds ttl() const noexcept { return ttl_; }

 private:
  std::string secret_;
  std::string issuer_;
  std::chrono::seconds ttl_;
  const core::Clock& clock_;
};

// Verified tokens are remembered (up to kCachedTokens; the set is emptied when full): a
// token seen before costs a lookup and its exp / nbf check instead of two base64 decodes,
// two JSON parses and an HMAC. Only tokens that passed every check are kept.
class JwtVerifier {
 public:
  static constexpr std::size_t kCachedTokens = 256;

  JwtVerifier(std::string secret, std::string issuer, std::chrono::seconds leeway = std::chrono::seconds(30),
              const core::Clock& clock = core::SystemClock::instance());
  // unauthenticated with a client-safe reason ("token expired", "invalid signature", ...).
  Result<Claims> verify(std::string_view token) const;
  // Tokens remembered as verified (for tests).
  std::size_t cached_tokens() const;

 private:
  struct Verified {
    Claims claims;
    std::optional<std::int64_t> not_before;
  };
  struct TokenHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  std::string secret_;
  std::string issuer_;
  std::chrono::seconds leeway_;
  const core::Clock& clock_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, Verified, TokenHash, std::equal_to<>> cache_;
};

// Reads the signing secret: the file named by `file_path` (trailing newline stripped) when
// set, else `env_value`. invalid_argument when neither gives at least 32 bytes.
Result<std::string> load_secret(std::string_view file_path, std::string_view env_value);

// Reads the claims of a token WITHOUT verifying it (e.g. to find whose key to verify
// with, as Kong's jwt plugin does with `iss`). Never trust the result by itself.
Result<Claims> peek_claims(std::string_view token);
// The token's header "alg" without verifying it.
Result<std::string> peek_algorithm(std::string_view token);

}  // namespace mercado::auth
