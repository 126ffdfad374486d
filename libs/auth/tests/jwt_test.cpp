#include <mercado/auth/bearer.hpp>
#include <mercado/auth/jwt.hpp>

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <atomic>
#include <thread>
#include <vector>

namespace mercado::auth {
namespace {

using namespace std::chrono_literals;
const std::string kSecret(40, 's');

std::string b64url(std::string_view in) {
  static constexpr char kA[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  unsigned buf = 0;
  int bits = 0;
  for (unsigned char c : in) {
    buf = (buf << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kA[(buf >> bits) & 63];
    }
  }
  if (bits > 0) out += kA[(buf << (6 - bits)) & 63];
  return out;
}

TEST(Jwt, IssueThenVerify) {
  core::ManualClock clock;
  JwtIssuer issuer(kSecret, "mercado-users", 3600s, clock);
  JwtVerifier verifier(kSecret, "mercado-users", 30s, clock);
  auto token = issuer.issue("user-1", {{"email", "a@b.co"}});
  ASSERT_TRUE(token);
  auto claims = verifier.verify(*token);
  ASSERT_TRUE(claims) << claims.error().message;
  EXPECT_EQ(claims->subject, "user-1");
  EXPECT_EQ(claims->issuer, "mercado-users");
  EXPECT_EQ(claims->expires_at - claims->issued_at, 3600);
  EXPECT_EQ(claims->extra.at("email"), "a@b.co");
}

TEST(Jwt, ExpiryIsCheckedWithLeeway) {
  core::ManualClock clock;
  JwtIssuer issuer(kSecret, "i", 60s, clock);
  JwtVerifier verifier(kSecret, "i", 30s, clock);
  auto token = *issuer.issue("u");
  clock.advance(85s);
  EXPECT_TRUE(verifier.verify(token));
  clock.advance(10s);
  auto r = verifier.verify(token);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::unauthenticated);
  EXPECT_EQ(r.error().message, "token expired");
}

TEST(Jwt, AVerifiedTokenIsRememberedStillExpiresAndTheMemoryIsBounded) {
  core::ManualClock clock;
  JwtIssuer issuer(kSecret, "i", 60s, clock);
  JwtVerifier verifier(kSecret, "i", 30s, clock);
  auto token = *issuer.issue("u", {{"role", "admin"}});
  auto first = verifier.verify(token);
  ASSERT_TRUE(first);
  EXPECT_EQ(verifier.cached_tokens(), 1u);
  auto again = verifier.verify(token);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->subject, "u");
  EXPECT_EQ(again->extra.at("role"), "admin");
  EXPECT_EQ(again->expires_at, first->expires_at);
  // Rejected tokens are not remembered; a token one byte off is checked in full.
  std::string tampered = token;
  tampered.back() = tampered.back() == 'A' ? 'B' : 'A';
  auto bad = verifier.verify(tampered);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "invalid signature");
  EXPECT_EQ(verifier.cached_tokens(), 1u);
  // Remembered, it still expires.
  clock.advance(91s);
  auto expired = verifier.verify(token);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().message, "token expired");
  // Bounded: past kCachedTokens the memory starts over, and every token still verifies.
  for (std::size_t i = 0; i < JwtVerifier::kCachedTokens + 10; ++i) {
    auto t = *issuer.issue("user-" + std::to_string(i));
    auto c = verifier.verify(t);
    ASSERT_TRUE(c) << i;
    EXPECT_EQ(c->subject, "user-" + std::to_string(i));
    EXPECT_LE(verifier.cached_tokens(), JwtVerifier::kCachedTokens);
  }
}

TEST(Jwt, OneVerifierServesManyThreads) {
  // Io threads share a service's verifier: its memory of tokens is shared and locked (the
  // tsan preset checks this test).
  JwtIssuer issuer(kSecret, "i", 60s);
  JwtVerifier verifier(kSecret, "i");
  std::vector<std::string> tokens;
  for (int i = 0; i < 40; ++i) tokens.push_back(*issuer.issue("user-" + std::to_string(i)));
  std::atomic<int> verified{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        for (std::size_t i = 0; i < tokens.size(); ++i) {
          const std::size_t k = (i + static_cast<std::size_t>(t) * 7) % tokens.size();
          auto c = verifier.verify(tokens[k]);
          if (c && c->subject == "user-" + std::to_string(k)) ++verified;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(verified.load(), 4 * 50 * 40);
  EXPECT_EQ(verifier.cached_tokens(), tokens.size());
}

TEST(Jwt, RejectsWrongSecretIssuerAndTampering) {
  JwtIssuer issuer(kSecret, "i", 60s);
  auto token = *issuer.issue("u");
  EXPECT_EQ(JwtVerifier(std::string(40, 'x'), "i").verify(token).error().message, "invalid signature");
  EXPECT_EQ(JwtVerifier(kSecret, "other").verify(token).error().message, "unexpected token issuer");
  std::string tampered = token;
  tampered[tampered.find('.') + 3] ^= 1;
  EXPECT_FALSE(JwtVerifier(kSecret, "i").verify(tampered));
  EXPECT_FALSE(JwtVerifier(kSecret, "i").verify("garbage"));
  EXPECT_FALSE(JwtVerifier(kSecret, "i").verify(""));
}

TEST(Jwt, RejectsAlgNoneAndOtherAlgorithms) {
  auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string payload = R"({"iss":"i","sub":"admin","exp":)" + std::to_string(now + 600) + "}";
  std::string none = b64url(R"({"alg":"none","typ":"JWT"})") + "." + b64url(payload) + ".";
  auto r = JwtVerifier(kSecret, "i").verify(none);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "unsupported token algorithm (HS256 expected)");
  std::string hs512 = b64url(R"({"alg":"HS512","typ":"JWT"})") + "." + b64url(payload) + ".AAAA";
  EXPECT_FALSE(JwtVerifier(kSecret, "i").verify(hs512));
  EXPECT_EQ(*peek_algorithm(none), "none");
}

// The signature of a token made elsewhere (the example token of jwt.io, HS256 with the key
// "your-256-bit-secret") checks out; it has no expiry, which is refused only after that.
TEST(Jwt, VerifiesTheSignatureOfAnExternallyMadeToken) {
  const std::string token =
      "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
      "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
  EXPECT_EQ(JwtVerifier("your-256-bit-secret", "").verify(token).error().message, "token has no expiry");
  EXPECT_EQ(JwtVerifier("your-256-bit-secreT", "").verify(token).error().message, "invalid signature");
  auto c = peek_claims(token);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->subject, "1234567890");
  EXPECT_EQ(c->issued_at, 1516239022);
  EXPECT_EQ(c->extra.at("name"), "John Doe");
}

TEST(Jwt, RejectsMalformedTokensAndBadClaims) {
  JwtIssuer issuer(kSecret, "i", 60s);
  auto token = *issuer.issue("u");
  JwtVerifier v(kSecret, "i");
  EXPECT_EQ(v.verify(token + ".x").error().message, "malformed token");           // four parts
  EXPECT_EQ(v.verify(token + "=").error().message, "invalid signature");          // padding is not base64url
  EXPECT_EQ(v.verify("!!." + token.substr(token.find('.') + 1)).error().message, "malformed token");
  std::string no_sig = token.substr(0, token.rfind('.') + 1);
  EXPECT_EQ(v.verify(no_sig).error().message, "invalid signature");
  EXPECT_FALSE(issuer.issue("u", {{"exp", "never"}}));  // registered claims are not extras
}

TEST(Jwt, PeekReadsClaimsWithoutTheKey) {
  auto token = *JwtIssuer(kSecret, "consumer-key", 60s).issue("u");
  auto c = peek_claims(token);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->issuer, "consumer-key");
}

TEST(Jwt, SecretLoading) {
  EXPECT_FALSE(load_secret("", "short"));
  EXPECT_TRUE(load_secret("", kSecret));
  EXPECT_FALSE(load_secret("/nonexistent/secret", kSecret));
}

TEST(Bearer, AuthenticateAndOwnership) {
  JwtIssuer issuer(kSecret, "i", 60s);
  JwtVerifier verifier(kSecret, "i");
  auto token = *issuer.issue("user-7");

  auto none = http::Request::make(http::Method::get, "/users/user-7");
  auto missing = authenticate(none, verifier);
  ASSERT_FALSE(missing);
  auto res = unauthorized(none, missing.error());
  EXPECT_EQ(res.status, 401);
  EXPECT_EQ(res.headers.get("WWW-Authenticate"), "Bearer");

  auto bad = http::Request::make(http::Method::get, "/users/user-7", {{"Authorization", "Bearer nope"}});
  auto invalid = authenticate(bad, verifier);
  ASSERT_FALSE(invalid);
  EXPECT_EQ(unauthorized(bad, invalid.error()).headers.get("WWW-Authenticate"), "Bearer error=\"invalid_token\"");

  auto good = http::Request::make(http::Method::get, "/users/user-7", {{"Authorization", "Bearer " + token}});
  auto claims = authenticate(good, verifier);
  ASSERT_TRUE(claims);
  EXPECT_FALSE(require_subject(good, *claims, "user-7"));
  auto denied = require_subject(good, *claims, "user-8");
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 403);
}

}  // namespace
}  // namespace mercado::auth

#include <mercado/auth/service_token.hpp>

namespace mercado::auth {
namespace {

TEST(ServiceToken, InternalEndpointsTakeOnlyServiceTokens) {
  JwtIssuer issuer(kSecret, "mercado", std::chrono::seconds(3600));
  JwtVerifier verifier(kSecret, "mercado");
  ServiceToken token(issuer, "order-service");
  auto svc = http::Request::make(http::Method::post, "/payments", {{"Authorization", token.authorization()}});
  EXPECT_FALSE(require_service(svc, verifier));
  auto user_token = *issuer.issue("user-1");
  auto user = http::Request::make(http::Method::post, "/payments", {{"Authorization", "Bearer " + user_token}});
  auto denied = require_service(user, verifier);
  ASSERT_TRUE(denied);
  EXPECT_EQ(denied->status, 403);
  EXPECT_FALSE(require_owner_or_service(user, verifier, "user-1"));
  EXPECT_FALSE(require_owner_or_service(svc, verifier, "user-1"));
  EXPECT_EQ(require_owner_or_service(user, verifier, "user-2")->status, 403);
  auto none = http::Request::make(http::Method::post, "/payments");
  EXPECT_EQ(require_service(none, verifier)->status, 401);
  EXPECT_EQ(token.authorization(), token.authorization());  // cached until renewal is due
}

}  // namespace
}  // namespace mercado::auth
