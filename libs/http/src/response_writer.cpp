#include "response_writer.hpp"

#include <charconv>
#include <chrono>
#include <ctime>

#include <mercado/http/headers.hpp>
#include <mercado/http/status.hpp>

namespace mercado::http::detail {

std::string_view http_date() noexcept {
  struct Cache {
    std::time_t second = 0;
    char text[32] = {};
    std::size_t size = 0;
  };
  thread_local Cache cache;
  std::time_t now = std::time(nullptr);
  if (now != cache.second) {
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    cache.size = std::strftime(cache.text, sizeof cache.text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cache.second = now;
  }
  return {cache.text, cache.size};
}

namespace {

bool safe_field(std::string_view name, std::string_view value) noexcept {
  if (name.empty()) return false;
  for (char c : name) {
    if (c == '\r' || c == '\n' || c == ':' || c == ' ' || c == '\t') return false;
  }
  return value.find_first_of("\r\n") == std::string_view::npos;
}

bool framing_field(std::string_view name) noexcept {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "connection") || iequals(name, "date") || iequals(name, "content-type");
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

}  // namespace

void write_head(std::string& out, const Response& res, bool keep_alive, int version) {
  out.clear();
  int status = (res.status >= 100 && res.status <= 999) ? res.status : 500;
  out += "HTTP/1.1 ";
  append_uint(out, static_cast<std::uint64_t>(status));
  out += ' ';
  out += reason_phrase(status);
  out += "\r\nDate: ";
  out += http_date();
  out += "\r\n";
  if (!res.content_type.empty() && safe_field("Content-Type", res.content_type)) {
    out += "Content-Type: ";
    out += res.content_type;
    out += "\r\n";
  }
  if (!bodyless_status(status)) {
    out += "Content-Length: ";
    append_uint(out, res.body.size());
    out += "\r\n";
  }
  if (!keep_alive) {
    out += "Connection: close\r\n";
  } else if (version < 11) {
    out += "Connection: keep-alive\r\n";
  }
  for (const auto& [name, value] : res.headers) {
    if (!safe_field(name, value) || framing_field(name)) continue;
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  out += "\r\n";
}

}  // namespace mercado::http::detail
