#pragma once
// Structured logging: one JSON object per line through spdlog:
//   {"ts":"2026-11-26T07:42:40.123456Z","level":"info","service":"order-service",
//    "instance":"order-service-1","msg":"order created","trace_id":"…","span_id":"…",
//    "fields":{"order_id":"…","total":1999}}
// trace_id/span_id appear when a TraceContext is given. Thread-safe after init().
// Secrets never belong in fields.

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include <mercado/observability/trace.hpp>

namespace mercado::log {

enum class Level : std::uint8_t { trace, debug, info, warn, error, critical, off };

std::optional<Level> parse_level(std::string_view name) noexcept;
std::string_view to_string(Level level) noexcept;

struct Options {
  std::string service = "mercado";
  std::string instance;
  Level level = Level::info;
  std::string path;  // empty: standard output; otherwise appended to this file
};

// (Re)configures the process logger. Call from main() before the io threads start.
void init(const Options& options);
void set_level(Level level) noexcept;
bool enabled(Level level) noexcept;

// A field value: text, integer, floating point, boolean or null. Views are not kept.
class Value {
 public:
  Value(std::nullptr_t) : v_(nullptr) {}
  Value(std::string_view s) : v_(s) {}
  Value(const std::string& s) : v_(std::string_view(s)) {}
  Value(const char* s) : v_(std::string_view(s)) {}
  Value(bool b) : v_(b) {}
  Value(double d) : v_(d) {}
  template <class T>
    requires(std::is_integral_v<T> && !std::is_same_v<T, bool>)
  Value(T i) {
    if constexpr (std::is_signed_v<T>) {
      v_ = static_cast<std::int64_t>(i);
    } else {
      v_ = static_cast<std::uint64_t>(i);
    }
  }
  const auto& get() const noexcept { return v_; }

 private:
  std::variant<std::nullptr_t, std::string_view, std::int64_t, std::uint64_t, double, bool> v_;
};

struct Field {
  std::string_view key;
  Value value;
};
using Fields = std::initializer_list<Field>;

// Writes one line when `level` is enabled.
void write(Level level, const obs::TraceContext* trace, std::string_view msg, Fields fields);

// Renders the line without writing it (for tests of the format).
std::string format_line(Level level, const obs::TraceContext* trace, std::string_view msg,
                        Fields fields);

#define MERCADO_LOG_LEVEL_FN(fn, lvl)                                                    \
  inline void fn(std::string_view msg, Fields fields = {}) {                             \
    if (enabled(lvl)) write(lvl, nullptr, msg, fields);                                  \
  }                                                                                      \
  inline void fn(const obs::TraceContext& trace, std::string_view msg, Fields fields = {}) { \
    if (enabled(lvl)) write(lvl, &trace, msg, fields);                                   \
  }
MERCADO_LOG_LEVEL_FN(trace, Level::trace)
MERCADO_LOG_LEVEL_FN(debug, Level::debug)
MERCADO_LOG_LEVEL_FN(info, Level::info)
MERCADO_LOG_LEVEL_FN(warn, Level::warn)
MERCADO_LOG_LEVEL_FN(error, Level::error)
#undef MERCADO_LOG_LEVEL_FN

// Appends `s` to `out` as the body of a JSON string (no quotes), escaping as RFC 8259 asks.
void append_json_escaped(std::string& out, std::string_view s);

}  // namespace mercado::log
