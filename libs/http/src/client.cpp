#include <mercado/http/client.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/url/parse.hpp>
#include <sys/socket.h>

#include <atomic>
#include <charconv>
#include <deque>
#include <unordered_map>

#include <mercado/core/boost_assertion.hpp>
#include <mercado/observability/log.hpp>

#include "drained_read.hpp"
#include "write_now.hpp"

namespace mercado::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using asio::awaitable;

std::string_view to_string(ClientErrc code) noexcept {
  switch (code) {
    case ClientErrc::invalid_url: return "invalid_url";
    case ClientErrc::resolve: return "resolve";
    case ClientErrc::refused: return "refused";
    case ClientErrc::timeout: return "timeout";
    case ClientErrc::closed: return "closed";
    case ClientErrc::protocol: return "protocol";
    case ClientErrc::too_large: return "too_large";
    case ClientErrc::cancelled: return "cancelled";
    case ClientErrc::http_status: return "http_status";
  }
  return "protocol";
}

ClientResult expect_2xx(ClientResult r) {
  if (!r || r->ok()) return r;
  ClientError e{ClientErrc::http_status, "HTTP " + std::to_string(r->status), r->status,
                std::move(r->body), true};
  return std::unexpected(std::move(e));
}

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct PooledConnection {
  explicit PooledConnection(const asio::any_io_executor& ex) : socket(ex), reactor(socket) {}
  tcp::socket socket;
  detail::ReadReactor reactor;  // the socket's, for its reads
  beast::flat_buffer buffer;
  Clock::time_point idle_since;
};

using ConnPtr = std::unique_ptr<PooledConnection>;

struct OriginPools {
  std::unordered_map<std::string, std::deque<ConnPtr>> idle;
};

// Idle connections live in a service of the io_context that owns their sockets, so they
// are closed when that context shuts down, whatever the Client's lifetime. Only the
// context's own thread touches it (one thread per io_context, see core::IoRuntime).
class PoolService final : public asio::execution_context::service {
 public:
  using key_type = PoolService;
  static inline asio::execution_context::id id;
  explicit PoolService(asio::execution_context& ctx) : asio::execution_context::service(ctx) {}
  OriginPools& pools(std::uint64_t client) { return by_client_[client]; }
  void forget(std::uint64_t client) { by_client_.erase(client); }

 private:
  void shutdown() override { by_client_.clear(); }
  std::unordered_map<std::uint64_t, OriginPools> by_client_;
};

std::atomic<std::uint64_t> next_client_id{1};

// Cancels a socket's pending operations when the deadline passes. Everything runs on the
// socket's own io thread, so `done` needs no synchronisation.
class Watchdog {
 public:
  Watchdog(const asio::any_io_executor& ex, tcp::socket& socket, Clock::time_point deadline)
      : state_(std::make_shared<State>()), timer_(ex, deadline) {
    timer_.async_wait([st = state_, &socket](const boost::system::error_code& ec) {
      if (ec || st->done) return;
      st->fired = true;
      boost::system::error_code ignored;
      socket.cancel(ignored);
    });
  }
  ~Watchdog() {
    state_->done = true;
    timer_.cancel();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;
  bool fired() const noexcept { return state_->fired; }

 private:
  struct State {
    bool done = false;
    bool fired = false;
  };
  std::shared_ptr<State> state_;
  asio::steady_timer timer_;
};

struct ParsedUrl {
  std::string host;
  std::uint16_t port = 80;
  std::string target;
  std::string origin;  // host:port
  std::string host_header;
};

std::expected<ParsedUrl, ClientError> parse_url(std::string_view url) {
  auto u = boost::urls::parse_uri(url);
  if (!u) return std::unexpected(ClientError{ClientErrc::invalid_url, "invalid URL: " + std::string(url)});
  if (u->scheme() != "http") {
    return std::unexpected(ClientError{ClientErrc::invalid_url, "only http:// URLs are supported: " + std::string(url)});
  }
  ParsedUrl p;
  p.host = u->encoded_host();
  if (p.host.starts_with('[') && p.host.ends_with(']')) p.host = p.host.substr(1, p.host.size() - 2);
  if (p.host.empty()) return std::unexpected(ClientError{ClientErrc::invalid_url, "URL has no host: " + std::string(url)});
  if (u->has_port()) {
    auto ps = u->port();
    unsigned v = 0;
    auto [ptr, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), v);
    if (ec != std::errc() || ptr != ps.data() + ps.size() || v == 0 || v > 65535) {
      return std::unexpected(ClientError{ClientErrc::invalid_url, "bad port in URL: " + std::string(url)});
    }
    p.port = static_cast<std::uint16_t>(v);
  }
  p.target = u->encoded_path();
  if (p.target.empty()) p.target = "/";
  if (u->has_query()) {
    p.target += '?';
    p.target += u->encoded_query();
  }
  p.origin = p.host + ":" + std::to_string(p.port);
  p.host_header = std::string(u->encoded_authority());
  if (auto at = p.host_header.find('@'); at != std::string::npos) p.host_header = p.host_header.substr(at + 1);
  return p;
}

// Whether a pooled idle connection is still usable: no EOF and no stray bytes pending.
bool alive(tcp::socket& s) {
  char c;
  ssize_t n = ::recv(s.native_handle(), &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return false;                                // peer closed
  if (n > 0) return false;                                 // unexpected bytes: not reusable
  return errno == EAGAIN || errno == EWOULDBLOCK;
}

// Whether a just-connected socket is connected to itself (same local and remote endpoint).
bool connected_to_itself(const tcp::socket& s) {
  boost::system::error_code a, b;
  auto local = s.local_endpoint(a);
  auto remote = s.remote_endpoint(b);
  return !a && !b && local == remote;
}

}  // namespace

struct Client::Impl {
  ClientOptions opts;
  const std::uint64_t id = next_client_id.fetch_add(1);
  std::atomic<std::uint64_t> opened{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> reused{0};

  OriginPools& pools_for(const asio::any_io_executor& ex) {
    auto& ctx = asio::query(ex, asio::execution::context);
    return asio::use_service<PoolService>(ctx).pools(id);
  }

  ConnPtr take(OriginPools& pools, const std::string& origin) {
    auto it = pools.idle.find(origin);
    if (it == pools.idle.end()) return nullptr;
    auto& q = it->second;
    const auto now = Clock::now();
    while (!q.empty()) {
      ConnPtr c = std::move(q.back());
      q.pop_back();
      if (now - c->idle_since < opts.idle_ttl && c->buffer.size() == 0 && alive(c->socket)) return c;
      boost::system::error_code ignored;
      c->socket.close(ignored);
    }
    return nullptr;
  }

  void give_back(OriginPools& pools, const std::string& origin, ConnPtr c) {
    auto& q = pools.idle[origin];
    if (q.size() >= opts.max_idle_per_origin) return;  // closes on destruction
    c->idle_since = Clock::now();
    q.push_back(std::move(c));
  }
};

Client::Client(ClientOptions options) : impl_(std::make_shared<Impl>()) { impl_->opts = std::move(options); }
Client::~Client() = default;

ClientStats Client::stats() const noexcept {
  return {impl_->opened.load(), impl_->requests.load(), impl_->reused.load()};
}

const ClientOptions& Client::options() const noexcept { return impl_->opts; }

awaitable<void> Client::close_idle() {
  auto ex = co_await asio::this_coro::executor;
  asio::use_service<PoolService>(asio::query(ex, asio::execution::context)).forget(impl_->id);
}

namespace {

ClientError read_error(const boost::system::error_code& ec, bool fired, bool got_bytes) {
  if (fired) return {ClientErrc::timeout, "the call's deadline expired", 0, {}, true};
  if (ec == asio::error::operation_aborted) return {ClientErrc::cancelled, "cancelled", 0, {}, true};
  if (ec == bhttp::error::body_limit) return {ClientErrc::too_large, "the response body is over the limit", 0, {}, true};
  if (ec == bhttp::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
      ec == asio::error::broken_pipe || ec == bhttp::error::partial_message) {
    return {ClientErrc::closed,
            got_bytes ? "the connection closed in the middle of the response" : "the connection closed before a response",
            0, {}, true};
  }
  return {ClientErrc::protocol, "invalid HTTP response: " + ec.message(), 0, {}, true};
}

// Reads one response into `parser`. Beast's parser is driven by hand (instead of
// http::async_read) so that a Boost assertion reached on malformed input surfaces here as a
// protocol error rather than escaping from an io thread's run().
awaitable<std::tuple<boost::system::error_code, std::size_t>> read_response(
    PooledConnection& conn, bhttp::response_parser<bhttp::string_body>& parser) {
  boost::system::error_code ec;
  std::size_t total = 0;
  while (!parser.is_done()) {
    if (conn.buffer.size() > 0) {
      std::size_t used = 0;
      try {
        used = parser.put(conn.buffer.data(), ec);
      } catch (const core::BoostAssertion&) {
        co_return std::make_tuple(boost::system::error_code(bhttp::error::bad_version), total);
      }
      conn.buffer.consume(used);
      if (ec == bhttp::error::need_more) {
        ec = {};
      } else if (ec) {
        co_return std::make_tuple(ec, total);
      }
      if (parser.is_done()) break;
      if (used > 0 && conn.buffer.size() > 0) continue;
    }
    auto [rec, n] = co_await detail::async_read_some_drained(conn.socket, conn.buffer.prepare(16 * 1024), use_tuple, conn.reactor);
    conn.buffer.commit(n);
    total += n;
    if (rec) {
      if (rec == asio::error::eof && n == 0) {
        boost::system::error_code eof_ec;
        parser.put_eof(eof_ec);  // a body delimited by the close completes here
        if (!eof_ec && parser.is_done()) break;
        co_return std::make_tuple(eof_ec ? eof_ec : boost::system::error_code(rec), total);
      }
      if (n == 0) co_return std::make_tuple(rec, total);
    }
  }
  co_return std::make_tuple(boost::system::error_code(), total);
}

}  // namespace

awaitable<ClientResult> Client::send(ClientRequest request) {
  auto impl = impl_;  // keeps the pools alive while the call runs
  const auto& opts = impl->opts;
  auto url = parse_url(request.url);
  if (!url) co_return std::unexpected(url.error());
  const auto deadline = request.deadline.value_or(Clock::now() + opts.request_timeout);

  obs::Span span(std::string(to_string(request.method)) + " " + url->origin, obs::SpanKind::client,
                 request.parent);
  span.set_attribute("http.request.method", std::string(to_string(request.method)));
  span.set_attribute("url.full", request.url);

  // The request bytes, built once and reused if the call is retried on a fresh connection.
  std::string head;
  head.reserve(256 + request.headers.size() * 48);
  head += to_string(request.method);
  head += ' ';
  head += url->target;
  head += " HTTP/1.1\r\nHost: ";
  head += url->host_header;
  head += "\r\nUser-Agent: ";
  head += opts.user_agent;
  head += "\r\ntraceparent: ";
  head += span.context().traceparent();
  head += "\r\n";
  {
    auto budget = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    head += kDeadlineHeader;
    head += ": ";
    head += std::to_string(std::max<std::int64_t>(budget, 0));
    head += "\r\n";
  }
  if (!request.content_type.empty()) {
    head += "Content-Type: ";
    head += request.content_type;
    head += "\r\n";
  }
  const bool send_length = !request.body.empty() || request.method == Method::post ||
                           request.method == Method::put || request.method == Method::patch;
  if (send_length) {
    head += "Content-Length: ";
    head += std::to_string(request.body.size());
    head += "\r\n";
  }
  for (const auto& [name, value] : request.headers) {
    if (name.find_first_of("\r\n:") != std::string::npos || value.find_first_of("\r\n") != std::string::npos) {
      co_return std::unexpected(ClientError{ClientErrc::invalid_url, "header " + name + " contains CR/LF"});
    }
    if (iequals(name, "host") || iequals(name, "content-length") || iequals(name, "traceparent") ||
        iequals(name, kDeadlineHeader)) {
      continue;
    }
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  head += "\r\n";

  auto ex = co_await asio::this_coro::executor;
  auto& pools = impl->pools_for(ex);
  impl->requests.fetch_add(1, std::memory_order_relaxed);
  const bool replayable = is_idempotent(request.method) || request.headers.contains("Idempotency-Key");

  for (int attempt = 0;; ++attempt) {
    ConnPtr conn = attempt == 0 ? impl->take(pools, url->origin) : nullptr;
    const bool reused = conn != nullptr;
    if (reused) {
      impl->reused.fetch_add(1, std::memory_order_relaxed);
    } else {
      conn = std::make_unique<PooledConnection>(ex);
      const auto connect_deadline = std::min(deadline, Clock::now() + opts.connect_timeout);
      boost::system::error_code ec;
      auto addr = asio::ip::make_address(url->host, ec);
      bool fired = false;
      if (!ec) {
        Watchdog dog(ex, conn->socket, connect_deadline);
        conn->socket.open(addr.is_v4() ? tcp::v4() : tcp::v6(), ec);
        if (!ec) std::tie(ec) = co_await conn->socket.async_connect(tcp::endpoint(addr, url->port), use_tuple);
        fired = dog.fired();
      } else {
        tcp::resolver resolver(ex);
        auto [rec, results] = co_await resolver.async_resolve(url->host, std::to_string(url->port), use_tuple);
        if (rec || results.empty()) {
          span.set_error("resolve failed");
          co_return std::unexpected(ClientError{ClientErrc::resolve, "cannot resolve " + url->host + ": " + rec.message()});
        }
        Watchdog dog(ex, conn->socket, connect_deadline);
        std::tie(ec, std::ignore) = co_await asio::async_connect(conn->socket, results, use_tuple);
        fired = dog.fired();
      }
      if (!ec && connected_to_itself(conn->socket)) {
        // Linux lets a connection to a closed port of this host pick that same port as
        // its local one (a TCP simultaneous open with itself): it "succeeds", reads back
        // its own request, and holds the port so the server cannot listen on it again.
        conn->socket.close(ec);
        ec = asio::error::connection_refused;
      }
      if (ec) {
        ClientError err{fired ? ClientErrc::timeout : (ec == asio::error::operation_aborted ? ClientErrc::cancelled : ClientErrc::refused),
                        (fired ? "connect timed out to " : "cannot connect to ") + url->origin + ": " + ec.message()};
        span.set_error(err.message);
        co_return std::unexpected(std::move(err));
      }
      boost::system::error_code opt_ec;
      conn->socket.set_option(tcp::no_delay(true), opt_ec);
      impl->opened.fetch_add(1, std::memory_order_relaxed);
    }

    Watchdog dog(ex, conn->socket, deadline);
    std::array<asio::const_buffer, 2> out{asio::buffer(head), asio::buffer(request.body)};
    boost::system::error_code wec;
    std::size_t written = detail::send_now(conn->socket, out, wec);  // write_now.hpp
    if (wec == asio::error::would_block) std::tie(wec, written) = co_await detail::write_rest(conn->socket, out, written);
    if (wec) {
      if (reused && attempt == 0 && !dog.fired()) continue;  // stale pooled connection: retry fresh
      ClientError err = dog.fired() ? ClientError{ClientErrc::timeout, "the call's deadline expired while sending", 0, {}, written > 0}
                                    : ClientError{ClientErrc::closed, "the connection closed while sending: " + wec.message(), 0, {}, written > 0};
      span.set_error(err.message);
      co_return std::unexpected(std::move(err));
    }

    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(opts.max_response_body);
    parser.header_limit(64 * 1024);
    if (request.method == Method::head) parser.skip(true);
    auto [rec, read] = co_await read_response(*conn, parser);
    if (rec) {
      const bool got_bytes = parser.got_some() || read > 0;
      if (reused && attempt == 0 && !got_bytes && !dog.fired() && replayable &&
          (rec == bhttp::error::end_of_stream || rec == asio::error::connection_reset || rec == asio::error::eof)) {
        continue;  // the pooled connection was closed by the server while idle
      }
      ClientError err = read_error(rec, dog.fired(), got_bytes);
      span.set_error(err.message);
      co_return std::unexpected(std::move(err));
    }

    auto& msg = parser.get();
    ClientResponse res;
    res.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg) res.headers.add(std::string(f.name_string()), std::string(f.value()));
    res.body = std::move(msg.body());
    span.set_attribute("http.response.status_code", static_cast<std::int64_t>(res.status));
    if (res.status >= 500) span.set_error("HTTP " + std::to_string(res.status));
    if (parser.keep_alive()) {
      impl->give_back(pools, url->origin, std::move(conn));
    }
    co_return res;
  }
}

awaitable<ClientResult> Client::get(std::string url, const obs::TraceContext* parent) {
  ClientRequest r;
  r.method = Method::get;
  r.url = std::move(url);
  r.parent = parent;
  co_return co_await send(std::move(r));
}

awaitable<ClientResult> Client::post_json(std::string url, std::string json, const obs::TraceContext* parent) {
  ClientRequest r;
  r.method = Method::post;
  r.url = std::move(url);
  r.body = std::move(json);
  r.content_type = "application/json";
  r.parent = parent;
  co_return co_await send(std::move(r));
}

}  // namespace mercado::http
