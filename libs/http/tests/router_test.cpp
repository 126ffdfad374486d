#include <mercado/http/router.hpp>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace mercado::http {
namespace {

Handler h() {
  return [](Request&) -> boost::asio::awaitable<Response> { co_return Response(200); };
}

class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    r.get("/", h());
    r.get("/users", h());
    r.post("/users", h());
    r.get("/users/me", h());
    r.get("/users/{id}", h());
    r.put("/users/{id}/profile", h());
    r.get("/orders/{n:int}", h());
    r.get("/orders/{ref}", h());
    r.get("/items/{id:uuid}", h());
    r.get("/files/{rest:path}", h());
    r.get("/a/{x}/c", h());
    r.get("/a/b/d", h());
    r.get("/slash/", h());
  }
  Router r;
};

TEST_F(RouterTest, LiteralBeatsParameter) {
  auto m = r.match(Method::get, "/users/me");
  ASSERT_EQ(m.kind, Router::Match::Kind::found);
  EXPECT_EQ(m.path_template, "/users/me");
  EXPECT_EQ(m.params.size, 0U);
}

TEST_F(RouterTest, ParameterCaptured) {
  auto m = r.match(Method::get, "/users/42");
  ASSERT_EQ(m.kind, Router::Match::Kind::found);
  EXPECT_EQ(m.path_template, "/users/{id}");
  EXPECT_EQ(m.params.find("id"), "42");
}

TEST_F(RouterTest, TypedIntParameterBeatsText) {
  auto num = r.match(Method::get, "/orders/-17");
  EXPECT_EQ(num.path_template, "/orders/{n:int}");
  EXPECT_EQ(num.params.find("n"), "-17");
  auto text = r.match(Method::get, "/orders/abc");
  EXPECT_EQ(text.path_template, "/orders/{ref}");
  EXPECT_EQ(text.params.find("ref"), "abc");
}

TEST_F(RouterTest, UuidParameterOnlyMatchesUuids) {
  EXPECT_EQ(r.match(Method::get, "/items/123e4567-e89b-12d3-a456-426614174000").kind,
            Router::Match::Kind::found);
  EXPECT_EQ(r.match(Method::get, "/items/not-a-uuid").kind, Router::Match::Kind::not_found);
}

TEST_F(RouterTest, RestParameterTakesTheRemainder) {
  auto m = r.match(Method::get, "/files/a/b/c.txt");
  ASSERT_EQ(m.kind, Router::Match::Kind::found);
  EXPECT_EQ(m.params.find("rest"), "a/b/c.txt");
  EXPECT_EQ(r.match(Method::get, "/files/").kind, Router::Match::Kind::not_found);
}

TEST_F(RouterTest, BacktracksWhenALiteralBranchDeadEnds) {
  auto m = r.match(Method::get, "/a/b/c");
  ASSERT_EQ(m.kind, Router::Match::Kind::found);
  EXPECT_EQ(m.path_template, "/a/{x}/c");
  EXPECT_EQ(m.params.find("x"), "b");
}

TEST_F(RouterTest, WrongMethodGives405WithAllow) {
  auto m = r.match(Method::delete_, "/users/7");
  ASSERT_EQ(m.kind, Router::Match::Kind::method_not_allowed);
  EXPECT_EQ(m.path_template, "/users/{id}");
  EXPECT_EQ(m.allow, "GET, HEAD, OPTIONS");
  auto both = r.match(Method::delete_, "/users");
  EXPECT_EQ(both.allow, "GET, HEAD, POST, OPTIONS");
}

TEST_F(RouterTest, HeadFallsBackToGetAndOptionsIsAutomatic) {
  auto head = r.match(Method::head, "/users");
  ASSERT_EQ(head.kind, Router::Match::Kind::found);
  EXPECT_TRUE(head.head_via_get);
  auto opt = r.match(Method::options, "/users");
  ASSERT_EQ(opt.kind, Router::Match::Kind::found);
  EXPECT_TRUE(opt.options_auto);
  EXPECT_EQ(opt.allow, "GET, HEAD, POST, OPTIONS");
}

TEST_F(RouterTest, UnknownPathsAndEdgeCases) {
  EXPECT_EQ(r.match(Method::get, "/nope").kind, Router::Match::Kind::not_found);
  EXPECT_EQ(r.match(Method::get, "/users/").kind, Router::Match::Kind::not_found);  // trailing slash matters
  EXPECT_EQ(r.match(Method::get, "/users//profile").kind, Router::Match::Kind::not_found);
  EXPECT_EQ(r.match(Method::get, "").kind, Router::Match::Kind::not_found);
  EXPECT_EQ(r.match(Method::get, "users").kind, Router::Match::Kind::not_found);
  EXPECT_EQ(r.match(Method::get, "/").kind, Router::Match::Kind::found);
  EXPECT_EQ(r.match(Method::get, "/slash/").kind, Router::Match::Kind::found);
  EXPECT_EQ(r.match(Method::get, "/slash").kind, Router::Match::Kind::not_found);
  EXPECT_EQ(r.match(Method::other, "/users").kind, Router::Match::Kind::method_not_allowed);
}

TEST(Router, RejectsBadTemplates) {
  Router r;
  EXPECT_THROW(r.get("users", h()), std::invalid_argument);
  EXPECT_THROW(r.get("/u/x{id}", h()), std::invalid_argument);
  EXPECT_THROW(r.get("/u/{id:float}", h()), std::invalid_argument);
  EXPECT_THROW(r.get("/u/{}", h()), std::invalid_argument);
  EXPECT_THROW(r.get("/u//x", h()), std::invalid_argument);
  EXPECT_THROW(r.get("/f/{p:path}/more", h()), std::invalid_argument);
  r.get("/u/{id}", h());
  EXPECT_THROW(r.get("/u/{id}", h()), std::invalid_argument);          // duplicate
  EXPECT_THROW(r.get("/u/{other}/x", h()), std::invalid_argument);     // same-type param, new name
  EXPECT_NO_THROW(r.post("/u/{id}", h()));
}

TEST(Router, MiddlewareWrapsInOrder) {
  Router r;
  std::string trace;
  r.get("/x", [&](Request&) -> boost::asio::awaitable<Response> {
    trace += "h";
    co_return Response(200);
  });
  std::vector<Middleware> mw;
  mw.push_back([&](Request& req, const Handler& next) -> boost::asio::awaitable<Response> {
    trace += "1";
    auto res = co_await next(req);
    trace += "1";
    co_return res;
  });
  mw.push_back([&](Request& req, const Handler& next) -> boost::asio::awaitable<Response> {
    trace += "2";
    auto res = co_await next(req);
    trace += "2";
    co_return res;
  });
  r.apply(mw);
  auto m = r.match(Method::get, "/x");
  boost::asio::io_context ctx;
  auto req = Request::make(Method::get, "/x");
  boost::asio::co_spawn(ctx, m.route->handler(req), [](std::exception_ptr, Response) {});
  ctx.run();
  EXPECT_EQ(trace, "12h21");
}

}  // namespace
}  // namespace mercado::http
