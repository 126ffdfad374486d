#include <mercado/http/json_body.hpp>
#include <mercado/http/problem.hpp>
#include <mercado/http/request.hpp>

#include <gtest/gtest.h>

#include <boost/json.hpp>

namespace mercado::http {
namespace {

TEST(Request, MakeSplitsTargetAndFindsHeaders) {
  auto r = Request::make(Method::get, "/search?q=caf%C3%A9+con+leche&page=2&flag",
                         {{"X-Thing", "1"}, {"Accept", "application/json"}});
  EXPECT_EQ(r.method_name(), "GET");
  EXPECT_EQ(r.path(), "/search");
  EXPECT_EQ(r.query_string(), "q=caf%C3%A9+con+leche&page=2&flag");
  EXPECT_EQ(r.query("q"), "café con leche");
  EXPECT_EQ(r.query("page"), "2");
  EXPECT_EQ(r.query("flag"), "");
  EXPECT_FALSE(r.query("missing"));
  EXPECT_EQ(r.header("x-thing"), "1");
  EXPECT_EQ(r.header("ACCEPT"), "application/json");
  EXPECT_FALSE(r.header("nope"));
  EXPECT_EQ(r.query_params().size(), 3U);
}

TEST(Request, InvalidQueryEncodingIsDetected) {
  auto r = Request::make(Method::get, "/x?a=%zz");
  EXPECT_FALSE(r.query_valid());
  EXPECT_FALSE(r.query("a"));
}

TEST(Request, AbsoluteFormTargetRoutesOnItsPath) {
  auto r = Request::make(Method::get, "http://example.com/users/1?x=1");
  EXPECT_EQ(r.path(), "/users/1");
  EXPECT_EQ(r.query("x"), "1");
}

TEST(Request, PathParametersAreDecodedAndTyped) {
  auto r = Request::make(Method::get, "/users/a%20b/7");
  PathParams p;
  p.items[0] = {"name", "a%20b"};
  p.items[1] = {"n", "x7"};
  p.items[2] = {"ok", "-12"};
  p.size = 3;
  r.set_route("/users/{name}/{n}", p);
  EXPECT_EQ(r.param("name"), "a b");
  EXPECT_FALSE(r.param("missing"));
  auto bad = r.param_int("n");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, Errc::invalid_argument);
  EXPECT_EQ(*r.param_int("ok"), -12);
}

TEST(Request, MoveKeepsViewsValid) {
  auto a = Request::make(Method::post, "/x?k=v", {{"H", "1"}}, "body");
  Request b = std::move(a);
  Request c;
  c = std::move(b);
  EXPECT_EQ(c.path(), "/x");
  EXPECT_EQ(c.query("k"), "v");
  EXPECT_EQ(c.header("h"), "1");
  EXPECT_EQ(c.body(), "body");
}

TEST(Problem, ErrorMapsToStatusAndBody) {
  auto req = Request::make(Method::post, "/users");
  Error e(Errc::invalid_argument, "2 invalid fields");
  e.type = "validation";
  e.fields = {{"email", "is required"}, {"password", "too short"}};
  e.internal = "secret detail";
  auto res = problem(req, e);
  EXPECT_EQ(res.status, 400);
  EXPECT_EQ(res.content_type, "application/problem+json");
  auto v = boost::json::parse(res.body).as_object();
  EXPECT_EQ(v.at("type").as_string(), "urn:mercado:problem:validation");
  EXPECT_EQ(v.at("title").as_string(), "Bad Request");
  EXPECT_EQ(v.at("status").as_int64(), 400);
  EXPECT_EQ(v.at("instance").as_string(), "/users");
  EXPECT_EQ(v.at("errors").as_array().size(), 2U);
  EXPECT_EQ(res.body.find("secret"), std::string::npos);
}

TEST(Problem, StatusMapping) {
  EXPECT_EQ(status_for(Errc::not_found), 404);
  EXPECT_EQ(status_for(Errc::conflict), 409);
  EXPECT_EQ(status_for(Errc::unavailable), 503);
  EXPECT_EQ(status_for(Errc::timeout), 504);
  EXPECT_EQ(errc_for_status(429), Errc::rate_limited);
}

struct Greeting {
  std::string name;
  std::int64_t times = 0;
};
BOOST_DESCRIBE_STRUCT(Greeting, (), (name, times))

TEST(JsonBody, ReadsJsonAndRejectsOtherMediaTypes) {
  auto ok = Request::make(Method::post, "/g", {{"Content-Type", "application/json; charset=utf-8"}},
                          R"({"name":"ana","times":2})");
  auto g = read_json<Greeting>(ok);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->name, "ana");
  auto form = Request::make(Method::post, "/g", {{"Content-Type", "text/plain"}}, "x");
  auto bad = read_json<Greeting>(form);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().type, "unsupported-media-type");
  auto res = problem(form, bad.error());
  EXPECT_EQ(res.status, 415);
}

}  // namespace
}  // namespace mercado::http
