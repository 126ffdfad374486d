#pragma once
// Database failures as mercado::Error values (docs/storage.md). `Error::type` carries one of
// these stable slugs so that callers can tell a duplicate from other conflicts without
// knowing the backend:
//
//   if (storage::is_unique_violation(r.error())) return fail(Errc::conflict, "email taken");

#include <string_view>

#include <mercado/core/error.hpp>

namespace mercado::storage {

inline constexpr std::string_view kUniqueViolation = "unique-violation";          // Errc::conflict
inline constexpr std::string_view kForeignKeyViolation = "foreign-key-violation";  // Errc::conflict
inline constexpr std::string_view kSerializationFailure = "serialization-failure";  // Errc::conflict
inline constexpr std::string_view kDeadlock = "deadlock";                          // Errc::conflict
inline constexpr std::string_view kNotNullViolation = "not-null-violation";        // Errc::unprocessable
inline constexpr std::string_view kCheckViolation = "check-violation";             // Errc::unprocessable
inline constexpr std::string_view kBusy = "database-busy";                         // Errc::unavailable
inline constexpr std::string_view kConnection = "database-connection";             // Errc::unavailable

inline bool is_unique_violation(const Error& e) noexcept {
  return e.code == Errc::conflict && e.type == kUniqueViolation;
}
// Failures worth retrying as a whole transaction: unreachable or busy database, lost
// serialization race, deadlock victim.
inline bool is_transient(const Error& e) noexcept {
  return e.code == Errc::unavailable || e.code == Errc::timeout || e.type == kSerializationFailure ||
         e.type == kDeadlock;
}

}  // namespace mercado::storage
