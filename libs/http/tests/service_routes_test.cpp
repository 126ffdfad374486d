#include <mercado/http/service_routes.hpp>

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>

#include "test_support.hpp"

namespace mercado::http {
namespace {

namespace asio = boost::asio;
using testing::RawConnection;
using testing::TestServer;
using testing::body_of;
using testing::status_of;

std::string get(RawConnection& c, std::string_view path) {
  c.send("GET " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n\r\n");
  return c.read_response();
}

TEST(ServiceRoutes, HealthIsUp) {
  auto ready = std::make_shared<Readiness>();
  TestServer* self = nullptr;
  TestServer ts([&](Server& s) { add_service_routes(s, {"svc", "svc-1"}, ready); });
  (void)self;
  RawConnection c(ts.port());
  auto r = get(c, "/health");
  EXPECT_EQ(status_of(r), 200);
  auto v = boost::json::parse(body_of(r)).as_object();
  EXPECT_EQ(v.at("status").as_string(), "UP");
  EXPECT_EQ(v.at("service").as_string(), "svc");
}

TEST(ServiceRoutes, ReadyReflectsChecksAndNamesTheFailingOne) {
  auto ready = std::make_shared<Readiness>();
  std::atomic<bool> db_up{false};
  ready->add_sync("database", [&]() -> Result<void> {
    if (db_up) return {};
    return fail(Errc::unavailable, "cannot open orders.db");
  });
  ready->add_sync("bus", []() -> Result<void> { return {}; });
  TestServer ts([&](Server& s) { add_service_routes(s, {"svc", "svc-1"}, ready); });
  RawConnection c(ts.port());
  auto down = get(c, "/ready");
  EXPECT_EQ(status_of(down), 503);
  auto p = boost::json::parse(body_of(down)).as_object();
  EXPECT_EQ(p.at("type").as_string(), "urn:mercado:problem:not-ready");
  EXPECT_NE(p.at("detail").as_string().find("database (cannot open orders.db)"), std::string::npos);
  EXPECT_EQ(p.at("checks").as_array().size(), 2U);
  db_up = true;
  auto up = get(c, "/ready");
  EXPECT_EQ(status_of(up), 200);
  EXPECT_EQ(boost::json::parse(body_of(up)).as_object().at("status").as_string(), "READY");
}

TEST(ServiceRoutes, MetricsPassPromtool) {
  auto ready = std::make_shared<Readiness>();
  std::unique_ptr<TestServer> ts;
  ts = std::make_unique<TestServer>([&](Server& s) {
    s.router().get("/users/{id}", [](Request&) -> asio::awaitable<Response> { co_return Response(200); });
    add_service_routes(s, {"svc", "svc-1"}, ready, obs::Registry::global());
  });
  // The test server records into its own registry; expose that one through a second route
  // set would duplicate /metrics, so scrape its registry's text through the global one.
  obs::register_process_metrics(ts->metrics());
  RawConnection c(ts->port());
  for (auto path : {"/users/1", "/users/2", "/nope", "/health"}) get(c, path);
  std::string text = ts->metrics().expose();
  ASSERT_NE(text.find("http_requests_total"), std::string::npos);
  ASSERT_NE(text.find("http_request_duration_seconds_bucket"), std::string::npos);

  std::string path = ::testing::TempDir() + "metrics_" + std::to_string(::getpid()) + ".prom";
  std::ofstream(path) << text;
  std::string cmd = "promtool check metrics < " + path + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  int rc = ::pclose(p);
  std::remove(path.c_str());
  ASSERT_NE(WEXITSTATUS(rc), 127) << "promtool is not installed (scripts/setup.sh test installs it)";
  EXPECT_EQ(rc, 0) << out << "\n" << text;
}

TEST(ServiceRoutes, MetricsEndpointServesTheRegistry) {
  obs::Registry reg;
  reg.counter("things_total", "Things").get().inc(3);
  auto ready = std::make_shared<Readiness>();
  TestServer ts([&](Server& s) { add_service_routes(s, {"svc", "svc-1"}, ready, reg); });
  RawConnection c(ts.port());
  auto r = get(c, "/metrics");
  EXPECT_EQ(status_of(r), 200);
  EXPECT_EQ(testing::header_of(r, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(body_of(r).find("things_total 3"), std::string::npos);
}

TEST(ServiceRoutes, ReadyIs503WhileDraining) {
  auto ready = std::make_shared<Readiness>();
  TestServer ts([&](Server& s) { add_service_routes(s, {"svc", "svc-1"}, ready); });
  RawConnection c(ts.port());
  EXPECT_EQ(status_of(get(c, "/ready")), 200);
  // Start draining with a request in flight on another connection so /ready can still be
  // asked on `c` (its request is sent before the drain closes idle connections).
  c.send("GET /ready HTTP/1.1\r\nHost: t\r\n\r\n");
  auto done = std::make_shared<std::promise<void>>();  // outlives a set_value() still running
  auto finished = done->get_future();
  ts.server().shutdown(std::chrono::seconds(2), [done] { done->set_value(); });
  auto r = c.read_response();
  // The request raced the drain: it was either answered as draining (503) before the close,
  // or the idle connection was closed first (empty).
  if (!r.empty()) {
    EXPECT_TRUE(status_of(r) == 503 || status_of(r) == 200);
  }
  finished.wait();
}

}  // namespace
}  // namespace mercado::http
