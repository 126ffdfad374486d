#include <mercado/observability/trace.hpp>

#include <algorithm>
#include <cstring>
#include <atomic>
#include <deque>
#include <mutex>
#include <random>

namespace mercado::obs {

namespace {

// xoshiro256** seeded from std::random_device, one per thread.
class IdGenerator {
 public:
  IdGenerator() {
    std::random_device rd;
    for (auto& s : s_) s = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4];
};

IdGenerator& generator() {
  thread_local IdGenerator g;
  return g;
}

void fill(std::uint8_t* out, std::size_t n) noexcept {  // n is a multiple of 8 (ids are 8 or 16 bytes)
  auto& g = generator();
  for (std::size_t i = 0; i < n; i += 8) {
    const std::uint64_t v = g.next();
    std::memcpy(out + i, &v, sizeof v);
  }
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // uppercase is invalid in traceparent
}

template <std::size_t N>
bool parse_hex(std::string_view s, std::array<std::uint8_t, N>& out) noexcept {
  if (s.size() != 2 * N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    int hi = hex_value(s[2 * i]);
    int lo = hex_value(s[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>((hi << 4) | lo);
  }
  return true;
}

template <std::size_t N>
bool all_zero(const std::array<std::uint8_t, N>& a) noexcept {
  return std::all_of(a.begin(), a.end(), [](std::uint8_t b) { return b == 0; });
}

constexpr char kHex[] = "0123456789abcdef";

std::mutex exporter_mutex;
std::shared_ptr<SpanExporter> exporter_ptr;
std::atomic<bool> exporter_set{false};

}  // namespace

bool TraceContext::valid() const noexcept { return !all_zero(trace_id) && !all_zero(span_id); }

std::optional<TraceContext> TraceContext::parse(std::string_view h) noexcept {
  // version "-" trace-id "-" parent-id "-" flags; future versions may append "-..." fields.
  if (h.size() < kTraceparentSize) return std::nullopt;
  if (h[2] != '-' || h[35] != '-' || h[52] != '-') return std::nullopt;
  std::array<std::uint8_t, 1> version{};
  if (!parse_hex(h.substr(0, 2), version) || version[0] == 0xff) return std::nullopt;
  if (version[0] == 0 && h.size() != kTraceparentSize) return std::nullopt;
  if (version[0] != 0 && h.size() > kTraceparentSize && h[kTraceparentSize] != '-') return std::nullopt;
  TraceContext ctx;
  std::array<std::uint8_t, 1> flags{};
  if (!parse_hex(h.substr(3, 32), ctx.trace_id) || !parse_hex(h.substr(36, 16), ctx.span_id) ||
      !parse_hex(h.substr(53, 2), flags)) {
    return std::nullopt;
  }
  ctx.flags = flags[0];
  if (!ctx.valid()) return std::nullopt;
  return ctx;
}

std::string to_hex(std::span<const std::uint8_t> bytes) {
  std::string s(bytes.size() * 2, '0');
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    s[2 * i] = kHex[bytes[i] >> 4];
    s[2 * i + 1] = kHex[bytes[i] & 0xf];
  }
  return s;
}

std::string TraceContext::traceparent() const {
  std::string s;
  s.reserve(kTraceparentSize);
  s += "00-";
  s += to_hex(trace_id);
  s += '-';
  s += to_hex(span_id);
  s += '-';
  s += kHex[flags >> 4];
  s += kHex[flags & 0xf];
  return s;
}

std::string TraceContext::trace_id_hex() const { return to_hex(trace_id); }
std::string TraceContext::span_id_hex() const { return to_hex(span_id); }

TraceId new_trace_id() noexcept {
  TraceId id{};
  do {
    fill(id.data(), id.size());
  } while (all_zero(id));
  return id;
}

SpanId new_span_id() noexcept {
  SpanId id{};
  do {
    fill(id.data(), id.size());
  } while (all_zero(id));
  return id;
}

std::string_view to_string(SpanKind kind) noexcept {
  switch (kind) {
    case SpanKind::internal: return "internal";
    case SpanKind::server: return "server";
    case SpanKind::client: return "client";
    case SpanKind::producer: return "producer";
    case SpanKind::consumer: return "consumer";
  }
  return "internal";
}

void set_span_exporter(std::shared_ptr<SpanExporter> exporter) {
  std::lock_guard lock(exporter_mutex);
  exporter_set.store(exporter != nullptr, std::memory_order_release);
  exporter_ptr = std::move(exporter);
}

std::shared_ptr<SpanExporter> span_exporter() {
  if (!exporter_set.load(std::memory_order_acquire)) return nullptr;
  std::lock_guard lock(exporter_mutex);
  return exporter_ptr;
}

struct InMemorySpanExporter::Impl {
  std::size_t capacity;
  mutable std::mutex mutex;
  std::deque<SpanData> spans;
};

InMemorySpanExporter::InMemorySpanExporter(std::size_t capacity)
    : impl_(std::make_unique<Impl>()) {
  impl_->capacity = capacity;
}
InMemorySpanExporter::~InMemorySpanExporter() = default;

void InMemorySpanExporter::export_span(SpanData&& span) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->spans.size() == impl_->capacity) impl_->spans.pop_front();
  impl_->spans.push_back(std::move(span));
}

std::vector<SpanData> InMemorySpanExporter::spans() const {
  std::lock_guard lock(impl_->mutex);
  return {impl_->spans.begin(), impl_->spans.end()};
}

void InMemorySpanExporter::clear() {
  std::lock_guard lock(impl_->mutex);
  impl_->spans.clear();
}

Span::Span(std::string_view name, SpanKind kind, const TraceContext* parent) {
  const bool has_parent = parent != nullptr && parent->valid();
  if (has_parent) {
    ctx_.trace_id = parent->trace_id;
    ctx_.flags = parent->flags;
  } else {
    ctx_.trace_id = new_trace_id();
    ctx_.flags = 0x01;
  }
  ctx_.span_id = new_span_id();
  if (ctx_.sampled() && exporter_set.load(std::memory_order_acquire)) {
    data_ = std::make_unique<SpanData>();
    data_->name = name;
    data_->kind = kind;
    data_->context = ctx_;
    if (has_parent) data_->parent_span_id = parent->span_id;
    data_->start = std::chrono::system_clock::now();
  }
}

Span::Span(Span&& other) noexcept : ctx_(other.ctx_), data_(std::move(other.data_)) {}

Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    end();
    ctx_ = other.ctx_;
    data_ = std::move(other.data_);
  }
  return *this;
}

Span::~Span() { end(); }

void Span::set_name(std::string_view name) {
  if (data_) data_->name = name;
}

void Span::set_attribute(std::string_view key, AttributeValue value) {
  if (!data_) return;
  for (auto& [k, v] : data_->attributes) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  data_->attributes.emplace_back(std::string(key), std::move(value));
}

void Span::set_error(std::string_view message) {
  if (!data_) return;
  data_->error = true;
  data_->status_message = message;
}

void Span::end() {
  if (!data_) return;
  data_->end = std::chrono::system_clock::now();
  auto data = std::move(data_);
  if (auto exporter = span_exporter()) exporter->export_span(std::move(*data));
}

}  // namespace mercado::obs
