#include <mercado/observability/log.hpp>

#include <mercado/core/json_escape.hpp>

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <ctime>
#include <memory>
#include <mutex>
#include <vector>

namespace mercado::log {

namespace {

struct State {
  std::mutex mutex;  // guards reconfiguration only
  std::shared_ptr<spdlog::logger> logger;
  std::vector<std::shared_ptr<spdlog::logger>> retired;
  std::string service = "mercado";
  std::string instance;
};

State& state() {
  static State* s = new State();  // never destroyed: logging works until exit
  return *s;
}

std::atomic<Level> current_level{Level::info};

std::shared_ptr<spdlog::logger> make_logger(const std::string& path) {
  std::shared_ptr<spdlog::sinks::sink> sink;
  if (path.empty()) {
    sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  } else {
    sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path, false);
  }
  auto logger = std::make_shared<spdlog::logger>("mercado", std::move(sink));
  logger->set_pattern("%v");
  logger->set_level(spdlog::level::trace);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

// Loggers replaced by init() are kept alive (init runs a handful of times per process), so a
// writer racing with init() never sees a dangling logger.
std::atomic<spdlog::logger*> active_logger{nullptr};

spdlog::logger* logger() {
  if (auto* l = active_logger.load(std::memory_order_acquire)) return l;
  auto& s = state();
  std::lock_guard lock(s.mutex);
  if (!s.logger) {
    s.logger = make_logger("");
    active_logger.store(s.logger.get(), std::memory_order_release);
  }
  return s.logger.get();
}

void append_timestamp(std::string& out) {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::time_point_cast<std::chrono::seconds>(now);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(now - secs).count();
  std::time_t t = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[40];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  out.append(buf, n);
  char frac[32];
  std::snprintf(frac, sizeof frac, ".%06lldZ", static_cast<long long>(micros));
  out += frac;
}

void append_value(std::string& out, const Value& v) {
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::nullptr_t>) {
          out += "null";
        } else if constexpr (std::is_same_v<T, std::string_view>) {
          out += '"';
          append_json_escaped(out, x);
          out += '"';
        } else if constexpr (std::is_same_v<T, bool>) {
          out += x ? "true" : "false";
        } else if constexpr (std::is_same_v<T, double>) {
          if (std::isfinite(x)) {
            char buf[32];
            auto r = std::to_chars(buf, buf + sizeof buf, x);
            out.append(buf, r.ptr);
          } else {
            out += "null";
          }
        } else {
          out += std::to_string(x);
        }
      },
      v.get());
}

}  // namespace

std::optional<Level> parse_level(std::string_view name) noexcept {
  if (name == "trace") return Level::trace;
  if (name == "debug") return Level::debug;
  if (name == "info") return Level::info;
  if (name == "warn" || name == "warning") return Level::warn;
  if (name == "error") return Level::error;
  if (name == "critical") return Level::critical;
  if (name == "off") return Level::off;
  return std::nullopt;
}

std::string_view to_string(Level level) noexcept {
  switch (level) {
    case Level::trace: return "trace";
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    case Level::critical: return "critical";
    case Level::off: return "off";
  }
  return "info";
}

void init(const Options& options) {
  auto& s = state();
  auto fresh = make_logger(options.path);
  std::lock_guard lock(s.mutex);
  if (s.logger) {
    s.logger->flush();
    s.retired.push_back(std::move(s.logger));
  }
  s.logger = std::move(fresh);
  active_logger.store(s.logger.get(), std::memory_order_release);
  s.service = options.service;
  s.instance = options.instance;
  current_level.store(options.level, std::memory_order_relaxed);
}

void set_level(Level level) noexcept { current_level.store(level, std::memory_order_relaxed); }

bool enabled(Level level) noexcept {
  return level != Level::off && level >= current_level.load(std::memory_order_relaxed);
}

void append_json_escaped(std::string& out, std::string_view s) { core::append_json_escaped(out, s); }

std::string format_line(Level level, const obs::TraceContext* trace, std::string_view msg,
                        Fields fields) {
  auto& s = state();
  std::string out;
  out.reserve(256);
  out += "{\"ts\":\"";
  append_timestamp(out);
  out += "\",\"level\":\"";
  out += to_string(level);
  out += "\",\"service\":\"";
  append_json_escaped(out, s.service);
  if (!s.instance.empty()) {
    out += "\",\"instance\":\"";
    append_json_escaped(out, s.instance);
  }
  out += "\",\"msg\":\"";
  append_json_escaped(out, msg);
  out += '"';
  if (trace != nullptr && trace->valid()) {
    out += ",\"trace_id\":\"";
    out += trace->trace_id_hex();
    out += "\",\"span_id\":\"";
    out += trace->span_id_hex();
    out += '"';
  }
  if (fields.size() > 0) {
    out += ",\"fields\":{";
    bool first = true;
    for (const auto& f : fields) {
      if (!first) out += ',';
      first = false;
      out += '"';
      append_json_escaped(out, f.key);
      out += "\":";
      append_value(out, f.value);
    }
    out += '}';
  }
  out += '}';
  return out;
}

void write(Level level, const obs::TraceContext* trace, std::string_view msg, Fields fields) {
  if (!enabled(level)) return;
  std::string line = format_line(level, trace, msg, fields);
  logger()->log(spdlog::level::info, std::string_view(line));
}

}  // namespace mercado::log
