#pragma once
// HTTP/1.1 server on Boost.Beast's parser and Asio coroutines.
//
// One acceptor per io thread (SO_REUSEPORT); a connection lives on the thread that
// accepted it. Keep-alive and pipelining; Expect: 100-continue; limits on header size
// (431), body size (413, default 1 MiB) and open connections (503); a header timeout
// (408 once bytes have arrived), an idle keep-alive timeout (close) and a write timeout,
// so slow clients cannot pin connections; malformed input gets 400 and a close. Every
// error is an application/problem+json body. Each request is instrumented: a server span
// (continuing an incoming traceparent), http_requests_total, http_request_duration_seconds,
// active_connections, and an access log line.
//
// Graceful shutdown: stop accepting, close idle connections, let in-flight requests
// finish (answering them with Connection: close) until the grace deadline, then cancel
// what is left.
//
// Thread-safety: configure (router(), use()) before listen(); listen/shutdown/stats are
// thread-safe afterwards.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <mercado/core/error.hpp>
#include <mercado/core/io_runtime.hpp>
#include <mercado/http/router.hpp>
#include <mercado/observability/metrics.hpp>

namespace mercado::http {

struct ServerOptions {
  std::string service_name = "mercado";
  std::size_t body_limit = 1024 * 1024;
  std::uint32_t header_limit = 16 * 1024;
  std::chrono::milliseconds header_timeout{10'000};  // first byte to complete head; and body gaps
  std::chrono::milliseconds idle_timeout{60'000};    // keep-alive wait for the next request
  std::chrono::milliseconds write_timeout{30'000};
  std::size_t max_connections = 10'000;
  bool access_log = true;
  obs::Registry* metrics = &obs::Registry::global();
};

struct ServerStats {
  std::uint64_t accepted = 0;      // connections accepted since start
  std::uint64_t rejected = 0;      // connections refused by the connection limit
  std::uint64_t open = 0;          // connections open now
  std::uint64_t requests = 0;      // requests answered
};

class Server {
 public:
  Server(core::IoRuntime& runtime, ServerOptions options = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  Router& router() noexcept;
  // Adds a middleware; the first added is the outermost. Before listen().
  void use(Middleware middleware);

  // Binds host:port on every io thread and starts accepting. Returns the bound port
  // (useful with port 0), or unavailable with the reason (e.g. address in use).
  Result<std::uint16_t> listen(std::string_view host, std::uint16_t port);

  // Starts a graceful shutdown (idempotent). `on_done` runs once every connection is
  // closed, on an io thread.
  void shutdown(std::chrono::milliseconds grace, std::function<void()> on_done = {});
  bool draining() const noexcept;

  ServerStats stats() const noexcept;
  std::uint16_t port() const noexcept;
  const ServerOptions& options() const noexcept;

 private:
  std::unique_ptr<detail::ServerCore> core_;
};

}  // namespace mercado::http
