#pragma once
// Serializes a Response head into a reusable buffer (private to libs/http).

#include <string>

#include <mercado/http/response.hpp>

namespace mercado::http::detail {

// The cached IMF-fixdate for the current second ("Thu, 26 Nov 2026 07:42:40 GMT").
std::string_view http_date() noexcept;

// Whether a response with this status carries no body (1xx, 204, 304).
inline bool bodyless_status(int status) noexcept {
  return (status >= 100 && status < 200) || status == 204 || status == 304;
}

// Writes status line and header fields (Date, Content-Type, Content-Length, Connection and
// the response's own fields, minus any framing fields the handler set) and the blank
// line. `version` is 10 or 11; HTTP/1.0 keep-alive is announced explicitly.
void write_head(std::string& out, const Response& res, bool keep_alive, int version);

}  // namespace mercado::http::detail
