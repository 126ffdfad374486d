#include <mercado/http/method.hpp>

namespace mercado::http {

std::string_view to_string(Method m) noexcept {
  switch (m) {
    case Method::get: return "GET";
    case Method::head: return "HEAD";
    case Method::post: return "POST";
    case Method::put: return "PUT";
    case Method::delete_: return "DELETE";
    case Method::patch: return "PATCH";
    case Method::options: return "OPTIONS";
    case Method::connect: return "CONNECT";
    case Method::trace: return "TRACE";
    case Method::other: return "OTHER";
  }
  return "OTHER";
}

Method parse_method(std::string_view s) noexcept {
  switch (s.size()) {
    case 3:
      if (s == "GET") return Method::get;
      if (s == "PUT") return Method::put;
      break;
    case 4:
      if (s == "POST") return Method::post;
      if (s == "HEAD") return Method::head;
      break;
    case 5:
      if (s == "PATCH") return Method::patch;
      if (s == "TRACE") return Method::trace;
      break;
    case 6:
      if (s == "DELETE") return Method::delete_;
      break;
    case 7:
      if (s == "OPTIONS") return Method::options;
      if (s == "CONNECT") return Method::connect;
      break;
    default: break;
  }
  return Method::other;
}

bool is_idempotent(Method m) noexcept {
  switch (m) {
    case Method::get:
    case Method::head:
    case Method::put:
    case Method::delete_:
    case Method::options:
    case Method::trace: return true;
    default: return false;
  }
}

}  // namespace mercado::http
