#include <mercado/observability/trace.hpp>

#include <gtest/gtest.h>

namespace mercado::obs {
namespace {

constexpr std::string_view kValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceContext, ParsesAndFormatsTraceparent) {
  auto ctx = TraceContext::parse(kValid);
  ASSERT_TRUE(ctx);
  EXPECT_EQ(ctx->trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(ctx->span_id_hex(), "00f067aa0ba902b7");
  EXPECT_TRUE(ctx->sampled());
  EXPECT_EQ(ctx->traceparent(), kValid);
}

TEST(TraceContext, RejectsInvalidHeaders) {
  for (std::string_view bad : {
           "",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",         // no flags
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",      // zero trace id
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",      // zero span id
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",      // uppercase
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      // version ff
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",    // v00 with extra
           "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      // separator
           "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",      // non-hex
       }) {
    EXPECT_FALSE(TraceContext::parse(bad)) << bad;
  }
}

TEST(TraceContext, AcceptsFutureVersionsWithExtraFields) {
  auto ctx = TraceContext::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra");
  ASSERT_TRUE(ctx);
  EXPECT_EQ(ctx->span_id_hex(), "00f067aa0ba902b7");
}

TEST(Span, ChildKeepsTraceIdAndGetsNewSpanId) {
  auto parent = *TraceContext::parse(kValid);
  Span child("op", SpanKind::server, &parent);
  EXPECT_EQ(child.context().trace_id, parent.trace_id);
  EXPECT_NE(child.context().span_id, parent.span_id);
  EXPECT_TRUE(child.context().valid());
}

TEST(Span, WithoutParentStartsNewSampledTrace) {
  Span a("a", SpanKind::internal, nullptr);
  Span b("b", SpanKind::internal, nullptr);
  EXPECT_TRUE(a.context().valid());
  EXPECT_TRUE(a.context().sampled());
  EXPECT_NE(a.context().trace_id, b.context().trace_id);
}

TEST(Span, EndedSpansReachTheExporterWithAttributes) {
  auto exporter = std::make_shared<InMemorySpanExporter>();
  set_span_exporter(exporter);
  auto parent = *TraceContext::parse(kValid);
  {
    Span s("GET /users/{id}", SpanKind::server, &parent);
    s.set_attribute("http.status_code", std::int64_t{200});
    s.set_attribute("http.route", std::string("/users/{id}"));
    s.set_error("boom");
  }
  set_span_exporter(nullptr);
  auto spans = exporter->spans();
  ASSERT_EQ(spans.size(), 1U);
  EXPECT_EQ(spans[0].name, "GET /users/{id}");
  ASSERT_TRUE(spans[0].parent_span_id);
  EXPECT_EQ(*spans[0].parent_span_id, parent.span_id);
  EXPECT_TRUE(spans[0].error);
  ASSERT_EQ(spans[0].attributes.size(), 2U);
  EXPECT_EQ(std::get<std::int64_t>(spans[0].attributes[0].second), 200);
  EXPECT_GE(spans[0].end, spans[0].start);
}

TEST(Span, UnsampledTracesAreNotRecorded) {
  auto exporter = std::make_shared<InMemorySpanExporter>();
  set_span_exporter(exporter);
  auto parent = *TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
  { Span s("x", SpanKind::server, &parent); EXPECT_FALSE(s.recording()); }
  set_span_exporter(nullptr);
  EXPECT_TRUE(exporter->spans().empty());
}

TEST(Span, InMemoryExporterKeepsTheNewest) {
  InMemorySpanExporter e(2);
  for (int i = 0; i < 3; ++i) {
    SpanData d;
    d.name = std::to_string(i);
    e.export_span(std::move(d));
  }
  auto spans = e.spans();
  ASSERT_EQ(spans.size(), 2U);
  EXPECT_EQ(spans[0].name, "1");
  EXPECT_EQ(spans[1].name, "2");
}

}  // namespace
}  // namespace mercado::obs
