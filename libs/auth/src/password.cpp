#include <mercado/auth/password.hpp>

#include <sodium.h>

#include "sodium_init.hpp"

#include <cctype>
#include <optional>

namespace mercado::auth {

namespace {

constexpr unsigned long long kOpsLimit = 2;
constexpr std::size_t kMemLimit = 19 * 1024 * 1024;

using detail::ensure_sodium;

}  // namespace

Result<std::string> hash_password(std::string_view password) {
  if (password.size() > 1024) return fail(Errc::invalid_argument, "password too long");
  ensure_sodium();
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(out, password.data(), password.size(), kOpsLimit, kMemLimit,
                            crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return fail(Errc::internal, "password hashing failed (out of memory)");
  }
  return std::string(out);
}

bool verify_password(std::string_view password, std::string_view stored) {
  if (stored.empty() || stored.size() >= crypto_pwhash_STRBYTES) return false;
  ensure_sodium();
  char buf[crypto_pwhash_STRBYTES] = {};
  stored.copy(buf, stored.size());
  return crypto_pwhash_str_verify(buf, password.data(), password.size()) == 0;
}

std::optional<std::string> password_problem(std::string_view password) {
  std::size_t chars = 0;
  bool letter = false, digit = false;
  for (unsigned char c : password) {
    if ((c & 0xC0) != 0x80) ++chars;  // count UTF-8 code points
    if (std::isalpha(c) || c >= 0x80) letter = true;
    if (std::isdigit(c)) digit = true;
  }
  if (chars < 8) return "must be at least 8 characters";
  if (chars > 128) return "must be at most 128 characters";
  if (!letter || !digit) return "must contain a letter and a digit";
  return std::nullopt;
}

}  // namespace mercado::auth
