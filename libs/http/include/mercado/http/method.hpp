#pragma once
#include <cstdint>
#include <string_view>

namespace mercado::http {

enum class Method : std::uint8_t { get, head, post, put, delete_, patch, options, connect, trace, other };
inline constexpr std::size_t kMethodCount = 10;

std::string_view to_string(Method m) noexcept;
// Exact, case-sensitive token match (RFC 9110 methods are case-sensitive); else Method::other.
Method parse_method(std::string_view s) noexcept;
// GET, HEAD, PUT, DELETE, OPTIONS, TRACE (RFC 9110 §9.2.2).
bool is_idempotent(Method m) noexcept;

}  // namespace mercado::http
