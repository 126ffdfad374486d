// Handler tests in process: no sockets, a Request built in memory.
#include "api/routes.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

namespace hello::api {
namespace {

namespace http = mercado::http;
namespace json = boost::json;

class RoutesTest : public ::testing::Test {
 protected:
  void SetUp() override { register_routes(router, {}, client); }

  http::Response call(http::Method m, std::string_view target, std::string body = {},
                      http::Headers headers = {}) {
    auto req = http::Request::make(m, target, headers, std::move(body));
    auto match = router.match(m, req.path());
    EXPECT_EQ(match.kind, http::Router::Match::Kind::found);
    req.set_route(match.path_template, match.params);
    boost::asio::io_context ctx;
    http::Response out;
    boost::asio::co_spawn(ctx, match.route->handler(req), [&](std::exception_ptr e, http::Response r) {
      if (e) std::rethrow_exception(e);
      out = std::move(r);
    });
    ctx.run();
    return out;
  }

  http::Router router;
  http::Client client;
};

TEST_F(RoutesTest, HelloGreetsByPathParameter) {
  auto r = call(http::Method::get, "/hello/ana%20mar%C3%ADa");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(json::parse(r.body).at("message").as_string(), "Hello, ana maría!");
}

TEST_F(RoutesTest, CreateGreetingValidatesTheBody) {
  auto ok = call(http::Method::post, "/greetings", R"({"name":"Ana","language":"es"})",
                 {{"Content-Type", "application/json"}});
  EXPECT_EQ(ok.status, 201);
  EXPECT_EQ(json::parse(ok.body).at("message").as_string(), "Hola, Ana!");

  auto bad = call(http::Method::post, "/greetings", R"({"language":"fr","extra":1})",
                  {{"Content-Type", "application/json"}});
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.content_type, "application/problem+json");
  auto errors = json::parse(bad.body).at("errors").as_array();
  ASSERT_EQ(errors.size(), 2U);  // both problems reported at once
  EXPECT_EQ(errors[0].at("field").as_string(), "name");
  EXPECT_EQ(errors[1].at("field").as_string(), "language");

  auto not_json = call(http::Method::post, "/greetings", "{", {{"Content-Type", "application/json"}});
  EXPECT_EQ(not_json.status, 400);
}

TEST_F(RoutesTest, ChainWithoutUpstreamIs503) {
  auto r = call(http::Method::get, "/chain/ana");
  EXPECT_EQ(r.status, 503);
}

}  // namespace
}  // namespace hello::api
