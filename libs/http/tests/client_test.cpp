#include <mercado/http/client.hpp>

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <fstream>
#include <future>
#include <thread>

#include "test_support.hpp"

namespace mercado::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using testing::TestServer;
using namespace std::chrono_literals;

void routes(Server& s) {
  s.router().get("/hello/{name}", [](Request& req) -> asio::awaitable<Response> {
    co_return Response::text(200, "hello " + req.param("name").value_or("?"));
  });
  s.router().post("/echo", [](Request& req) -> asio::awaitable<Response> {
    Response r(201, std::string(req.header("Content-Type").value_or("")), std::string(req.body()));
    co_return r;
  });
  s.router().get("/trace", [](Request& req) -> asio::awaitable<Response> {
    std::string tp(req.header("traceparent").value_or(""));
    co_return Response::text(200, tp + "|" + req.trace().trace_id_hex());
  });
  s.router().get("/deadline", [](Request& req) -> asio::awaitable<Response> {
    if (!req.deadline()) co_return Response::text(200, "none");
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*req.deadline() - std::chrono::steady_clock::now());
    co_return Response::text(200, std::to_string(left.count()));
  });
  s.router().get("/big", [](Request&) -> asio::awaitable<Response> {
    co_return Response::text(200, std::string(100'000, 'x'));
  });
}

TEST(Client, GetAndPost) {
  TestServer ts(routes);
  Client client;
  auto [a, b] = testing::run<std::pair<ClientResult, ClientResult>>([&]() -> asio::awaitable<std::pair<ClientResult, ClientResult>> {
    auto x = co_await client.get(ts.url("/hello/ana"));
    auto y = co_await client.post_json(ts.url("/echo"), R"({"k":1})");
    co_return std::make_pair(std::move(x), std::move(y));
  });
  ASSERT_TRUE(a) << a.error().message;
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, "hello ana");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->status, 201);
  EXPECT_EQ(b->body, R"({"k":1})");
  EXPECT_EQ(b->headers.get("Content-Type"), "application/json");
}

TEST(Client, ReusesOneConnectionForSequentialCalls) {
  TestServer ts(routes);
  Client client;
  int ok = testing::run<int>([&]() -> asio::awaitable<int> {
    int n = 0;
    for (int i = 0; i < 20; ++i) {
      auto r = co_await client.get(ts.url("/hello/" + std::to_string(i)));
      if (r && r->status == 200) ++n;
    }
    co_return n;
  });
  EXPECT_EQ(ok, 20);
  EXPECT_EQ(ts.server().stats().accepted, 1U);  // counted on the server side
  EXPECT_EQ(client.stats().connections_opened, 1U);
  EXPECT_EQ(client.stats().reused, 19U);
}

TEST(Client, RefusedIsATypedError) {
  std::uint16_t port;
  {
    asio::io_context ctx;
    tcp::acceptor a(ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }  // closed: nothing listens there now
  Client client;
  auto r = testing::run<ClientResult>([&]() -> asio::awaitable<ClientResult> {
    co_return co_await client.get("http://127.0.0.1:" + std::to_string(port) + "/x");
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ClientErrc::refused);
  EXPECT_FALSE(r.error().maybe_delivered);
}

// Linux lets a connect() to a closed port of this host pick that very port as its local
// port; the socket then "connects" to itself (TCP simultaneous open). The client must see
// that as refused: otherwise it reads its own request back as the answer, and holds the
// port so the server that owns it cannot listen there again (a restarted service or broker).
TEST(Client, NeverConnectsToItselfOnAClosedLocalPort) {
  // connect() prefers even local ports (bind(0) odd ones): take a free even port.
  std::uint16_t port = 0;
  asio::io_context probe;
  for (int i = 0; i < 100 && port == 0; ++i) {
    tcp::acceptor a(probe, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto even = static_cast<std::uint16_t>(a.local_endpoint().port() & ~1U);
    a.close();
    boost::system::error_code ec;
    tcp::acceptor b(probe);
    b.open(tcp::v4(), ec);
    if (!ec) b.bind(tcp::endpoint(asio::ip::make_address("127.0.0.1"), even), ec);
    if (!ec) port = even;
  }
  ASSERT_NE(port, 0);
  const tcp::endpoint target(asio::ip::make_address("127.0.0.1"), port);
  // First show that the kernel does it here, with plain sockets.
  int attempts = 0;
  bool self_connected = false;
  for (; attempts < 200'000 && !self_connected; ++attempts) {  // typically within one walk of the range
    tcp::socket s(probe);
    boost::system::error_code ec;
    s.connect(target, ec);
    self_connected = !ec;
  }
  if (!self_connected) GTEST_SKIP() << "this kernel never connected a socket to itself in 200000 attempts";
  // Through the client: every attempt refused, over twice the ephemeral range (the kernel
  // walks the range from a per-destination offset, so this passes the port again).
  int low = 32768, high = 60999;
  if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range) range >> low >> high;
  Client client;
  const int tries = 2 * (high - low + 1);
  auto [refused, first_other] = testing::run<std::pair<int, std::string>>([&]() -> asio::awaitable<std::pair<int, std::string>> {
    int n = 0;
    std::string other;
    for (int i = 0; i < tries; ++i) {
      auto r = co_await client.get("http://127.0.0.1:" + std::to_string(port) + "/x");
      if (!r && r.error().code == ClientErrc::refused) {
        ++n;
      } else if (other.empty()) {
        other = r ? "status " + std::to_string(r->status) : r.error().message;
      }
    }
    co_return std::make_pair(n, other);
  });
  EXPECT_EQ(refused, tries) << "the first other outcome: " << first_other;
}

TEST(Client, DeadlineAgainstAStallingServer) {
  // A server that accepts and reads but never answers.
  asio::io_context server_ctx;
  tcp::acceptor acceptor(server_ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto port = acceptor.local_endpoint().port();
  std::thread server([&] {
    tcp::socket s = acceptor.accept();
    char buf[1024];
    boost::system::error_code ec;
    while (!ec) s.read_some(asio::buffer(buf), ec);  // until the client gives up and closes
  });
  Client client;
  auto start = std::chrono::steady_clock::now();
  auto r = testing::run<ClientResult>([&]() -> asio::awaitable<ClientResult> {
    ClientRequest req;
    req.url = "http://127.0.0.1:" + std::to_string(port) + "/stall";
    req.deadline = std::chrono::steady_clock::now() + 200ms;
    co_return co_await client.send(std::move(req));
  });
  auto elapsed = std::chrono::steady_clock::now() - start;
  server.join();  // returns only because the client closed the connection
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ClientErrc::timeout);
  EXPECT_TRUE(r.error().maybe_delivered);
  EXPECT_GE(elapsed, 200ms);
  EXPECT_LT(elapsed, 5s);
}

TEST(Client, PropagatesTraceparent) {
  TestServer ts(routes);
  Client client;
  auto parent = *obs::TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  auto r = testing::run<ClientResult>([&]() -> asio::awaitable<ClientResult> {
    co_return co_await client.get(ts.url("/trace"), &parent);
  });
  ASSERT_TRUE(r);
  auto bar = r->body.find('|');
  auto sent = obs::TraceContext::parse(r->body.substr(0, bar));
  ASSERT_TRUE(sent);
  EXPECT_EQ(sent->trace_id, parent.trace_id);          // same trace
  EXPECT_NE(sent->span_id, parent.span_id);            // the client span is a child
  EXPECT_EQ(r->body.substr(bar + 1), parent.trace_id_hex());  // the server continued it
}

TEST(Client, TheDeadlineTravelsDownstream) {
  TestServer ts(routes);
  Client client;
  auto r = testing::run<ClientResult>([&]() -> asio::awaitable<ClientResult> {
    ClientRequest req;
    req.url = ts.url("/deadline");
    req.deadline = std::chrono::steady_clock::now() + 1500ms;
    co_return co_await client.send(std::move(req));
  });
  ASSERT_TRUE(r);
  long left = std::stol(r->body);
  EXPECT_GT(left, 0);
  EXPECT_LE(left, 1500);
}

TEST(Client, Expect2xxTurnsStatusesIntoErrors) {
  TestServer ts(routes);
  Client client;
  auto r = testing::run<ClientResult>([&]() -> asio::awaitable<ClientResult> {
    co_return expect_2xx(co_await client.get(ts.url("/missing")));
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ClientErrc::http_status);
  EXPECT_EQ(r.error().status, 404);
  EXPECT_NE(r.error().body.find("not-found"), std::string::npos);
}

TEST(Client, RetriesOnceWhenAPooledConnectionWasClosedByTheServer) {
  ServerOptions o;
  o.idle_timeout = 50ms;
  TestServer ts(routes, o);
  Client client;
  auto first = testing::run<ClientResult>([&]() -> asio::awaitable<ClientResult> {
    co_return co_await client.get(ts.url("/hello/a"));
  });
  ASSERT_TRUE(first);
  while (ts.server().stats().open != 0) std::this_thread::yield();  // the server closed it
  auto second = testing::run<ClientResult>([&]() -> asio::awaitable<ClientResult> {
    co_return co_await client.get(ts.url("/hello/b"));
  });
  ASSERT_TRUE(second) << second.error().message;
  EXPECT_EQ(second->body, "hello b");
  EXPECT_EQ(client.stats().connections_opened, 2U);
}

TEST(Client, ResponseOverTheLimitIsTooLarge) {
  TestServer ts(routes);
  Client client({.max_response_body = 1000});
  auto r = testing::run<ClientResult>([&]() -> asio::awaitable<ClientResult> {
    co_return co_await client.get(ts.url("/big"));
  });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ClientErrc::too_large);
}

// Responses that arrive in pieces on a reused connection, each piece after the client's read
// found nothing more to read (see the server's test of the same name): every response is
// read whole.
TEST(Client, ResponsesArrivingInPiecesAfterTheSocketWasDrainedAreAllRead) {
  asio::io_context server_ctx;
  tcp::acceptor acceptor(server_ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto port = acceptor.local_endpoint().port();
  constexpr int kCalls = 10;
  std::thread server([&] {
    tcp::socket s = acceptor.accept();
    boost::system::error_code ec;
    for (int i = 0; i < kCalls && !ec; ++i) {
      std::string request;
      char buf[1024];
      while (!ec && request.find("\r\n\r\n") == std::string::npos) request.append(buf, s.read_some(asio::buffer(buf), ec));
      const std::string body = "answer " + std::to_string(i);
      const std::string response =
          "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      for (std::string_view piece : testing::in_pieces(response, 4, 1)) {
        std::this_thread::sleep_for(2ms);  // makes it likely that the client's read is waiting
        asio::write(s, asio::buffer(piece), ec);
      }
    }
  });
  Client client;
  auto bodies = testing::run<std::vector<std::string>>([&]() -> asio::awaitable<std::vector<std::string>> {
    std::vector<std::string> out;
    for (int i = 0; i < kCalls; ++i) {
      ClientRequest req;
      req.url = "http://127.0.0.1:" + std::to_string(port) + "/pieces";
      req.deadline = std::chrono::steady_clock::now() + 5s;
      auto r = co_await client.send(std::move(req));
      out.push_back(r ? r->body : "error: " + r.error().message);
    }
    co_return out;
  });
  ASSERT_EQ(bodies.size(), static_cast<std::size_t>(kCalls));
  for (int i = 0; i < kCalls; ++i) EXPECT_EQ(bodies[i], "answer " + std::to_string(i)) << "call " << i;
  EXPECT_EQ(client.stats().connections_opened, 1U);
  server.join();
}

// One short-lived io_context after another (as tools and tests use the client), each likely
// at the same address: every read finds its own context's reactor. (A reactor cached by the
// context's address passes here by luck in the dev build, where the new reactor lands where
// the old one was; the asan preset reports it as a heap-use-after-free.)
TEST(Client, CallsFromOneShortLivedContextAfterAnother) {
  TestServer ts(routes);
  for (int i = 0; i < 5; ++i) {
    Client client;
    auto r = testing::run<ClientResult>([&]() -> asio::awaitable<ClientResult> {
      co_return co_await client.get(ts.url("/hello/" + std::to_string(i)));
    });
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->body, "hello " + std::to_string(i));
  }
}

TEST(Client, GarbageFromThePeerIsAProtocolError) {
  asio::io_context server_ctx;
  tcp::acceptor acceptor(server_ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  auto port = acceptor.local_endpoint().port();
  std::thread server([&] {
    tcp::socket s = acceptor.accept();
    char buf[1024];
    boost::system::error_code ec;
    s.read_some(asio::buffer(buf), ec);
    asio::write(s, asio::buffer(std::string_view("SSH-2.0-OpenSSH\r\n\r\n")), ec);
  });
  Client client;
  auto r = testing::run<ClientResult>([&]() -> asio::awaitable<ClientResult> {
    co_return co_await client.get("http://127.0.0.1:" + std::to_string(port) + "/");
  });
  server.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ClientErrc::protocol);
}

TEST(Client, InvalidUrls) {
  Client client;
  for (std::string url : {"not a url", "https://example.com/", "http:///nohost", "http://h:99999/"}) {
    auto r = testing::run<ClientResult>([&]() -> asio::awaitable<ClientResult> {
      co_return co_await client.get(url);
    });
    ASSERT_FALSE(r) << url;
    EXPECT_EQ(r.error().code, ClientErrc::invalid_url) << url;
  }
}

TEST(Client, ConcurrentCallsUseSeveralConnections) {
  TestServer ts(routes);
  Client client;
  int ok = testing::run<int>([&]() -> asio::awaitable<int> {
    auto ex = co_await asio::this_coro::executor;
    auto count = std::make_shared<int>(0);
    auto pending = std::make_shared<int>(8);
    auto done = std::make_shared<asio::steady_timer>(ex, std::chrono::hours(1));
    for (int i = 0; i < 8; ++i) {
      asio::co_spawn(ex, [&, count, pending, done]() -> asio::awaitable<void> {
        auto r = co_await client.get(ts.url("/hello/x"));
        if (r && r->status == 200) ++*count;
        if (--*pending == 0) done->cancel();
      }, asio::detached);
    }
    co_await done->async_wait(asio::as_tuple(asio::use_awaitable));
    co_return *count;
  });
  EXPECT_EQ(ok, 8);
  EXPECT_GE(client.stats().connections_opened, 2U);
  EXPECT_LE(client.stats().connections_opened, 8U);
}

}  // namespace
}  // namespace mercado::http

namespace mercado::http {
namespace {

// POSTs `body` to 127.0.0.1:port with `deadline`.
ClientResult upload(Client& client, std::uint16_t port, const std::string& body, std::chrono::milliseconds deadline) {
  return testing::run<ClientResult>([&]() -> asio::awaitable<ClientResult> {
    ClientRequest req;
    req.method = Method::post;
    req.url = "http://127.0.0.1:" + std::to_string(port) + "/upload";
    req.body = body;
    req.content_type = "application/octet-stream";
    req.deadline = std::chrono::steady_clock::now() + deadline;
    co_return co_await client.send(std::move(req));
  });
}

// A request body far larger than the socket buffers: sent partly at once and the rest as the
// server reads (write_now.hpp's slow path).
TEST(Client, ALargeBodyToASlowServerIsSentWhole) {
  std::string body(24 * 1024 * 1024, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) body[i] = static_cast<char>('a' + (i * 13 + i / 1000) % 26);
  asio::io_context server_ctx;
  tcp::acceptor acceptor(server_ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  acceptor.set_option(asio::socket_base::receive_buffer_size(4096));  // inherited by the accepted socket
  auto port = acceptor.local_endpoint().port();
  std::string received;
  std::thread server([&] {
    tcp::socket s = acceptor.accept();
    ::timeval tv{10, 0};  // a client that loses bytes makes the test fail, not hang
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string in;
    char buf[4096];
    boost::system::error_code ec;
    std::size_t head_end = std::string::npos, length = 0;
    while (!ec) {
      std::size_t n = s.read_some(asio::buffer(buf), ec);  // small reads: a slow server
      in.append(buf, n);
      if (head_end == std::string::npos && (head_end = in.find("\r\n\r\n")) != std::string::npos) {
        head_end += 4;
        length = std::stoul(in.substr(in.find("Content-Length: ") + 16));
      }
      if (head_end != std::string::npos && in.size() >= head_end + length) break;
    }
    if (head_end != std::string::npos) received = in.substr(head_end);
    asio::write(s, asio::buffer(std::string_view("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")), ec);
  });
  Client client;
  auto r = upload(client, port, body, 30s);
  server.join();
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 204);
  EXPECT_TRUE(received == body) << "the server got " << received.size() << " bytes, not the body sent";
}

TEST(Client, TheDeadlineHoldsWhileASlowServerDoesNotTakeTheBody) {
  std::string body(24 * 1024 * 1024, 'x');
  asio::io_context server_ctx;
  tcp::acceptor acceptor(server_ctx, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  acceptor.set_option(asio::socket_base::receive_buffer_size(4096));
  auto port = acceptor.local_endpoint().port();
  std::promise<void> client_done;
  std::thread server([&] {
    tcp::socket s = acceptor.accept();
    client_done.get_future().wait();  // reads nothing until the client has given up
  });
  Client client;
  auto r = upload(client, port, body, 300ms);
  client_done.set_value();
  server.join();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, ClientErrc::timeout) << r.error().message;
  EXPECT_TRUE(r.error().maybe_delivered);
}

}  // namespace
}  // namespace mercado::http
