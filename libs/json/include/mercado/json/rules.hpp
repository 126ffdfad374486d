#pragma once
// Reusable predicates for validate() functions.

#include <string_view>

namespace mercado::json::rules {

// A pragmatic address check: one '@', a non-empty local part, a domain with a dot and no
// spaces; at most 254 characters (RFC 5321 path limit).
bool is_email(std::string_view s) noexcept;
// Byte length between lo and hi inclusive, counting UTF-8 code points.
bool length_between(std::string_view s, std::size_t lo, std::size_t hi) noexcept;
// Valid UTF-8 without control characters.
bool is_printable_utf8(std::string_view s) noexcept;

}  // namespace mercado::json::rules
