#pragma once
// The protocol-independent error model (docs/error-handling.md).
//
// Expected failures -- bad input, missing things, conflicts, unavailable or slow
// dependencies -- travel as values: Result<T> = std::expected<T, Error>. The HTTP edge
// maps Errc to a status and an RFC 9457 problem body; `message` is shown to clients,
// `internal` only goes to the log. Exceptions are reserved for programmer errors at
// start-up and broken invariants.

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mercado {

enum class Errc : std::uint8_t {
  invalid_argument,     // the request is malformed or fails validation (400)
  unauthenticated,      // no or bad credentials (401)
  permission_denied,    // authenticated but not allowed (403)
  not_found,            // the addressed thing does not exist (404)
  conflict,             // state conflict: version mismatch, duplicate, short stock (409)
  precondition_failed,  // a stated precondition does not hold (412)
  payload_too_large,    // (413)
  unsupported_media_type,  // the body is not in a format the endpoint accepts (415)
  unprocessable,        // well-formed but violates a business rule (422)
  rate_limited,         // (429)
  internal,             // a bug or an unexpected environment failure (500)
  unavailable,          // a dependency is down or the breaker is open (503)
  timeout,              // a deadline expired (504)
};

// Stable kebab-case name of the code; used as the problem `type` suffix.
std::string_view to_string(Errc code) noexcept;

// One invalid field of a request body, with a JSON-pointer-like path ("items/0/quantity").
struct FieldError {
  std::string field;
  std::string message;
  friend bool operator==(const FieldError&, const FieldError&) = default;
};

struct Error {
  Errc code = Errc::internal;
  std::string message;              // safe to show to a client
  std::vector<FieldError> fields;   // validation details (may be empty)
  std::string internal;             // for the log only, never sent to a client
  std::string type;                 // optional more specific problem type (e.g. "insufficient-funds")

  Error() = default;
  Error(Errc c, std::string msg) : code(c), message(std::move(msg)) {}
};

template <class T>
using Result = std::expected<T, Error>;

// Convenience for `return fail(Errc::not_found, "no such user");`
inline std::unexpected<Error> fail(Errc code, std::string message) {
  return std::unexpected<Error>(std::in_place, code, std::move(message));
}
inline std::unexpected<Error> fail(Error e) { return std::unexpected<Error>(std::move(e)); }

}  // namespace mercado
