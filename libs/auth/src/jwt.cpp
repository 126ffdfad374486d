#include <mercado/auth/jwt.hpp>

#include <sodium.h>

#include "sodium_init.hpp"

#include <boost/json.hpp>

#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

// HS256 JWS in compact form (RFC 7515 / 7519): base64url(header) "." base64url(claims) "."
// base64url(HMAC-SHA256(key, first two parts)). The primitives are libsodium's (HMAC-SHA256,
// constant-time comparison, strict base64url), the JSON Boost.JSON's. libjwt did this before;
// its OpenSSL 3 initialisation touched 2 MiB of libcrypto in every service (bench/RESULTS.md).

namespace mercado::auth {

namespace {

constexpr int kB64 = sodium_base64_VARIANT_URLSAFE_NO_PADDING;

std::string b64url_encode(std::string_view in) {
  std::string out(sodium_base64_ENCODED_LEN(in.size(), kB64), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(in.data()), in.size(), kB64);
  out.resize(std::strlen(out.c_str()));
  return out;
}

std::optional<std::string> b64url_decode(std::string_view in) {
  std::string out(in.size() * 3 / 4 + 3, '\0');
  std::size_t len = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), in.data(), in.size(), nullptr, &len,
                        &end, kB64) != 0 ||
      end != in.data() + in.size()) {
    return std::nullopt;
  }
  out.resize(len);
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view message) {
  detail::ensure_sodium();
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, reinterpret_cast<const unsigned char*>(key.data()), key.size());
  crypto_auth_hmacsha256_update(&st, reinterpret_cast<const unsigned char*>(message.data()), message.size());
  std::string mac(crypto_auth_hmacsha256_BYTES, '\0');
  crypto_auth_hmacsha256_final(&st, reinterpret_cast<unsigned char*>(mac.data()));
  sodium_memzero(&st, sizeof st);
  return mac;
}

std::int64_t epoch_seconds(const core::Clock& clock) {
  return std::chrono::duration_cast<std::chrono::seconds>(clock.wall_now().time_since_epoch()).count();
}

Error unauthenticated(std::string msg) { return Error(Errc::unauthenticated, std::move(msg)); }

// The three base64url parts of a compact JWS (exactly two dots).
struct Parts {
  std::string_view header, payload, signature;
  std::string_view signing_input;  // header "." payload
};

Result<Parts> split(std::string_view token) {
  auto d1 = token.find('.');
  if (d1 == std::string_view::npos) return fail(unauthenticated("malformed token"));
  auto d2 = token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos) {
    return fail(unauthenticated("malformed token"));
  }
  return Parts{token.substr(0, d1), token.substr(d1 + 1, d2 - d1 - 1), token.substr(d2 + 1), token.substr(0, d2)};
}

Result<boost::json::object> json_part(std::string_view b64) {
  auto text = b64url_decode(b64);
  if (!text) return fail(unauthenticated("malformed token"));
  boost::system::error_code ec;
  auto v = boost::json::parse(*text, ec);
  if (ec || !v.is_object()) return fail(unauthenticated("malformed token"));
  return std::move(v.as_object());
}

Claims claims_of(const boost::json::object& o) {
  Claims c;
  for (const auto& kv : o) {
    std::string_view k = kv.key();
    const auto& val = kv.value();
    if (k == "iss" && val.is_string()) c.issuer = val.as_string();
    else if (k == "sub" && val.is_string()) c.subject = val.as_string();
    else if (k == "iat" && val.is_int64()) c.issued_at = val.as_int64();
    else if (k == "exp" && val.is_int64()) c.expires_at = val.as_int64();
    else if (val.is_string()) c.extra.emplace(std::string(k), std::string(val.as_string()));
  }
  return c;
}

}  // namespace

JwtIssuer::JwtIssuer(std::string secret, std::string issuer, std::chrono::seconds ttl, const core::Clock& clock)
    : secret_(std::move(secret)), issuer_(std::move(issuer)), ttl_(ttl), clock_(clock) {}

Result<std::string> JwtIssuer::issue(std::string_view subject, const std::map<std::string, std::string>& extra) const {
  const auto now = epoch_seconds(clock_);
  boost::json::object claims;
  claims["iss"] = issuer_;
  claims["sub"] = subject;
  claims["iat"] = now;
  claims["exp"] = now + ttl_.count();
  for (const auto& [k, v] : extra) {
    if (k == "iss" || k == "sub" || k == "iat" || k == "exp") return fail(Errc::internal, "cannot set claim " + k);
    claims[k] = v;
  }
  static const std::string kHeader = b64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  std::string token = kHeader;
  token += '.';
  token += b64url_encode(boost::json::serialize(claims));
  const std::string mac = hmac_sha256(secret_, token);
  token += '.';
  token += b64url_encode(mac);
  return token;
}

JwtVerifier::JwtVerifier(std::string secret, std::string issuer, std::chrono::seconds leeway, const core::Clock& clock)
    : secret_(std::move(secret)), issuer_(std::move(issuer)), leeway_(leeway), clock_(clock) {}

namespace {

// exp / nbf against `now` with the verifier's leeway (nbf: nullopt when the token has none).
Result<void> check_time(std::int64_t expires_at, std::optional<std::int64_t> not_before, std::int64_t now,
                        std::int64_t leeway) {
  if (now > expires_at + leeway) return fail(unauthenticated("token expired"));
  if (not_before && now + leeway < *not_before) return fail(unauthenticated("token not yet valid"));
  return {};
}

}  // namespace

Result<Claims> JwtVerifier::verify(std::string_view token) const {
  const auto now = epoch_seconds(clock_);
  {
    // A token verified before: everything but the time is a function of its bytes and of
    // this verifier's secret and issuer, so only exp and nbf are checked again.
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache_.find(token); it != cache_.end()) {
      if (auto t = check_time(it->second.claims.expires_at, it->second.not_before, now, leeway_.count()); !t) {
        return fail(std::move(t.error()));
      }
      return it->second.claims;
    }
  }
  if (token.size() > 8192) return fail(unauthenticated("token too long"));
  auto parts = split(token);
  if (!parts) return fail(parts.error());
  auto header = json_part(parts->header);
  if (!header) return fail(header.error());
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->value().is_string() || alg->value().as_string() != "HS256") {
    return fail(unauthenticated("unsupported token algorithm (HS256 expected)"));
  }
  auto signature = b64url_decode(parts->signature);
  const std::string expected = hmac_sha256(secret_, parts->signing_input);
  if (!signature || signature->size() != expected.size() ||
      sodium_memcmp(signature->data(), expected.data(), expected.size()) != 0) {
    return fail(unauthenticated("invalid signature"));
  }
  auto payload = json_part(parts->payload);
  if (!payload) return fail(payload.error());
  Claims claims = claims_of(*payload);
  if (claims.expires_at == 0) return fail(unauthenticated("token has no expiry"));
  std::optional<std::int64_t> not_before;
  if (auto nbf = payload->find("nbf"); nbf != payload->end()) {
    if (!nbf->value().is_int64()) return fail(unauthenticated("malformed token"));
    not_before = nbf->value().as_int64();
  }
  if (auto t = check_time(claims.expires_at, not_before, now, leeway_.count()); !t) return fail(std::move(t.error()));
  if (!issuer_.empty() && claims.issuer != issuer_) return fail(unauthenticated("unexpected token issuer"));
  if (claims.subject.empty()) return fail(unauthenticated("token has no subject"));
  std::lock_guard lock(cache_mutex_);
  if (cache_.size() >= kCachedTokens) cache_.clear();  // bounded; refilled by the tokens in use
  cache_.emplace(std::string(token), Verified{claims, not_before});
  return claims;
}

std::size_t JwtVerifier::cached_tokens() const {
  std::lock_guard lock(cache_mutex_);
  return cache_.size();
}

Result<Claims> peek_claims(std::string_view token) {
  auto parts = split(token);
  if (!parts) return fail(parts.error());
  auto payload = json_part(parts->payload);
  if (!payload) return fail(payload.error());
  return claims_of(*payload);
}

Result<std::string> peek_algorithm(std::string_view token) {
  auto parts = split(token);
  if (!parts) return fail(parts.error());
  auto header = json_part(parts->header);
  if (!header) return fail(header.error());
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->value().is_string()) return fail(unauthenticated("token has no algorithm"));
  return std::string(alg->value().as_string());
}

Result<std::string> load_secret(std::string_view file_path, std::string_view env_value) {
  std::string secret;
  if (!file_path.empty()) {
    std::ifstream in{std::string(file_path)};
    if (!in) return fail(Errc::invalid_argument, "cannot read JWT_SECRET_FILE " + std::string(file_path));
    std::stringstream ss;
    ss << in.rdbuf();
    secret = ss.str();
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  } else {
    secret = env_value;
  }
  if (secret.size() < 32) {
    return fail(Errc::invalid_argument, "the JWT secret must be at least 32 bytes (JWT_SECRET_FILE or JWT_SECRET)");
  }
  return secret;
}

}  // namespace mercado::auth
