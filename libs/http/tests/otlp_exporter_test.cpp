#include <mercado/http/otlp_exporter.hpp>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/json.hpp>

#include <future>
#include <mutex>

#include "test_support.hpp"

namespace mercado::http {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using testing::TestServer;

TEST(Otlp, EncodesSpansAsOtlpJson) {
  obs::SpanData s;
  s.name = "GET /users/{id}";
  s.kind = obs::SpanKind::server;
  s.context = *obs::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  s.parent_span_id = obs::SpanId{1, 2, 3, 4, 5, 6, 7, 8};
  s.start = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  s.end = s.start + std::chrono::milliseconds(5);
  s.attributes = {{"http.response.status_code", std::int64_t{503}}, {"http.route", std::string("/users/{id}")}};
  s.error = true;
  s.status_message = "boom";
  auto v = json::parse(OtlpExporter::encode({s}, {.service_name = "user-service", .instance = "u-1"}));
  const auto& rs = v.at("resourceSpans").as_array().at(0);
  EXPECT_EQ(rs.at("resource").at("attributes").at(0).at("value").at("stringValue").as_string(), "user-service");
  const auto& span = rs.at("scopeSpans").at(0).at("spans").at(0);
  EXPECT_EQ(span.at("traceId").as_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(span.at("spanId").as_string(), "00f067aa0ba902b7");
  EXPECT_EQ(span.at("parentSpanId").as_string(), "0102030405060708");
  EXPECT_EQ(span.at("kind").as_int64(), 2);
  EXPECT_EQ(span.at("startTimeUnixNano").as_string(), "1700000000000000000");
  EXPECT_EQ(span.at("endTimeUnixNano").as_string(), "1700000000005000000");
  EXPECT_EQ(span.at("attributes").at(0).at("value").at("intValue").as_string(), "503");
  EXPECT_EQ(span.at("status").at("code").as_int64(), 2);
}

TEST(Otlp, ServerSpansReachACollectorOverHttp) {
  // A collector: records every POST /v1/traces body.
  std::mutex m;
  std::vector<std::string> bodies;
  std::promise<void> got;
  bool signalled = false;
  TestServer collector([&](Server& s) {
    s.router().post("/v1/traces", [&](Request& req) -> asio::awaitable<Response> {
      std::lock_guard lock(m);
      bodies.emplace_back(req.body());
      if (!signalled) {
        signalled = true;
        got.set_value();
      }
      co_return Response::json(200, "{}");
    });
  });
  core::IoRuntime exporter_rt(1);
  auto exporter = OtlpExporter::start(exporter_rt.context(0),
                                      {.endpoint = collector.url(), .service_name = "svc",
                                       .interval = std::chrono::milliseconds(20)});
  exporter_rt.start();
  obs::set_span_exporter(exporter);
  {
    TestServer app([](Server& s) {
      s.router().get("/x", [](Request&) -> asio::awaitable<Response> { co_return Response(200); });
    });
    testing::RawConnection c(app.port());
    c.send("GET /x HTTP/1.1\r\nHost: t\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n");
    ASSERT_EQ(testing::status_of(c.read_response()), 200);
  }
  ASSERT_EQ(got.get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  obs::set_span_exporter(nullptr);
  exporter->stop();
  exporter_rt.stop();
  exporter_rt.join();
  std::lock_guard lock(m);
  auto v = json::parse(bodies.at(0));
  const auto& span = v.at("resourceSpans").at(0).at("scopeSpans").at(0).at("spans").at(0);
  EXPECT_EQ(span.at("traceId").as_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(span.at("parentSpanId").as_string(), "00f067aa0ba902b7");
  EXPECT_EQ(span.at("name").as_string(), "GET /x");
  // The exporter's own POSTs were not traced: only the app's span arrived.
  std::size_t spans = 0;
  for (const auto& b : bodies) {
    spans += json::parse(b).at("resourceSpans").at(0).at("scopeSpans").at(0).at("spans").as_array().size();
  }
  EXPECT_EQ(spans, 1U);
}

}  // namespace
}  // namespace mercado::http
