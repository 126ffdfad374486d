#pragma once
// HTTP/1.1 client for coroutines, with a keep-alive connection pool per origin.
//
// Failures are values (ClientError): refused, timeout, closed, protocol, too_large,
// resolve, invalid_url, cancelled -- and http_status, produced by expect_2xx() for
// non-2xx answers. Every call has a deadline: the request's own, else now + the default
// request timeout; connecting has its own shorter timeout as well. Each call is a client
// span (child of `parent` when given) whose context is sent as `traceparent`.
//
// Pools are per io_context and origin (kept in a service of that io_context), so a pooled
// socket is only used by its own thread and dies with its context. Thread-safe: one Client
// can serve every io thread, provided each io_context is run by one thread.

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include <mercado/core/clock.hpp>
#include <mercado/http/headers.hpp>
#include <mercado/http/method.hpp>
#include <mercado/observability/trace.hpp>

namespace mercado::http {

enum class ClientErrc {
  invalid_url,   // the URL could not be parsed or is not http://
  resolve,       // the host name did not resolve
  refused,       // nothing listens there (or the connection was reset while connecting)
  timeout,       // the connect timeout or the call's deadline expired
  closed,        // the peer closed or reset the connection before a full response
  protocol,      // the peer's bytes are not valid HTTP
  too_large,     // the response body is over the limit
  cancelled,     // the calling coroutine was cancelled
  http_status,   // a response arrived with a non-2xx status (see expect_2xx)
};
std::string_view to_string(ClientErrc code) noexcept;

struct ClientError {
  ClientErrc code;
  std::string message;
  int status = 0;      // http_status only
  std::string body;    // http_status only: the response body (often a problem+json)
  // False only when the request certainly never reached the peer (not connected, or the
  // write failed); retry logic uses this for non-idempotent requests.
  bool maybe_delivered = false;
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{2'000};
  std::chrono::milliseconds request_timeout{10'000};  // default total deadline per call
  std::size_t max_idle_per_origin = 64;
  std::chrono::milliseconds idle_ttl{30'000};  // pooled connections idle longer are closed
  std::size_t max_response_body = 16 * 1024 * 1024;
  std::string user_agent = "mercado-http-client/0.1";
};

struct ClientRequest {
  Method method = Method::get;
  std::string url;  // http://host:port/path?query
  Headers headers;
  std::string body;
  std::string content_type;  // sets Content-Type when non-empty
  const obs::TraceContext* parent = nullptr;
  std::optional<core::SteadyTime> deadline;  // absolute; default now + request_timeout
};

// The header that carries a call's remaining time budget downstream, in milliseconds.
// The client sends it on every call; the server turns it into Request::deadline().
inline constexpr std::string_view kDeadlineHeader = "X-Request-Timeout-Ms";

struct ClientResponse {
  int status = 0;
  Headers headers;
  std::string body;
  bool ok() const noexcept { return status >= 200 && status < 300; }
};

using ClientResult = std::expected<ClientResponse, ClientError>;

// Turns a non-2xx response into an http_status error.
ClientResult expect_2xx(ClientResult r);

struct ClientStats {
  std::uint64_t connections_opened = 0;
  std::uint64_t requests = 0;
  std::uint64_t reused = 0;  // requests sent on a pooled connection
};

class Client {
 public:
  explicit Client(ClientOptions options = {});
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  boost::asio::awaitable<ClientResult> send(ClientRequest request);

  boost::asio::awaitable<ClientResult> get(std::string url, const obs::TraceContext* parent = nullptr);
  boost::asio::awaitable<ClientResult> post_json(std::string url, std::string json,
                                                 const obs::TraceContext* parent = nullptr);

  ClientStats stats() const noexcept;
  const ClientOptions& options() const noexcept;
  // Closes this client's idle connections of the calling io thread. (Idle connections are
  // also closed when their io_context is destroyed.)
  boost::asio::awaitable<void> close_idle();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mercado::http
