#pragma once
#include <string_view>

namespace mercado::http {

// The RFC 9110 reason phrase ("Not Found"), or "Unknown".
std::string_view reason_phrase(int status) noexcept;

}  // namespace mercado::http
