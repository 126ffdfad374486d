#include <mercado/auth/jwt.hpp>

#include <jwt.h>

#include <boost/json.hpp>

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

namespace mercado::auth {

namespace {

struct JwtFree {
  void operator()(jwt_t* j) const { jwt_free(j); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtFree>;

std::int64_t epoch_seconds(const core::Clock& clock) {
  return std::chrono::duration_cast<std::chrono::seconds>(clock.wall_now().time_since_epoch()).count();
}

Result<Claims> claims_of(jwt_t* j) {
  Claims c;
  char* grants = jwt_get_grants_json(j, nullptr);
  if (grants == nullptr) return fail(Errc::unauthenticated, "malformed token");
  std::unique_ptr<char, decltype(&std::free)> own(grants, &std::free);
  boost::system::error_code ec;
  auto v = boost::json::parse(grants, ec);
  if (ec || !v.is_object()) return fail(Errc::unauthenticated, "malformed token");
  for (const auto& kv : v.as_object()) {
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

Error unauthenticated(std::string msg) { return Error(Errc::unauthenticated, std::move(msg)); }

// Splits a compact JWS and returns the decoded header JSON (no verification).
Result<boost::json::object> header_of(std::string_view token) {
  auto dot = token.find('.');
  if (dot == std::string_view::npos || token.find('.', dot + 1) == std::string_view::npos) {
    return fail(unauthenticated("malformed token"));
  }
  std::string b64(token.substr(0, dot));
  for (auto& ch : b64) {
    if (ch == '-') ch = '+';
    if (ch == '_') ch = '/';
  }
  while (b64.size() % 4 != 0) b64 += '=';
  static constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  for (char ch : b64) {
    if (ch == '=') break;
    auto pos = kAlphabet.find(ch);
    if (pos == std::string_view::npos) return fail(unauthenticated("malformed token"));
    buf = (buf << 6) | static_cast<unsigned>(pos);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((buf >> bits) & 0xff);
    }
  }
  boost::system::error_code ec;
  auto v = boost::json::parse(out, ec);
  if (ec || !v.is_object()) return fail(unauthenticated("malformed token"));
  return v.as_object();
}

}  // namespace

JwtIssuer::JwtIssuer(std::string secret, std::string issuer, std::chrono::seconds ttl, const core::Clock& clock)
    : secret_(std::move(secret)), issuer_(std::move(issuer)), ttl_(ttl), clock_(clock) {}

Result<std::string> JwtIssuer::issue(std::string_view subject, const std::map<std::string, std::string>& extra) const {
  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0) return fail(Errc::internal, "jwt_new failed");
  JwtPtr j(raw);
  const auto now = epoch_seconds(clock_);
  std::string sub(subject);
  if (jwt_add_grant(j.get(), "iss", issuer_.c_str()) != 0 || jwt_add_grant(j.get(), "sub", sub.c_str()) != 0 ||
      jwt_add_grant_int(j.get(), "iat", now) != 0 || jwt_add_grant_int(j.get(), "exp", now + ttl_.count()) != 0) {
    return fail(Errc::internal, "cannot set token claims");
  }
  for (const auto& [k, v] : extra) {
    if (jwt_add_grant(j.get(), k.c_str(), v.c_str()) != 0) return fail(Errc::internal, "cannot set claim " + k);
  }
  if (jwt_set_alg(j.get(), JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret_.data()),
                  static_cast<int>(secret_.size())) != 0) {
    return fail(Errc::internal, "cannot set the signing key");
  }
  char* token = jwt_encode_str(j.get());
  if (token == nullptr) return fail(Errc::internal, "token encoding failed");
  std::string out(token);
  std::free(token);  // libjwt 1.10 allocates with malloc
  return out;
}

JwtVerifier::JwtVerifier(std::string secret, std::string issuer, std::chrono::seconds leeway, const core::Clock& clock)
    : secret_(std::move(secret)), issuer_(std::move(issuer)), leeway_(leeway), clock_(clock) {}

Result<Claims> JwtVerifier::verify(std::string_view token) const {
  if (token.size() > 8192) return fail(unauthenticated("token too long"));
  auto header = header_of(token);
  if (!header) return fail(header.error());
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->value().is_string() || alg->value().as_string() != "HS256") {
    return fail(unauthenticated("unsupported token algorithm (HS256 expected)"));
  }
  jwt_t* raw = nullptr;
  std::string t(token);
  if (jwt_decode(&raw, t.c_str(), reinterpret_cast<const unsigned char*>(secret_.data()),
                 static_cast<int>(secret_.size())) != 0 || raw == nullptr) {
    return fail(unauthenticated("invalid signature"));
  }
  JwtPtr j(raw);
  if (jwt_get_alg(j.get()) != JWT_ALG_HS256) return fail(unauthenticated("unsupported token algorithm"));
  auto claims = claims_of(j.get());
  if (!claims) return claims;
  const auto now = epoch_seconds(clock_);
  if (claims->expires_at == 0) return fail(unauthenticated("token has no expiry"));
  if (now > claims->expires_at + leeway_.count()) return fail(unauthenticated("token expired"));
  errno = 0;
  long nbf = jwt_get_grant_int(j.get(), "nbf");
  if (errno == 0 && nbf > 0 && now + leeway_.count() < nbf) return fail(unauthenticated("token not yet valid"));
  if (!issuer_.empty() && claims->issuer != issuer_) return fail(unauthenticated("unexpected token issuer"));
  if (claims->subject.empty()) return fail(unauthenticated("token has no subject"));
  return claims;
}

Result<Claims> peek_claims(std::string_view token) {
  jwt_t* raw = nullptr;
  std::string t(token);
  if (jwt_decode(&raw, t.c_str(), nullptr, 0) != 0 || raw == nullptr) {
    return fail(unauthenticated("malformed token"));
  }
  JwtPtr j(raw);
  return claims_of(j.get());
}

Result<std::string> peek_algorithm(std::string_view token) {
  auto header = header_of(token);
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
