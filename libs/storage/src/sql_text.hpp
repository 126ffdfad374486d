#pragma once
// Private helpers shared by the backends: placeholder translation and error values.

#include <string>
#include <string_view>

#include <mercado/core/error.hpp>

namespace mercado::storage::detail {

// Rewrites $1, $2, ... placeholders to SQLite's ?1, ?2, ... (which bind by number), leaving
// string literals, quoted identifiers and comments untouched.
std::string dollar_to_question(std::string_view sql);

// Builds an Error whose `message` is safe for clients and whose `internal` has the detail.
Error db_error(Errc code, std::string_view type, std::string message, std::string internal);

// The first `max` characters of a statement, for error texts.
std::string excerpt(std::string_view sql, std::size_t max = 160);

}  // namespace mercado::storage::detail
