#pragma once
// W3C Trace Context (traceparent) and spans.
//
// A TraceContext identifies a span: 16-byte trace id, 8-byte span id, flags (01 = sampled).
// A Span is started as the child of a context (or as a new root), carries attributes and a
// status, and is handed to the process's SpanExporter when it ends -- but only when an
// exporter is installed and the trace is sampled; otherwise a Span costs two random ids.
// Spans are not shared between threads; exporters must be thread-safe.

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace mercado::obs {

using TraceId = std::array<std::uint8_t, 16>;
using SpanId = std::array<std::uint8_t, 8>;

struct TraceContext {
  TraceId trace_id{};
  SpanId span_id{};
  std::uint8_t flags = 0;

  bool valid() const noexcept;  // both ids non-zero
  bool sampled() const noexcept { return (flags & 0x01) != 0; }

  // Parses `00-<32 hex>-<16 hex>-<2 hex>` (lowercase; all-zero ids and version ff are
  // invalid; later versions are read by their first four fields). nullopt when invalid.
  static std::optional<TraceContext> parse(std::string_view traceparent) noexcept;
  // The traceparent header value (55 characters).
  std::string traceparent() const;
  std::string trace_id_hex() const;
  std::string span_id_hex() const;

  friend bool operator==(const TraceContext&, const TraceContext&) = default;
};

inline constexpr std::size_t kTraceparentSize = 55;

// Random, non-zero ids (thread-local generator seeded from the OS).
TraceId new_trace_id() noexcept;
SpanId new_span_id() noexcept;
std::string to_hex(std::span<const std::uint8_t> bytes);

enum class SpanKind { internal, server, client, producer, consumer };
std::string_view to_string(SpanKind kind) noexcept;

using AttributeValue = std::variant<std::string, std::int64_t, double, bool>;

struct SpanData {
  std::string name;
  SpanKind kind = SpanKind::internal;
  TraceContext context;
  std::optional<SpanId> parent_span_id;
  std::chrono::system_clock::time_point start;
  std::chrono::system_clock::time_point end;
  std::vector<std::pair<std::string, AttributeValue>> attributes;
  bool error = false;
  std::string status_message;
};

class SpanExporter {
 public:
  virtual ~SpanExporter() = default;
  // Called once per ended, sampled span, from the thread that ended it. Must not block.
  virtual void export_span(SpanData&& span) = 0;
};

// Installs the process-wide exporter (nullptr = record nothing). Thread-safe.
void set_span_exporter(std::shared_ptr<SpanExporter> exporter);
std::shared_ptr<SpanExporter> span_exporter();

// Keeps the last `capacity` spans in memory; thread-safe. For tests and the dashboard.
class InMemorySpanExporter final : public SpanExporter {
 public:
  explicit InMemorySpanExporter(std::size_t capacity = 4096);
  ~InMemorySpanExporter() override;
  void export_span(SpanData&& span) override;
  std::vector<SpanData> spans() const;
  void clear();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Span {
 public:
  Span() = default;  // an inactive span with an invalid context
  // Starts a span: the child of `parent` when it is valid (same trace id, inherits the
  // sampled flag), otherwise the root of a new sampled trace.
  Span(std::string_view name, SpanKind kind, const TraceContext* parent);
  Span(Span&&) noexcept;
  Span& operator=(Span&&) noexcept;
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;
  ~Span();

  const TraceContext& context() const noexcept { return ctx_; }
  bool recording() const noexcept { return data_ != nullptr; }
  void set_name(std::string_view name);
  void set_attribute(std::string_view key, AttributeValue value);
  void set_error(std::string_view message);
  // Ends the span and exports it (when recording); later calls do nothing.
  void end();

 private:
  TraceContext ctx_;
  std::unique_ptr<SpanData> data_;
};

}  // namespace mercado::obs
