// Hostile input never crashes the server and always gets a 4xx or a close.
#include <mercado/http/server.hpp>

#include <gtest/gtest.h>

#include <random>

#include "test_support.hpp"

namespace mercado::http {
namespace {

namespace asio = boost::asio;
using testing::RawConnection;
using testing::TestServer;
using testing::status_of;
using namespace std::chrono_literals;

void routes(Server& s) {
  s.router().get("/ok", [](Request&) -> asio::awaitable<Response> { co_return Response::text(200, "ok"); });
  s.router().post("/echo", [](Request& r) -> asio::awaitable<Response> {
    co_return Response::text(200, std::string(r.body()));
  });
}

// The server must still answer a well-formed request.
void expect_alive(TestServer& ts) {
  RawConnection c(ts.port());
  c.send("GET /ok HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(status_of(c.read_response()), 200);
}

// Sends `bytes`, then half-closes; the answer must be empty (closed) or a 4xx.
void expect_4xx_or_close(TestServer& ts, std::string_view bytes) {
  RawConnection c(ts.port(), 3s);
  c.send(bytes);
  auto all = c.read_until_close();
  if (!all.empty()) {
    int s = status_of(all);
    EXPECT_TRUE(s >= 400 && s < 500) << "status " << s << " for input of " << bytes.size() << " bytes";
  }
}

TEST(Robustness, RandomGarbage) {
  ServerOptions o;
  o.header_timeout = 300ms;
  TestServer ts(routes, o);
  std::mt19937 rng(12345);
  for (int i = 0; i < 150; ++i) {
    std::string junk(1 + rng() % 600, '\0');
    for (auto& ch : junk) ch = static_cast<char>(rng() % 256);
    if (i % 3 == 0) junk += "\r\n\r\n";  // make it look complete sometimes
    expect_4xx_or_close(ts, junk);
  }
  expect_alive(ts);
}

TEST(Robustness, MutatedValidRequests) {
  ServerOptions o;
  o.header_timeout = 300ms;
  TestServer ts(routes, o);
  const std::string valid =
      "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello";
  std::mt19937 rng(777);
  for (int i = 0; i < 150; ++i) {
    std::string m = valid;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      auto pos = rng() % m.size();
      switch (rng() % 3) {
        case 0: m[pos] = static_cast<char>(rng() % 256); break;
        case 1: m.erase(pos, 1); break;
        default: m.insert(pos, 1, static_cast<char>(rng() % 256)); break;
      }
    }
    RawConnection c(ts.port(), 3s);
    c.send(m);
    auto all = c.read_until_close();
    // A mutation may still be a valid request (200) -- anything else must be 4xx or close.
    if (!all.empty()) {
      int s = status_of(all);
      EXPECT_TRUE(s == 200 || (s >= 400 && s < 500)) << s;
    }
  }
  expect_alive(ts);
}

TEST(Robustness, OversizedHeadersGet431) {
  ServerOptions o;
  o.header_limit = 8 * 1024;
  TestServer ts(routes, o);
  RawConnection c(ts.port());
  c.send("GET /ok HTTP/1.1\r\nHost: t\r\nX-Big: " + std::string(64 * 1024, 'a') + "\r\n\r\n");
  auto all = c.read_until_close();
  EXPECT_EQ(status_of(all), 431);
  RawConnection many(ts.port());
  std::string req = "GET /ok HTTP/1.1\r\nHost: t\r\n";
  for (int i = 0; i < 2000; ++i) req += "X-" + std::to_string(i) + ": v\r\n";
  many.send(req + "\r\n");
  EXPECT_EQ(status_of(many.read_until_close()), 431);
  expect_alive(ts);
}

TEST(Robustness, HugeRequestLineGets431) {
  TestServer ts(routes);
  RawConnection c(ts.port());
  c.send("GET /" + std::string(100 * 1024, 'a') + " HTTP/1.1\r\nHost: t\r\n\r\n");
  EXPECT_EQ(status_of(c.read_until_close()), 431);
}

TEST(Robustness, BrokenChunkedBodies) {
  TestServer ts(routes);
  for (std::string body : {
           std::string("zz\r\nhello\r\n0\r\n\r\n"),               // bad size
           std::string("5\r\nhelloXX0\r\n\r\n"),                  // missing CRLF after data
           std::string("ffffffffffffffffff\r\n"),                  // size overflow
           std::string("5;ext=\"unterminated\r\nhello\r\n0\r\n\r\n"),
           std::string("-5\r\nhello\r\n0\r\n\r\n"),
       }) {
    expect_4xx_or_close(ts, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n" + body);
  }
  expect_alive(ts);
}

TEST(Robustness, AmbiguousFramingIsRefused) {
  TestServer ts(routes);
  RawConnection both(ts.port());
  both.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
            "5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(status_of(both.read_until_close()), 400);
  RawConnection two(ts.port());
  two.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!");
  EXPECT_EQ(status_of(two.read_until_close()), 400);
  RawConnection neg(ts.port());
  neg.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n");
  EXPECT_EQ(status_of(neg.read_until_close()), 400);
  RawConnection nohost(ts.port());
  nohost.send("GET /ok HTTP/1.1\r\n\r\n");
  EXPECT_EQ(status_of(nohost.read_until_close()), 400);
}

TEST(Robustness, ClientVanishingMidRequestIsHarmless) {
  TestServer ts(routes);
  for (int i = 0; i < 50; ++i) {
    RawConnection c(ts.port());
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\npartial");
    c.close();
  }
  expect_alive(ts);
}

TEST(Robustness, SlowlorisIsCutOff) {
  ServerOptions o;
  o.header_timeout = 200ms;
  TestServer ts(routes, o);
  RawConnection c(ts.port());
  c.send("GET /ok HTTP/1.1\r\n");
  c.send("X-a: 1\r\n");  // trickling does not extend the header deadline
  auto all = c.read_until_close();
  EXPECT_EQ(status_of(all), 408);
  expect_alive(ts);
}

}  // namespace
}  // namespace mercado::http

// Regression (found by fuzz/http_request_fuzz): Beast 1.81's parser asserts when a final
// chunk arrives split across reads and is followed by a bare LF. It must be a 400.
#include "request_parser.hpp"

namespace mercado::http {
namespace {

TEST(Robustness, SplitFinalChunkWithBareLfIsABadRequestNotACrash) {
  Request req;
  detail::RequestParser parser(req, 1024, 1024);
  std::string first = "POST /orders HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  detail::ParseFailure failure = detail::ParseFailure::none;
  std::string why;
  std::size_t used = parser.feed(first, failure, why);
  ASSERT_EQ(failure, detail::ParseFailure::none);
  std::string rest = first.substr(used) + "\n";
  parser.feed(rest, failure, why);
  EXPECT_EQ(failure, detail::ParseFailure::bad_request);
}

}  // namespace
}  // namespace mercado::http

namespace mercado::http {
namespace {

// Regression (found by fuzz/http_request_fuzz): trailer fields after a chunked body must not
// touch the already indexed head (they used to grow it under the live views).
TEST(Robustness, ChunkedTrailersLeaveTheHeadIntact) {
  Request req;
  detail::RequestParser parser(req, 1 << 20, 1 << 14);
  std::string in = "POST /orders?x=1 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\n0\r\n";
  for (int i = 0; i < 200; ++i) in += "X-Trailer-" + std::to_string(i) + ": " + std::string(50, 'v') + "\r\n";
  in += "\r\n";
  detail::ParseFailure failure = detail::ParseFailure::none;
  std::string why;
  parser.feed(in, failure, why);
  ASSERT_EQ(failure, detail::ParseFailure::none) << why;
  ASSERT_TRUE(parser.is_done());
  EXPECT_EQ(req.path(), "/orders");
  EXPECT_EQ(req.query("x"), "1");
  EXPECT_EQ(req.header("host"), "h");
  EXPECT_EQ(req.body(), "hello");
  EXPECT_FALSE(req.header("X-Trailer-1"));
}

}  // namespace
}  // namespace mercado::http
