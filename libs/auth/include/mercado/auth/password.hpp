#pragma once
// Password hashing with argon2id (libsodium's crypto_pwhash_str). The stored string is
// self-describing (algorithm, parameters, salt), so parameters can change without
// breaking old hashes. Cost: t=2, m=19 MiB (OWASP's minimum for argon2id): ~tens of ms
// of CPU per call -- run it on a BlockingPool, never on an io thread. Thread-safe.

#include <string>
#include <string_view>

#include <optional>

#include <mercado/core/error.hpp>

namespace mercado::auth {

// invalid_argument for passwords longer than 1024 bytes; internal if libsodium fails
// (out of memory).
Result<std::string> hash_password(std::string_view password);
// True when `password` matches `stored`; false for a mismatch or a malformed hash.
bool verify_password(std::string_view password, std::string_view stored);

// The password rule services apply before hashing: 8 to 128 characters, at least one
// letter and one digit. Returns the reason when it fails.
std::optional<std::string> password_problem(std::string_view password);

}  // namespace mercado::auth
