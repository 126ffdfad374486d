#include <mercado/http/problem.hpp>
#include <mercado/http/server.hpp>

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <future>
#include <thread>

#include "test_support.hpp"
#include "write_now.hpp"

namespace mercado::http {
namespace {

using testing::RawConnection;
using testing::TestServer;
using testing::body_of;
using testing::header_of;
using testing::status_of;
namespace asio = boost::asio;
using namespace std::chrono_literals;

void basic_routes(Server& s) {
  s.router().get("/hello/{name}", [](Request& req) -> asio::awaitable<Response> {
    co_return Response::text(200, "hello " + req.param("name").value_or("?"));
  });
  s.router().post("/echo", [](Request& req) -> asio::awaitable<Response> {
    co_return Response::text(201, std::string(req.body()));
  });
  s.router().get("/boom", [](Request&) -> asio::awaitable<Response> {
    throw std::logic_error("handler bug");
    co_return Response(200);
  });
}

std::string get(std::string_view path, std::string_view extra = "") {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n" + std::string(extra) + "\r\n";
}

boost::json::object problem_json(const std::string& response) {
  EXPECT_EQ(header_of(response, "Content-Type"), "application/problem+json") << response;
  return boost::json::parse(body_of(response)).as_object();
}

TEST(Server, AnswersAndKeepsTheConnectionAlive) {
  TestServer ts(basic_routes);
  RawConnection c(ts.port());
  c.send(get("/hello/ana"));
  auto r1 = c.read_response();
  EXPECT_EQ(status_of(r1), 200);
  EXPECT_EQ(body_of(r1), "hello ana");
  EXPECT_EQ(header_of(r1, "Content-Length"), "9");
  EXPECT_FALSE(header_of(r1, "Date").empty());
  c.send(get("/hello/bo"));
  auto r2 = c.read_response();
  EXPECT_EQ(body_of(r2), "hello bo");
  EXPECT_EQ(ts.server().stats().accepted, 1U);
}

TEST(Server, PipelinedRequestsAreAnsweredInOrder) {
  TestServer ts(basic_routes);
  RawConnection c(ts.port());
  c.send(get("/hello/1") + get("/hello/2") + get("/hello/3"));
  EXPECT_EQ(body_of(c.read_response()), "hello 1");
  EXPECT_EQ(body_of(c.read_response()), "hello 2");
  EXPECT_EQ(body_of(c.read_response()), "hello 3");
}

// Requests that arrive in pieces, each after the server's read found nothing more to read: a
// read that returned fewer bytes than it asked for marks the socket drained, and the next
// read waits for the next readiness event instead of trying recv() at once
// (src/drained_read.hpp). A lost wake-up would leave a request unanswered (read_response
// would time out). The pauses only make it likely that each piece arrives after the read.
TEST(Server, RequestsArrivingInPiecesAfterTheSocketWasDrainedAreAllRead) {
  TestServer ts(basic_routes);
  RawConnection c(ts.port());
  for (int i = 0; i < 20; ++i) {
    const std::string body = "piece " + std::to_string(i);
    const std::string request =
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    for (std::string_view piece : testing::in_pieces(request, 5, 2)) {
      c.send(piece);
      std::this_thread::sleep_for(2ms);
    }
    auto r = c.read_response();
    ASSERT_EQ(status_of(r), 201) << "request " << i << ": " << r;
    EXPECT_EQ(body_of(r), body);
  }
  EXPECT_EQ(ts.server().stats().accepted, 1U);
}

TEST(Server, ConnectionCloseIsHonoured) {
  TestServer ts(basic_routes);
  RawConnection c(ts.port());
  c.send(get("/hello/x", "Connection: close\r\n"));
  auto all = c.read_until_close();
  EXPECT_EQ(status_of(all), 200);
  EXPECT_EQ(header_of(all, "Connection"), "close");
}

TEST(Server, Http10KeepAliveOnlyWhenAsked) {
  TestServer ts(basic_routes);
  RawConnection c(ts.port());
  c.send("GET /hello/x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(header_of(r, "Connection"), "keep-alive");
  c.send("GET /hello/y HTTP/1.0\r\n\r\n");
  auto all = c.read_until_close();
  EXPECT_EQ(body_of(all), "hello y");
}

TEST(Server, HeadHasLengthButNoBody) {
  TestServer ts(basic_routes);
  RawConnection c(ts.port());
  c.send("HEAD /hello/ana HTTP/1.1\r\nHost: t\r\n\r\n");
  auto head = c.read_response(/*head_only=*/true);
  EXPECT_EQ(status_of(head), 200);
  EXPECT_EQ(header_of(head, "Content-Length"), "9");
  c.send(get("/hello/z"));
  // Had HEAD sent a body, this response would start with it.
  auto next = c.read_response();
  EXPECT_EQ(status_of(next), 200);
  EXPECT_EQ(body_of(next), "hello z");
}

TEST(Server, UnknownPathIs404Problem) {
  TestServer ts(basic_routes);
  RawConnection c(ts.port());
  c.send(get("/nowhere"));
  auto r = c.read_response();
  EXPECT_EQ(status_of(r), 404);
  auto p = problem_json(r);
  EXPECT_EQ(p.at("status").as_int64(), 404);
  EXPECT_EQ(p.at("type").as_string(), "urn:mercado:problem:not-found");
  EXPECT_EQ(p.at("instance").as_string(), "/nowhere");
  EXPECT_EQ(p.at("trace_id").as_string().size(), 32U);
}

TEST(Server, WrongMethodIs405WithAllow) {
  TestServer ts(basic_routes);
  RawConnection c(ts.port());
  c.send("DELETE /echo HTTP/1.1\r\nHost: t\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(status_of(r), 405);
  EXPECT_EQ(header_of(r, "Allow"), "POST, OPTIONS");
  EXPECT_EQ(problem_json(r).at("type").as_string(), "urn:mercado:problem:method-not-allowed");
}

TEST(Server, OptionsIsAnsweredWithAllow) {
  TestServer ts(basic_routes);
  RawConnection c(ts.port());
  c.send("OPTIONS /echo HTTP/1.1\r\nHost: t\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(status_of(r), 204);
  EXPECT_EQ(header_of(r, "Allow"), "POST, OPTIONS");
}

TEST(Server, MalformedRequestIs400AndClose) {
  TestServer ts(basic_routes);
  RawConnection c(ts.port());
  c.send("GET /hello/x HTTP/1.1\r\nHost: t\r\nBad Header Without Colon\r\n\r\n");
  auto all = c.read_until_close();
  EXPECT_EQ(status_of(all), 400);
  EXPECT_EQ(header_of(all, "Connection"), "close");
  EXPECT_EQ(problem_json(all).at("status").as_int64(), 400);
}

TEST(Server, BodyOverTheLimitIs413) {
  ServerOptions o;
  o.body_limit = 16;
  TestServer ts(basic_routes, o);
  {
    RawConnection c(ts.port());
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n12345678901234567");
    auto all = c.read_until_close();
    EXPECT_EQ(status_of(all), 413);
    EXPECT_EQ(problem_json(all).at("type").as_string(), "urn:mercado:problem:payload-too-large");
  }
  {
    RawConnection c(ts.port());  // chunked: the limit applies as the chunks arrive
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
           "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n");
    EXPECT_EQ(status_of(c.read_until_close()), 413);
  }
  {
    RawConnection c(ts.port());  // exactly at the limit is fine
    c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 16\r\n\r\n1234567890123456");
    auto r = c.read_response();
    EXPECT_EQ(status_of(r), 201);
    EXPECT_EQ(body_of(r), "1234567890123456");
  }
}

TEST(Server, ChunkedBodyIsAssembled) {
  TestServer ts(basic_routes);
  RawConnection c(ts.port());
  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  auto r = c.read_response();
  EXPECT_EQ(status_of(r), 201);
  EXPECT_EQ(body_of(r), "hello world");
}

TEST(Server, ExpectContinueGets100ThenTheAnswer) {
  TestServer ts(basic_routes);
  RawConnection c(ts.port());
  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  auto cont = c.read_response();
  EXPECT_EQ(status_of(cont), 100);
  c.send("data");
  auto r = c.read_response();
  EXPECT_EQ(status_of(r), 201);
  EXPECT_EQ(body_of(r), "data");
}

TEST(Server, ExpectContinueWithTooLargeBodyGets413Directly) {
  ServerOptions o;
  o.body_limit = 10;
  TestServer ts(basic_routes, o);
  RawConnection c(ts.port());
  c.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(status_of(c.read_until_close()), 413);
}

TEST(Server, SlowHeaderGets408ThenClose) {
  ServerOptions o;
  o.header_timeout = 150ms;
  TestServer ts(basic_routes, o);
  RawConnection c(ts.port());
  c.send("GET /hello/x HTTP/1.1\r\nHost: t\r\n");  // never finished
  auto all = c.read_until_close();
  EXPECT_EQ(status_of(all), 408);
  EXPECT_EQ(problem_json(all).at("type").as_string(), "urn:mercado:problem:request-timeout");
}

TEST(Server, IdleKeepAliveConnectionIsClosedSilently) {
  ServerOptions o;
  o.idle_timeout = 100ms;
  TestServer ts(basic_routes, o);
  RawConnection c(ts.port());
  c.send(get("/hello/x"));
  EXPECT_EQ(status_of(c.read_response()), 200);
  EXPECT_EQ(c.read_until_close(), "");  // closed without another response
}

TEST(Server, HandlerExceptionIs500Problem) {
  TestServer ts(basic_routes);
  RawConnection c(ts.port());
  c.send(get("/boom"));
  auto r = c.read_response();
  EXPECT_EQ(status_of(r), 500);
  EXPECT_EQ(problem_json(r).at("detail").as_string(), "internal error");
  c.send(get("/hello/after"));
  EXPECT_EQ(body_of(c.read_response()), "hello after");  // the connection survives
}

TEST(Server, ConnectionLimitAnswers503) {
  ServerOptions o;
  o.max_connections = 1;
  TestServer ts(basic_routes, o, 1);
  RawConnection first(ts.port());
  first.send(get("/hello/1"));
  EXPECT_EQ(status_of(first.read_response()), 200);
  RawConnection second(ts.port());
  auto all = second.read_until_close();
  EXPECT_EQ(status_of(all), 503);
  EXPECT_EQ(header_of(all, "Retry-After"), "1");
  EXPECT_EQ(ts.server().stats().rejected, 1U);
}

TEST(Server, MetricsUseTheRouteTemplate) {
  TestServer ts(basic_routes);
  RawConnection c(ts.port());
  for (auto name : {"a", "b", "c"}) {
    c.send(get(std::string("/hello/") + name));
    c.read_response();
  }
  c.send(get("/nowhere"));
  c.read_response();
  auto text = ts.metrics().expose();
  EXPECT_NE(text.find("http_requests_total{method=\"GET\",endpoint=\"/hello/{name}\",status_code=\"200\"} 3"),
            std::string::npos) << text;
  EXPECT_NE(text.find("http_requests_total{method=\"GET\",endpoint=\"unmatched\",status_code=\"404\"} 1"),
            std::string::npos) << text;
  EXPECT_NE(text.find("http_request_duration_seconds_count{method=\"GET\",endpoint=\"/hello/{name}\"} 3"),
            std::string::npos) << text;
  EXPECT_NE(text.find("active_connections 1"), std::string::npos) << text;
  EXPECT_EQ(text.find("/hello/a"), std::string::npos);  // never the raw path
}

// A handler that parks until the test opens the gate.
struct Gate {
  std::promise<void> entered;
  std::shared_ptr<asio::steady_timer> timer;
  asio::io_context* ctx = nullptr;
  void open() {
    asio::post(*ctx, [t = timer] { t->cancel(); });
  }
};

TEST(Server, GracefulShutdownFinishesInFlightAndRefusesNew) {
  Gate gate;
  TestServer ts([&](Server& s) {
    basic_routes(s);
    s.router().get("/slow", [&](Request&) -> asio::awaitable<Response> {
      auto ex = co_await asio::this_coro::executor;
      gate.ctx = &static_cast<asio::io_context&>(asio::query(ex, asio::execution::context));
      gate.timer = std::make_shared<asio::steady_timer>(ex, std::chrono::hours(1));
      auto t = gate.timer;
      gate.entered.set_value();
      co_await t->async_wait(asio::as_tuple(asio::use_awaitable));
      co_return Response::text(200, "finished");
    });
  });
  RawConnection idle(ts.port());
  idle.send(get("/hello/i"));
  EXPECT_EQ(status_of(idle.read_response()), 200);

  RawConnection busy(ts.port());
  busy.send(get("/slow"));
  gate.entered.get_future().wait();

  auto done = std::make_shared<std::promise<void>>();  // outlives a set_value() still running
  auto finished = done->get_future();
  ts.server().shutdown(5s, [done] { done->set_value(); });
  EXPECT_TRUE(idle.peer_closed());  // idle keep-alive connections are closed at once

  // New connections are refused once the acceptors have closed.
  bool refused = false;
  for (int i = 0; i < 10000 && !refused; ++i) {
    boost::asio::io_context ctx;
    boost::asio::ip::tcp::socket s(ctx);
    boost::system::error_code ec;
    s.connect({boost::asio::ip::make_address("127.0.0.1"), ts.port()}, ec);
    refused = ec == boost::asio::error::connection_refused;
    std::this_thread::yield();
  }
  EXPECT_TRUE(refused);

  gate.open();
  auto r = busy.read_until_close();
  EXPECT_EQ(status_of(r), 200);
  EXPECT_EQ(body_of(r), "finished");
  EXPECT_EQ(header_of(r, "Connection"), "close");
  finished.wait();
  EXPECT_EQ(ts.server().stats().open, 0U);
  gate.timer.reset();  // the timer must not outlive the server's io_context
}

TEST(Server, GracePeriodOverCancelsStuckHandlers) {
  TestServer ts([](Server& s) {
    s.router().get("/stuck", [](Request&) -> asio::awaitable<Response> {
      asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::hours(1));
      co_await t.async_wait(asio::use_awaitable);  // throws operation_aborted when cancelled
      co_return Response(200);
    });
  });
  RawConnection c(ts.port());
  c.send(get("/stuck"));
  // Wait until the request is in the handler: the server counts it once answered, so
  // poll the open-connection count instead.
  while (ts.server().stats().accepted == 0) std::this_thread::yield();
  auto start = std::chrono::steady_clock::now();
  ts.shutdown(100ms);
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(elapsed, 5s);
  auto rest = c.read_until_close();
  // Either the cancelled handler's 503 got out before the socket closed, or just the close.
  if (!rest.empty()) {
    EXPECT_EQ(status_of(rest), 503);
  }
}

TEST(Server, ListenOnABusyPortIsAnError) {
  TestServer a(basic_routes);  // two io threads share its port through SO_REUSEPORT
  for (unsigned threads : {1U, 2U}) {
    core::IoRuntime rt(threads);
    obs::Registry reg;
    Server b(rt, {.metrics = &reg});
    auto r = b.listen("127.0.0.1", a.port());
    ASSERT_FALSE(r) << "a second server must not share the port silently";
    EXPECT_EQ(r.error().code, Errc::unavailable);
    EXPECT_NE(r.error().message.find("in use"), std::string::npos) << r.error().message;
  }
  core::IoRuntime rt(1);
  obs::Registry reg;
  Server c(rt, {.metrics = &reg});
  EXPECT_FALSE(c.listen("256.1.1.1", 0));
}

}  // namespace
}  // namespace mercado::http

namespace mercado::http {
namespace {

// A body far larger than any socket buffer: the response is sent partly at once and the rest
// while the reader drains it (write_now.hpp's slow path).
std::string big_body() {
  std::string body(24 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + (i * 7 + i / 4096) % 26);
  return body;
}

void big_route(Server& s, const std::string& body) {
  s.router().get("/big", [&body](Request&) -> asio::awaitable<Response> { co_return Response::text(200, body); });
}

// Blocking reads on `s` give up after 10 s (a test that loses bytes fails instead of hanging).
void receive_timeout(asio::ip::tcp::socket& s) {
  ::timeval tv{10, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

// A client socket with a small receive buffer, so that the server cannot hand over a large
// response at once.
asio::ip::tcp::socket small_window_socket(asio::io_context& ctx, std::uint16_t port) {
  asio::ip::tcp::socket s(ctx);
  s.open(asio::ip::tcp::v4());
  s.set_option(asio::socket_base::receive_buffer_size(4096));
  s.connect({asio::ip::make_address("127.0.0.1"), port});
  receive_timeout(s);
  return s;
}

std::string read_head_and_body(asio::ip::tcp::socket& s) {
  std::string in;
  char buf[65536];
  std::size_t head_end = std::string::npos, length = 0;
  for (;;) {
    boost::system::error_code ec;
    std::size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) return in;
    in.append(buf, n);
    if (head_end == std::string::npos && (head_end = in.find("\r\n\r\n")) != std::string::npos) {
      head_end += 4;
      auto at = in.find("Content-Length: ");
      length = std::stoul(in.substr(at + 16));
    }
    if (head_end != std::string::npos && in.size() >= head_end + length) return in;
  }
}

TEST(Server, ALargeResponseToASlowReaderArrivesWholeAndTheConnectionStaysUsable) {
  const std::string body = big_body();
  TestServer ts([&](Server& s) {
    basic_routes(s);
    big_route(s, body);
  });
  asio::io_context ctx;
  auto s = small_window_socket(ctx, ts.port());
  asio::write(s, asio::buffer(get("/big")));
  const std::string response = read_head_and_body(s);
  ASSERT_EQ(status_of(response), 200);
  EXPECT_TRUE(body_of(response) == body) << "the body arrived changed or cut (" << body_of(response).size() << " bytes)";
  // Keep-alive after a response that had to wait for the reader.
  asio::write(s, asio::buffer(get("/hello/again")));
  EXPECT_EQ(body_of(read_head_and_body(s)), "hello again");
}

// send_now() must not block whatever Asio believes about the socket: a socket handed to
// another io thread (release() + assign()) is in blocking mode as far as Asio knows, and
// Asio's own synchronous send would then wait in poll() for room.
TEST(WriteNow, NeverBlocksOnAFullSocketThatAsioThinksIsBlocking) {
  asio::io_context ctx;
  asio::ip::tcp::acceptor acceptor(ctx, {asio::ip::make_address("127.0.0.1"), 0});
  auto client = small_window_socket(ctx, acceptor.local_endpoint().port());
  asio::ip::tcp::socket accepted = acceptor.accept();
  asio::ip::tcp::socket sock(ctx);
  sock.assign(asio::ip::tcp::v4(), accepted.release());  // as the server's hand-off does
  ASSERT_FALSE(sock.non_blocking());
  auto filled = std::async(std::launch::async, [&] {
    const std::string chunk(64 * 1024, 'x');
    const std::array<asio::const_buffer, 1> bufs{asio::buffer(chunk)};
    for (int i = 0; i < 100'000; ++i) {  // far more than any socket buffer holds
      boost::system::error_code ec;
      detail::send_now(sock, bufs, ec);
      if (ec) return ec;
    }
    return boost::system::error_code();
  });
  if (filled.wait_for(10s) != std::future_status::ready) {
    ADD_FAILURE() << "send_now blocked on a full socket";
    client.close();  // the peer's reset ends the blocked send, so the test ends
  }
  EXPECT_EQ(filled.get(), asio::error::would_block);
}

TEST(Server, ConnectionsThatDoNotReadDoNotStopTheOthers) {
  // Two io threads and several connections, so that some are handed from one thread to the
  // other; each asks for large responses, pipelined, and reads nothing.
  const std::string body = big_body();
  ServerOptions opts;
  opts.write_timeout = 60s;
  TestServer ts(
      [&](Server& s) {
        basic_routes(s);
        big_route(s, body);
      },
      opts, 2);
  asio::io_context ctx;
  std::vector<asio::ip::tcp::socket> stuck;
  for (int i = 0; i < 6; ++i) {
    stuck.push_back(small_window_socket(ctx, ts.port()));
    asio::write(stuck.back(), asio::buffer(get("/big") + get("/hello/" + std::to_string(i)) + get("/big")));
  }
  // Fresh connections (some on each thread) are still answered.
  for (int i = 0; i < 6; ++i) {
    RawConnection c(ts.port());
    c.send(get("/hello/fresh"));
    EXPECT_EQ(body_of(c.read_response()), "hello fresh") << "connection " << i;
  }
}

TEST(Server, AClientThatStopsReadingIsClosedAfterTheWriteTimeout) {
  const std::string body = big_body();
  ServerOptions opts;
  opts.write_timeout = 300ms;
  TestServer ts([&](Server& s) { big_route(s, body); }, opts);
  asio::io_context ctx;
  auto s = small_window_socket(ctx, ts.port());
  asio::write(s, asio::buffer(get("/big")));
  // The client reads nothing: the server gives up on the write and closes the connection.
  auto wait_for_gauge = [&](std::string_view line) {
    for (int i = 0; i < 500; ++i) {
      if (ts.metrics().expose().find(line) != std::string::npos) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  };
  ASSERT_TRUE(wait_for_gauge("\nactive_connections 1\n")) << ts.metrics().expose();
  EXPECT_TRUE(wait_for_gauge("\nactive_connections 0\n")) << ts.metrics().expose();
  // What the client reads now ends before the whole body.
  const std::string response = read_head_and_body(s);
  EXPECT_LT(response.size(), body.size());
}

}  // namespace
}  // namespace mercado::http
