#include <mercado/json/codec.hpp>

#include <mercado/core/json_escape.hpp>
#include <mercado/json/rules.hpp>

#include <cmath>

namespace mercado::json {

Result<bj::value> parse(std::string_view text) {
  if (text.empty()) return fail(Errc::invalid_argument, "the request body is empty; JSON expected");
  bj::parse_options opts;
  opts.max_depth = 64;
  boost::system::error_code ec;
  bj::stream_parser p({}, opts);
  std::size_t used = p.write_some(text.data(), text.size(), ec);
  if (!ec && p.done()) {
    // One JSON text: after its value only whitespace may follow.
    const auto rest = text.find_first_not_of(" \t\r\n", used);
    if (rest != std::string_view::npos) {
      Error e(Errc::invalid_argument,
              "invalid JSON near byte " + std::to_string(rest) + ": unexpected content after the JSON value");
      e.type = "invalid-json";
      return fail(std::move(e));
    }
  }
  if (!ec) p.finish(ec);
  if (ec) {
    Error e(Errc::invalid_argument, "invalid JSON near byte " + std::to_string(used) + ": " + ec.message());
    e.type = "invalid-json";
    return fail(std::move(e));
  }
  return p.release();
}

namespace detail {

void append_string(std::string& out, std::string_view s) {
  out += '"';
  core::append_json_escaped(out, s);
  out += '"';
}

void append_double(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null";  // JSON has no NaN or infinity
    return;
  }
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, d);
  out.append(buf, r.ptr);
  if (std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)).find_first_of(".eE") == std::string_view::npos) {
    out += ".0";  // keep it a number with a fraction, as boost::json writes doubles
  }
}

}  // namespace detail

namespace rules {

namespace {

// Returns the number of code points, or npos for invalid UTF-8.
std::size_t utf8_length(std::string_view s, bool reject_controls) noexcept {
  std::size_t count = 0;
  for (std::size_t i = 0; i < s.size();) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n;
    if (c < 0x80) {
      if (reject_controls && (c < 0x20 || c == 0x7f)) return std::string_view::npos;
      n = 1;
    } else if ((c >> 5) == 0x6) {
      n = 2;
    } else if ((c >> 4) == 0xe) {
      n = 3;
    } else if ((c >> 3) == 0x1e) {
      n = 4;
    } else {
      return std::string_view::npos;
    }
    if (i + n > s.size()) return std::string_view::npos;
    for (std::size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return std::string_view::npos;
    }
    i += n;
    ++count;
  }
  return count;
}

}  // namespace

bool is_email(std::string_view s) noexcept {
  if (s.size() > 254) return false;
  auto at = s.find('@');
  if (at == std::string_view::npos || at == 0 || s.find('@', at + 1) != std::string_view::npos) return false;
  auto domain = s.substr(at + 1);
  if (domain.size() < 3 || domain.front() == '.' || domain.back() == '.') return false;
  if (domain.find('.') == std::string_view::npos || domain.find("..") != std::string_view::npos) return false;
  for (char c : s) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

bool length_between(std::string_view s, std::size_t lo, std::size_t hi) noexcept {
  auto n = utf8_length(s, false);
  return n != std::string_view::npos && n >= lo && n <= hi;
}

bool is_printable_utf8(std::string_view s) noexcept {
  return utf8_length(s, true) != std::string_view::npos;
}

}  // namespace rules
}  // namespace mercado::json
