#pragma once
// What a handler answers. The server adds Date, Content-Length and Connection.

#include <string>
#include <string_view>

#include <mercado/http/headers.hpp>

namespace mercado::http {

inline constexpr std::string_view kJson = "application/json";
inline constexpr std::string_view kProblemJson = "application/problem+json";
inline constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";

struct Response {
  int status = 200;
  std::string content_type;  // empty: no Content-Type header
  std::string body;
  Headers headers;  // extra fields; CR/LF in a name or value drops the field

  Response() = default;
  explicit Response(int s) : status(s) {}
  Response(int s, std::string_view type, std::string b)
      : status(s), content_type(type), body(std::move(b)) {}

  static Response text(int status, std::string body) { return {status, kTextPlain, std::move(body)}; }
  // `json` must already be serialized JSON.
  static Response json(int status, std::string json) { return {status, kJson, std::move(json)}; }
  static Response no_content() { return Response(204); }
};

}  // namespace mercado::http
