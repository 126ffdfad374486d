#include <mercado/json/codec.hpp>

#include <algorithm>

#include <mercado/core/json_escape.hpp>
#include <mercado/json/rules.hpp>

#include <cmath>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value_stack.hpp>

namespace mercado::json {

namespace {

namespace sys = boost::system;

// What a handler of boost::json::basic_parser must declare; every event is accepted and
// ignored. The two handlers below replace the events they use.
struct IgnoringHandler {
  static constexpr std::size_t max_object_size = bj::object::max_size();
  static constexpr std::size_t max_array_size = bj::array::max_size();
  static constexpr std::size_t max_key_size = bj::string::max_size();
  static constexpr std::size_t max_string_size = bj::string::max_size();

  bool on_document_begin(sys::error_code&) { return true; }
  bool on_document_end(sys::error_code&) { return true; }
  bool on_object_begin(sys::error_code&) { return true; }
  bool on_object_end(std::size_t, sys::error_code&) { return true; }
  bool on_array_begin(sys::error_code&) { return true; }
  bool on_array_end(std::size_t, sys::error_code&) { return true; }
  bool on_key_part(bj::string_view, std::size_t, sys::error_code&) { return true; }
  bool on_key(bj::string_view, std::size_t, sys::error_code&) { return true; }
  bool on_string_part(bj::string_view, std::size_t, sys::error_code&) { return true; }
  bool on_string(bj::string_view, std::size_t, sys::error_code&) { return true; }
  bool on_number_part(bj::string_view, sys::error_code&) { return true; }
  bool on_int64(std::int64_t, bj::string_view, sys::error_code&) { return true; }
  bool on_uint64(std::uint64_t, bj::string_view, sys::error_code&) { return true; }
  bool on_double(double, bj::string_view, sys::error_code&) { return true; }
  bool on_bool(bool, sys::error_code&) { return true; }
  bool on_null(sys::error_code&) { return true; }
  bool on_comment_part(bj::string_view, sys::error_code&) { return true; }
  bool on_comment(bj::string_view, sys::error_code&) { return true; }
};

// Builds the value as boost::json::parser does (a value_stack), and counts the keys it
// meets: Boost.JSON keeps only the last of duplicate keys, so more keys than members means
// a duplicate, which a request must not get away with (two readers of one body could
// disagree on which value counts).
struct BuildingHandler : IgnoringHandler {
  // The value stack starts in a buffer of the caller's (as boost::json::parse does).
  BuildingHandler(unsigned char* buffer, std::size_t size) : st(bj::storage_ptr(), buffer, size) {}

  bj::value_stack st;
  std::size_t keys = 0;

  bool on_object_end(std::size_t n, sys::error_code&) {
    st.push_object(n);
    return true;
  }
  bool on_array_end(std::size_t n, sys::error_code&) {
    st.push_array(n);
    return true;
  }
  bool on_key_part(bj::string_view s, std::size_t, sys::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_key(bj::string_view s, std::size_t, sys::error_code&) {
    st.push_key(s);
    ++keys;
    return true;
  }
  bool on_string_part(bj::string_view s, std::size_t, sys::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_string(bj::string_view s, std::size_t, sys::error_code&) {
    st.push_string(s);
    return true;
  }
  bool on_int64(std::int64_t i, bj::string_view, sys::error_code&) {
    st.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, bj::string_view, sys::error_code&) {
    st.push_uint64(u);
    return true;
  }
  bool on_double(double d, bj::string_view, sys::error_code&) {
    st.push_double(d);
    return true;
  }
  bool on_bool(bool b, sys::error_code&) {
    st.push_bool(b);
    return true;
  }
  bool on_null(sys::error_code&) {
    st.push_null();
    return true;
  }
};

// Only on the error path: finds the first key repeated within one object, for the message.
struct DuplicateFinder : IgnoringHandler {
  std::vector<std::unordered_set<std::string>> open;
  std::string partial;
  std::optional<std::string> found;

  bool on_object_begin(sys::error_code&) {
    open.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, sys::error_code&) {
    open.pop_back();
    return true;
  }
  bool on_key_part(bj::string_view s, std::size_t, sys::error_code&) {
    partial.append(s.data(), s.size());
    return true;
  }
  bool on_key(bj::string_view s, std::size_t, sys::error_code& ec) {
    partial.append(s.data(), s.size());
    if (!open.back().insert(partial).second) {
      found = std::move(partial);
      ec = bj::error::syntax;  // stops the parse: the first duplicate is the one reported
      return false;
    }
    partial.clear();
    return true;
  }
};

std::size_t count_members(const bj::value& v) {
  std::size_t n = 0;
  if (const auto* o = v.if_object()) {
    n += o->size();
    for (const auto& kv : *o) n += count_members(kv.value());
  } else if (const auto* a = v.if_array()) {
    for (const auto& item : *a) n += count_members(item);
  }
  return n;
}

Error invalid_json(std::string message) {
  Error e(Errc::invalid_argument, std::move(message));
  e.type = "invalid-json";
  return e;
}

}  // namespace

Result<bj::value> parse(std::string_view text) {
  if (text.empty()) return fail(Errc::invalid_argument, "the request body is empty; JSON expected");
  bj::parse_options opts;
  opts.max_depth = 64;
  sys::error_code ec;
  unsigned char buffer[BOOST_JSON_STACK_BUFFER_SIZE];
  bj::basic_parser<BuildingHandler> p(opts, buffer, sizeof buffer);
  p.handler().st.reset();
  std::size_t used = p.write_some(true, text.data(), text.size(), ec);
  if (!ec && p.done()) {
    // One JSON text: after its value only whitespace may follow.
    const auto rest = text.find_first_not_of(" \t\r\n", used);
    if (rest != std::string_view::npos) {
      return fail(invalid_json("invalid JSON near byte " + std::to_string(rest) +
                               ": unexpected content after the JSON value"));
    }
  }
  if (!ec && !p.done()) p.write_some(false, nullptr, 0, ec);
  if (ec) return fail(invalid_json("invalid JSON near byte " + std::to_string(used) + ": " + ec.message()));
  bj::value v = p.handler().st.release();
  if (count_members(v) != p.handler().keys) {
    bj::basic_parser<DuplicateFinder> finder(opts);
    sys::error_code ignored;
    finder.write_some(false, text.data(), text.size(), ignored);
    std::string key = finder.handler().found.value_or("?");
    // The key is the client's: at most 64 bytes of it go into the answer (and the logs),
    // cut where a UTF-8 character begins.
    if (key.size() > 64) {
      std::size_t cut = 64;
      while (cut > 0 && (static_cast<unsigned char>(key[cut]) & 0xC0) == 0x80) --cut;
      key = key.substr(0, cut) + "\u2026";
    }
    std::string quoted;
    detail::append_string(quoted, key);
    return fail(invalid_json("invalid JSON: the key " + quoted + " appears twice in one object"));
  }
  return v;
}

namespace detail {

void append_string(std::string& out, std::string_view s) {
  out += '"';
  core::append_json_escaped(out, s);
  out += '"';
}

namespace {

template <class V>
void serialize_onto(std::string& out, const V& v) {
  bj::serializer sr;
  sr.reset(&v);
  while (!sr.done()) {
    const std::size_t at = out.size();
    out.resize(std::max(out.capacity(), at + 256));
    const auto written = sr.read(out.data() + at, out.size() - at);
    out.resize(at + written.size());
  }
}

}  // namespace

void append_serialized(std::string& out, const bj::value& v) { serialize_onto(out, v); }
void append_serialized(std::string& out, const bj::object& v) { serialize_onto(out, v); }
void append_serialized(std::string& out, const bj::array& v) { serialize_onto(out, v); }

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
