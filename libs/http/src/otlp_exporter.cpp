#include <mercado/http/otlp_exporter.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <deque>
#include <mutex>
#include <vector>

#include <mercado/http/client.hpp>
#include <mercado/observability/log.hpp>

namespace mercado::http {

namespace asio = boost::asio;
namespace json = boost::json;

struct OtlpExporter::Impl : std::enable_shared_from_this<OtlpExporter::Impl> {
  asio::io_context& ctx;
  OtlpOptions options;
  Client client;
  std::mutex mutex;
  std::deque<obs::SpanData> queue;
  std::atomic<std::uint64_t> exported{0};
  std::atomic<std::uint64_t> dropped{0};
  std::atomic<std::uint64_t> batches{0};
  std::atomic<bool> stopped{false};
  asio::steady_timer timer;

  Impl(asio::io_context& c, OtlpOptions o)
      : ctx(c), options(std::move(o)), client(ClientOptions{.connect_timeout = std::chrono::seconds(2),
                                                             .request_timeout = std::chrono::seconds(5)}),
        timer(c) {}

  std::vector<obs::SpanData> take(std::size_t max) {
    std::lock_guard lock(mutex);
    std::vector<obs::SpanData> out;
    while (!queue.empty() && out.size() < max) {
      out.push_back(std::move(queue.front()));
      queue.pop_front();
    }
    return out;
  }

  asio::awaitable<void> send(std::vector<obs::SpanData> batch) {
    if (batch.empty()) co_return;
    std::string body = OtlpExporter::encode(batch, options);
    // A never-sampled parent keeps the exporter's own calls out of the traces.
    obs::TraceContext untraced;
    untraced.trace_id = obs::new_trace_id();
    untraced.span_id = obs::new_span_id();
    untraced.flags = 0;
    for (int attempt = 0; attempt < 3; ++attempt) {
      ClientRequest req;
      req.method = Method::post;
      req.url = options.endpoint + "/v1/traces";
      req.body = body;
      req.content_type = "application/json";
      req.parent = &untraced;
      auto r = co_await client.send(std::move(req));
      if (r && r->ok()) {
        exported.fetch_add(batch.size());
        batches.fetch_add(1);
        co_return;
      }
      const bool retryable = r ? (r->status == 429 || r->status == 502 || r->status == 503 || r->status == 504)
                               : (r.error().code == ClientErrc::refused || r.error().code == ClientErrc::timeout ||
                                  r.error().code == ClientErrc::closed);
      if (!retryable) break;
      asio::steady_timer pause(ctx, std::chrono::milliseconds(200 << attempt));
      co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
    }
    dropped.fetch_add(batch.size());
    log::warn("dropped spans: the OTLP collector did not take them", {{"spans", batch.size()}, {"endpoint", options.endpoint}});
  }

  asio::awaitable<void> loop() {
    auto self = shared_from_this();
    while (!stopped) {
      timer.expires_after(options.interval);
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      if (stopped) break;
      for (auto batch = take(options.max_batch); !batch.empty(); batch = take(options.max_batch)) {
        co_await send(std::move(batch));
      }
    }
  }
};

std::shared_ptr<OtlpExporter> OtlpExporter::start(asio::io_context& ctx, OtlpOptions options) {
  while (!options.endpoint.empty() && options.endpoint.back() == '/') options.endpoint.pop_back();
  auto impl = std::make_shared<Impl>(ctx, std::move(options));
  asio::co_spawn(ctx, impl->loop(), asio::detached);
  return std::shared_ptr<OtlpExporter>(new OtlpExporter(impl));
}

OtlpExporter::OtlpExporter(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
OtlpExporter::~OtlpExporter() { stop(); }

void OtlpExporter::export_span(obs::SpanData&& span) {
  bool wake = false;
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->queue.size() >= impl_->options.max_queue) {
      impl_->dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    impl_->queue.push_back(std::move(span));
    wake = impl_->queue.size() == impl_->options.max_batch;
  }
  if (wake) {
    asio::post(impl_->ctx, [impl = impl_] { impl->timer.cancel(); });  // send a full batch now
  }
}

asio::awaitable<void> OtlpExporter::flush() {
  for (auto batch = impl_->take(impl_->options.max_batch); !batch.empty(); batch = impl_->take(impl_->options.max_batch)) {
    co_await impl_->send(std::move(batch));
  }
}

void OtlpExporter::stop() {
  if (impl_->stopped.exchange(true)) return;
  asio::post(impl_->ctx, [impl = impl_] { impl->timer.cancel(); });
}

OtlpStats OtlpExporter::stats() const noexcept {
  return {impl_->exported.load(), impl_->dropped.load(), impl_->batches.load()};
}

namespace {

json::object attribute(std::string_view key, const obs::AttributeValue& v) {
  json::object value;
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) {
          value["stringValue"] = x;
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          value["intValue"] = std::to_string(x);  // int64 travels as a string in OTLP JSON
        } else if constexpr (std::is_same_v<T, double>) {
          value["doubleValue"] = x;
        } else {
          value["boolValue"] = x;
        }
      },
      v);
  return json::object{{"key", key}, {"value", std::move(value)}};
}

std::string nanos(std::chrono::system_clock::time_point t) {
  return std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

int otlp_kind(obs::SpanKind k) {
  switch (k) {
    case obs::SpanKind::internal: return 1;
    case obs::SpanKind::server: return 2;
    case obs::SpanKind::client: return 3;
    case obs::SpanKind::producer: return 4;
    case obs::SpanKind::consumer: return 5;
  }
  return 1;
}

}  // namespace

std::string OtlpExporter::encode(const std::vector<obs::SpanData>& spans, const OtlpOptions& options) {
  json::array out_spans;
  for (const auto& s : spans) {
    json::object o;
    o["traceId"] = s.context.trace_id_hex();
    o["spanId"] = s.context.span_id_hex();
    if (s.parent_span_id) o["parentSpanId"] = obs::to_hex(*s.parent_span_id);
    o["name"] = s.name;
    o["kind"] = otlp_kind(s.kind);
    o["startTimeUnixNano"] = nanos(s.start);
    o["endTimeUnixNano"] = nanos(s.end);
    json::array attrs;
    for (const auto& [k, v] : s.attributes) attrs.push_back(attribute(k, v));
    o["attributes"] = std::move(attrs);
    json::object status{{"code", s.error ? 2 : 0}};
    if (s.error && !s.status_message.empty()) status["message"] = s.status_message;
    o["status"] = std::move(status);
    out_spans.push_back(std::move(o));
  }
  json::array resource_attrs{attribute("service.name", std::string(options.service_name))};
  if (!options.instance.empty()) resource_attrs.push_back(attribute("service.instance.id", std::string(options.instance)));
  json::object body{
      {"resourceSpans",
       json::array{json::object{
           {"resource", json::object{{"attributes", std::move(resource_attrs)}}},
           {"scopeSpans", json::array{json::object{{"scope", json::object{{"name", "mercado"}, {"version", "0.1.0"}}},
                                                   {"spans", std::move(out_spans)}}}}}}}};
  return json::serialize(body);
}

}  // namespace mercado::http
