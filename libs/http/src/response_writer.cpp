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

// No CR or LF anywhere (response splitting), and a token-ish name.
bool safe_field(std::string_view name, std::string_view value) noexcept {
  if (name.empty()) return false;
  for (char c : name) {
    if (c == '\r' || c == '\n' || c == ':' || c == ' ' || c == '\t') return false;
  }
  for (char c : value) {
    if (c == '\r' || c == '\n') return false;
  }
  return true;
}

// "HTTP/1.1 200 OK\r\n" for the statuses handlers commonly answer, else built.
std::string_view status_line(int status, std::string& scratch) {
  switch (status) {
    case 200: return "HTTP/1.1 200 OK\r\n";
    case 201: return "HTTP/1.1 201 Created\r\n";
    case 202: return "HTTP/1.1 202 Accepted\r\n";
    case 204: return "HTTP/1.1 204 No Content\r\n";
    case 400: return "HTTP/1.1 400 Bad Request\r\n";
    case 404: return "HTTP/1.1 404 Not Found\r\n";
    case 409: return "HTTP/1.1 409 Conflict\r\n";
    default: break;
  }
  scratch = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) + "\r\n";
  return scratch;
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
  std::string scratch;
  out += status_line(status, scratch);
  out += "Date: ";
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
