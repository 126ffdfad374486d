#pragma once
// Exports ended spans to an OpenTelemetry collector over OTLP/HTTP with JSON encoding
// (POST <endpoint>/v1/traces). Spans are queued (bounded; overflow is counted and dropped,
// never blocking the caller) and sent in batches from one io_context every `interval` or
// when a batch fills. Failed sends are retried on 429/502/503/504 only, as the OTLP spec
// asks; other failures drop the batch. The exporter's own HTTP calls are not traced.
//
// Thread-safe: export_span() may be called from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>

#include <mercado/observability/trace.hpp>

namespace mercado::http {

struct OtlpOptions {
  std::string endpoint;      // e.g. http://127.0.0.1:4318
  std::string service_name;  // resource attribute service.name
  std::string instance;      // resource attribute service.instance.id
  std::chrono::milliseconds interval{1000};
  std::size_t max_batch = 512;
  std::size_t max_queue = 8192;
};

struct OtlpStats {
  std::uint64_t exported = 0;
  std::uint64_t dropped = 0;   // queue full, or a batch given up on
  std::uint64_t batches = 0;
};

class OtlpExporter final : public obs::SpanExporter {
 public:
  // Starts the sender on `ctx`. Install it with obs::set_span_exporter().
  static std::shared_ptr<OtlpExporter> start(boost::asio::io_context& ctx, OtlpOptions options);
  ~OtlpExporter() override;

  void export_span(obs::SpanData&& span) override;
  // Sends everything queued now; completes when done (or failed).
  boost::asio::awaitable<void> flush();
  // Stops the periodic sender (queued spans stay until flush()).
  void stop();
  OtlpStats stats() const noexcept;

  // The OTLP JSON body for these spans (exposed for tests).
  static std::string encode(const std::vector<obs::SpanData>& spans, const OtlpOptions& options);

 private:
  struct Impl;
  explicit OtlpExporter(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace mercado::http
