#pragma once
// Helpers for tests that talk to a real server over loopback sockets.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <mercado/core/io_runtime.hpp>
#include <mercado/http/server.hpp>
#include <mercado/observability/metrics.hpp>

namespace mercado::http::testing {

// A server on 127.0.0.1:<ephemeral> with its own runtime and metrics registry.
class TestServer {
 public:
  explicit TestServer(std::function<void(Server&)> setup, ServerOptions opts = {}, unsigned threads = 2);
  ~TestServer();
  Server& server() { return *server_; }
  obs::Registry& metrics() { return registry_; }
  std::uint16_t port() const { return port_; }
  std::string url(std::string_view path = "") const;
  // Graceful shutdown; blocks until every connection is closed.
  void shutdown(std::chrono::milliseconds grace);

 private:
  obs::Registry registry_;
  core::IoRuntime runtime_;
  std::unique_ptr<Server> server_;
  std::uint16_t port_ = 0;
  bool shut_ = false;
};

// Runs `make()`'s coroutine on a fresh io thread and returns its result.
template <class T>
T run(std::function<boost::asio::awaitable<T>()> make) {
  boost::asio::io_context ctx(1);
  std::promise<T> promise;
  boost::asio::co_spawn(ctx, make(), [&](std::exception_ptr e, T value) {
    if (e) {
      promise.set_exception(e);
    } else {
      promise.set_value(std::move(value));
    }
  });
  ctx.run();
  return promise.get_future().get();
}

// A blocking client socket with a receive timeout, for raw protocol tests.
class RawConnection {
 public:
  explicit RawConnection(std::uint16_t port, std::chrono::milliseconds recv_timeout = std::chrono::seconds(5));
  void send(std::string_view bytes);
  // Reads one HTTP response (head + Content-Length body, or the head alone for answers to
  // HEAD). Empty string on close/timeout.
  std::string read_response(bool head_only = false);
  // Reads until the peer closes (or the timeout). Returns everything read.
  std::string read_until_close();
  // True when the peer has closed the connection (read returns EOF or reset).
  bool peer_closed();
  void close();

 private:
  boost::asio::io_context ctx_;
  boost::asio::ip::tcp::socket socket_;
  std::string pending_;
};

// Status code of the first response in `bytes`, or 0.
int status_of(std::string_view response);
std::string body_of(std::string_view response);
// `message` in three pieces (cut after `first` bytes, at the middle and `last` bytes before
// the end), to arrive one after another.
std::vector<std::string_view> in_pieces(std::string_view message, std::size_t first, std::size_t last);
std::string header_of(std::string_view response, std::string_view name);

}  // namespace mercado::http::testing
