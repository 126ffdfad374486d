#include <mercado/http/server.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <unistd.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <limits>
#include <mutex>

#include <mercado/http/client.hpp>
#include <mercado/http/problem.hpp>
#include <mercado/observability/log.hpp>

#include "drained_read.hpp"
#include "write_now.hpp"
#include "request_parser.hpp"
#include "response_writer.hpp"

namespace mercado::http::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::asio::awaitable;

namespace {

constexpr auto kNever = Clock::time_point::max();
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kInitialBuffer = 8 * 1024;
constexpr std::size_t kReadChunk = 64 * 1024;

using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// Per-route metric children, looked up once per status code and then reused.
struct RouteMetrics {
  obs::Histogram* duration = nullptr;
  std::array<std::atomic<obs::Counter*>, 500> by_status{};  // index: status - 100
};

}  // namespace

class Worker;

struct Connection {
  enum class Phase : std::uint8_t { idle, head, body, handling, writing, lingering };

  Connection(tcp::socket s, Worker& w) : socket(std::move(s)), worker(w), reactor(socket) {}

  tcp::socket socket;
  Worker& worker;
  detail::ReadReactor reactor;  // the socket's, for its reads
  std::string in = std::string(kInitialBuffer, '\0');
  std::size_t begin = 0;  // unread bytes are in [begin, end)
  std::size_t end = 0;
  std::string out;
  Request req;
  Phase phase = Phase::idle;
  Clock::time_point deadline = kNever;
  bool timed_out = false;
  asio::cancellation_signal cancel;
  Connection* prev = nullptr;
  Connection* next = nullptr;
};

class ServerCore {
 public:
  ServerCore(core::IoRuntime& rt, ServerOptions opts);
  ~ServerCore();

  Router& router() noexcept { return router_; }
  void use(Middleware m) { middleware_.push_back(std::move(m)); }
  Result<std::uint16_t> listen(std::string_view host, std::uint16_t port);
  void shutdown(std::chrono::milliseconds grace, std::function<void()> on_done);

  awaitable<Response> handle(Request& req);
  Response reject(const Request* req, int status, std::string_view detail);

  void connection_opened();
  void connection_closed();
  Worker* least_loaded(Worker* self) noexcept;
  bool draining() const noexcept { return draining_.load(std::memory_order_acquire); }

  ServerStats stats() const noexcept {
    return {accepted_.load(), rejected_.load(), open_.load(), requests_.load()};
  }
  const ServerOptions& options() const noexcept { return opts_; }
  std::uint16_t port() const noexcept { return port_; }
  std::chrono::milliseconds tick() const noexcept { return tick_; }

  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> requests_{0};

 private:
  void record(const Request& req, Method method, std::string_view endpoint, int status,
              Clock::duration elapsed, RouteMetrics* cached);
  void maybe_done();

  core::IoRuntime& rt_;
  ServerOptions opts_;
  Router router_;
  std::vector<Middleware> middleware_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::unique_ptr<RouteMetrics>> route_metrics_;
  std::atomic<std::uint64_t> open_{0};
  std::atomic<bool> draining_{false};
  std::atomic<bool> done_called_{false};
  std::mutex done_mutex_;
  std::vector<std::function<void()>> on_done_;
  std::unique_ptr<asio::steady_timer> grace_timer_;
  std::uint16_t port_ = 0;
  bool started_ = false;
  std::chrono::milliseconds tick_{500};

  obs::CounterFamily* requests_total_;
  obs::HistogramFamily* duration_;
  obs::Gauge* active_connections_;

  friend class Worker;
};

// The per-io-thread part: an acceptor, its connections and their timeout sweeper.
// Only its own thread touches it (shutdown reaches it through asio::post).
class Worker {
 public:
  Worker(ServerCore& core, asio::io_context& ctx) : core_(core), ctx_(ctx), reaper_(ctx) {}

  void open_acceptor(const tcp::endpoint& ep, bool share_port, boost::system::error_code& ec);
  std::uint16_t local_port() const { return acceptor_->local_endpoint().port(); }
  void start() {
    asio::co_spawn(ctx_, accept_loop(), asio::detached);
  }
  void begin_drain();
  void cancel_all();
  asio::io_context& context() noexcept { return ctx_; }

 private:
  awaitable<void> accept_loop();
  void adopt(tcp::socket sock);
  awaitable<void> session(std::unique_ptr<Connection> conn);
  awaitable<void> serve(Connection& c);
  awaitable<void> reap_loop();
  awaitable<bool> write_all(Connection& c, std::span<const asio::const_buffer> bufs);
  awaitable<void> send_error_and_close(Connection& c, int status, std::string_view detail);
  awaitable<void> linger_close(Connection& c);
  void reject_connection(tcp::socket& sock);

  void link(Connection* c) {
    c->next = head_;
    if (head_ != nullptr) head_->prev = c;
    head_ = c;
    ++count_;
  }
  void unlink(Connection* c) {
    if (c->prev != nullptr) c->prev->next = c->next;
    if (c->next != nullptr) c->next->prev = c->prev;
    if (head_ == c) head_ = c->next;
    --count_;
  }

  ServerCore& core_;
  asio::io_context& ctx_;
  std::optional<tcp::acceptor> acceptor_;
  asio::steady_timer reaper_;
  bool reaper_running_ = false;
  Connection* head_ = nullptr;
  std::size_t count_ = 0;

 public:
  std::atomic<std::int64_t> load_{0};  // connections served (or being handed) to this thread
};

// ---------------------------------------------------------------- Worker

void Worker::open_acceptor(const tcp::endpoint& ep, bool share_port, boost::system::error_code& ec) {
  acceptor_.emplace(ctx_);
  acceptor_->open(ep.protocol(), ec);
  if (ec) return;
  acceptor_->set_option(asio::socket_base::reuse_address(true), ec);
  if (ec) return;
  if (share_port) {
    acceptor_->set_option(reuse_port(true), ec);
    if (ec) return;
  }
  acceptor_->bind(ep, ec);
  if (ec) return;
  acceptor_->listen(asio::socket_base::max_listen_connections, ec);
}

awaitable<void> Worker::accept_loop() {
  for (;;) {
    auto [ec, sock] = co_await acceptor_->async_accept(use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted || core_.draining() || !acceptor_->is_open()) {
        co_return;
      }
      // Out of descriptors or a transient error: back off briefly instead of spinning.
      log::warn("accept failed", {{"error", ec.message()}});
      asio::steady_timer pause(ctx_, std::chrono::milliseconds(50));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    if (core_.draining()) {
      boost::system::error_code ignored;
      sock.close(ignored);
      co_return;
    }
    if (core_.open_.load(std::memory_order_relaxed) >= core_.opts_.max_connections) {
      reject_connection(sock);
      continue;
    }
    boost::system::error_code opt_ec;
    sock.set_option(tcp::no_delay(true), opt_ec);
    core_.accepted_.fetch_add(1, std::memory_order_relaxed);
    core_.connection_opened();
    // SO_REUSEPORT hashes connections to threads unevenly (e.g. 36/28 of 64); hand the
    // connection to the io thread holding the fewest, so that the load stays even.
    Worker* target = core_.least_loaded(this);
    if (target == this) {
      adopt(std::move(sock));
    } else {
      const auto protocol = sock.local_endpoint(opt_ec).protocol();
      const int fd = sock.release(opt_ec);
      target->load_.fetch_add(1, std::memory_order_relaxed);  // counted now, so the next pick sees it
      asio::post(target->ctx_, [target, fd, protocol] {
        tcp::socket moved(target->ctx_);
        boost::system::error_code assign_ec;
        moved.assign(protocol, fd, assign_ec);
        target->load_.fetch_sub(1, std::memory_order_relaxed);
        if (assign_ec) {
          ::close(fd);
          target->core_.connection_closed();
          return;
        }
        target->adopt(std::move(moved));
      });
    }
  }
}

void Worker::adopt(tcp::socket sock) {
  load_.fetch_add(1, std::memory_order_relaxed);
  auto conn = std::make_unique<Connection>(std::move(sock), *this);
  link(conn.get());
  if (!reaper_running_) {
    reaper_running_ = true;
    asio::co_spawn(ctx_, reap_loop(), asio::detached);
  }
  auto slot = conn->cancel.slot();
  asio::co_spawn(ctx_, session(std::move(conn)), asio::bind_cancellation_slot(slot, asio::detached));
}

void Worker::reject_connection(tcp::socket& sock) {
  core_.rejected_.fetch_add(1, std::memory_order_relaxed);
  Response res = problem(503, "the server is at its connection limit; retry later");
  res.headers.add("Retry-After", "1");
  std::string head;
  write_head(head, res, false, 11);
  head += res.body;
  boost::system::error_code ec;
  sock.non_blocking(true, ec);
  sock.write_some(asio::buffer(head), ec);
  sock.shutdown(tcp::socket::shutdown_send, ec);
  sock.close(ec);
}

awaitable<void> Worker::reap_loop() {
  while (count_ > 0) {
    reaper_.expires_after(core_.tick());
    auto [ec] = co_await reaper_.async_wait(use_tuple);
    if (ec && ec != asio::error::operation_aborted) break;
    auto now = Clock::now();
    for (Connection* c = head_; c != nullptr; c = c->next) {
      if (c->deadline > now) continue;
      c->timed_out = true;
      c->deadline = kNever;
      boost::system::error_code ignored;
      if (c->phase == Connection::Phase::writing || c->phase == Connection::Phase::lingering) {
        c->socket.close(ignored);
      } else {
        c->socket.cancel(ignored);
      }
    }
  }
  reaper_running_ = false;
}

void Worker::begin_drain() {
  boost::system::error_code ignored;
  if (acceptor_) acceptor_->close(ignored);
  for (Connection* c = head_; c != nullptr; c = c->next) {
    if (c->phase == Connection::Phase::idle) c->socket.cancel(ignored);
  }
}

void Worker::cancel_all() {
  for (Connection* c = head_; c != nullptr; c = c->next) {
    c->cancel.emit(asio::cancellation_type::terminal);
    boost::system::error_code ignored;
    c->socket.close(ignored);
  }
}

awaitable<void> Worker::session(std::unique_ptr<Connection> conn) {
  try {
    co_await serve(*conn);
  } catch (const std::exception& e) {
    // Only a bug gets here (handlers' exceptions are caught in ServerCore::handle).
    log::error("connection failed", {{"error", e.what()}});
  }
  boost::system::error_code ignored;
  conn->socket.close(ignored);
  unlink(conn.get());
  conn.reset();
  load_.fetch_sub(1, std::memory_order_relaxed);
  core_.connection_closed();
}

awaitable<bool> Worker::write_all(Connection& c, std::span<const asio::const_buffer> bufs) {
  // At once when the socket takes it all (nearly always); the write deadline only when it
  // has to wait for a slow reader (write_now.hpp).
  boost::system::error_code ec;
  const std::size_t sent = detail::send_now(c.socket, bufs, ec);
  if (!ec) co_return true;
  if (ec != asio::error::would_block) co_return false;
  c.phase = Connection::Phase::writing;
  c.deadline = Clock::now() + core_.opts_.write_timeout;
  std::tie(ec, std::ignore) = co_await detail::write_rest(c.socket, bufs, sent);
  c.deadline = kNever;
  co_return !ec;
}

awaitable<void> Worker::linger_close(Connection& c) {
  // Half-close, then drain what the client still sends for a moment, so that it reads our
  // response instead of a reset.
  boost::system::error_code ec;
  c.socket.shutdown(tcp::socket::shutdown_send, ec);
  if (ec) co_return;
  c.phase = Connection::Phase::lingering;
  c.deadline = Clock::now() + std::min<Clock::duration>(core_.opts_.header_timeout, std::chrono::seconds(2));
  std::size_t drained = 0;
  while (drained < 1024 * 1024) {
    auto [rec, n] = co_await c.socket.async_read_some(asio::buffer(c.in), use_tuple);
    if (rec) break;
    drained += n;
  }
}

awaitable<void> Worker::send_error_and_close(Connection& c, int status, std::string_view detail) {
  Response res = core_.reject(c.req.method_name().empty() ? nullptr : &c.req, status, detail);
  write_head(c.out, res, false, 11);
  std::array<asio::const_buffer, 2> bufs{asio::buffer(c.out), asio::buffer(res.body)};
  if (co_await write_all(c, bufs)) co_await linger_close(c);
}

awaitable<void> Worker::serve(Connection& c) {
  const auto& opts = core_.opts_;
  {
    boost::system::error_code ec;
    auto ep = c.socket.remote_endpoint(ec);
    if (!ec) c.req.set_remote_address(ep.address().to_string());
  }
  for (;;) {
    c.req.reset(/*keep_remote_address=*/true);
    RequestParser parser(c.req, opts.body_limit, opts.header_limit);
    bool sent_continue = false;
    c.timed_out = false;
    c.phase = c.end > c.begin ? Connection::Phase::head : Connection::Phase::idle;
    // Draining: a keep-alive connection that goes idle now (its last response was still
    // being written when begin_drain() closed the idle ones) is closed, not kept until the
    // grace period ends. begin_drain() runs on this thread after `draining_` is set, so
    // either this check or begin_drain() sees the connection idle.
    if (c.phase == Connection::Phase::idle && core_.draining()) co_return;
    c.deadline = Clock::now() + (c.phase == Connection::Phase::idle ? opts.idle_timeout : opts.header_timeout);
    ParseFailure failure = ParseFailure::none;
    std::string detail;

    while (!parser.is_done()) {
      if (c.end > c.begin) {
        std::size_t used = parser.feed(std::string_view(c.in.data() + c.begin, c.end - c.begin), failure, detail);
        c.begin += used;
        if (failure != ParseFailure::none) break;
        if (parser.is_done()) break;
        if (parser.is_header_done() && c.phase != Connection::Phase::body) {
          c.phase = Connection::Phase::body;
          c.deadline = Clock::now() + opts.header_timeout;
          if (parser.expects_continue() && !sent_continue && c.end == c.begin) {
            static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
            std::array<asio::const_buffer, 1> b{asio::buffer(kContinue)};
            sent_continue = true;
            if (!co_await write_all(c, b)) co_return;
            c.phase = Connection::Phase::body;
            c.deadline = Clock::now() + opts.header_timeout;
          }
        }
        if (used > 0 && c.end > c.begin) continue;
      }
      // Need more bytes: keep the unparsed tail at the front and make room.
      if (c.begin == c.end) {
        c.begin = c.end = 0;
      } else if (c.begin > 0) {
        std::memmove(c.in.data(), c.in.data() + c.begin, c.end - c.begin);
        c.end -= c.begin;
        c.begin = 0;
      }
      if (c.end == c.in.size()) {
        std::size_t cap = std::max<std::size_t>(opts.header_limit + kReadChunk, kInitialBuffer);
        if (c.in.size() >= cap) {
          failure = ParseFailure::header_too_large;
          detail = "the request header is larger than the limit";
          break;
        }
        c.in.resize(std::min(cap, c.in.size() * 2));
      }
      auto [ec, n] = co_await detail::async_read_some_drained(
          c.socket, asio::buffer(c.in.data() + c.end, c.in.size() - c.end), use_tuple, c.reactor);
      if (ec) {
        if (c.timed_out && c.phase != Connection::Phase::idle) {
          co_await send_error_and_close(c, 408, "the request was not received in time");
        }
        co_return;
      }
      if (c.phase == Connection::Phase::idle) {
        c.phase = Connection::Phase::head;
        c.deadline = Clock::now() + opts.header_timeout;
      }
      c.end += n;
    }

    if (failure != ParseFailure::none) {
      int status = 400;
      if (failure == ParseFailure::header_too_large) status = 431;
      if (failure == ParseFailure::body_too_large) status = 413;
      co_await send_error_and_close(c, status, detail);
      co_return;
    }

    c.phase = Connection::Phase::handling;
    c.deadline = kNever;
    Response res = co_await core_.handle(c.req);
    const bool keep_alive = c.req.keep_alive() && !core_.draining();
    write_head(c.out, res, keep_alive, c.req.version());
    const bool with_body = c.req.method() != Method::head && !bodyless_status(res.status);
    std::array<asio::const_buffer, 2> bufs{asio::buffer(c.out),
                                           with_body ? asio::buffer(res.body) : asio::const_buffer()};
    if (!co_await write_all(c, bufs)) co_return;
    if (!keep_alive) {
      boost::system::error_code ec;
      c.socket.shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
  }
}

// ---------------------------------------------------------------- ServerCore

ServerCore::ServerCore(core::IoRuntime& rt, ServerOptions opts) : rt_(rt), opts_(std::move(opts)) {
  auto& reg = *opts_.metrics;
  requests_total_ = &reg.counter("http_requests_total", "Total HTTP requests",
                                 {"method", "endpoint", "status_code"});
  duration_ = &reg.histogram("http_request_duration_seconds", "HTTP request duration",
                             {"method", "endpoint"});
  active_connections_ = &reg.gauge("active_connections", "Open HTTP connections").get();
  auto shortest = std::min({opts_.header_timeout, opts_.idle_timeout, opts_.write_timeout});
  tick_ = std::clamp<std::chrono::milliseconds>(shortest / 4, std::chrono::milliseconds(5),
                                                 std::chrono::milliseconds(500));
}

ServerCore::~ServerCore() = default;

Result<std::uint16_t> ServerCore::listen(std::string_view host, std::uint16_t port) {
  if (started_) return fail(Errc::internal, "the server is already listening");
  boost::system::error_code ec;
  std::string h = host == "localhost" ? std::string("127.0.0.1") : std::string(host);
  auto addr = asio::ip::make_address(h, ec);
  if (ec) {
    asio::io_context tmp;
    tcp::resolver resolver(tmp);
    auto results = resolver.resolve(h, std::to_string(port), ec);
    if (ec || results.empty()) {
      return fail(Errc::unavailable, "cannot resolve listen host '" + h + "': " + ec.message());
    }
    addr = results.begin()->endpoint().address();
  }
  // Per-route metric handles, and middleware applied to the handlers, once.
  for (Router::Route* r : router_.mutable_routes()) {
    auto m = std::make_unique<RouteMetrics>();
    m->duration = &duration_->with({to_string(r->method), r->path_template});
    r->user = m.get();
    route_metrics_.push_back(std::move(m));
  }
  router_.apply(middleware_);

  // SO_REUSEPORT lets the io threads share the port, but would also let a second process
  // share it silently; so first make sure nobody else holds the port.
  const bool share_port = rt_.size() > 1;
  if (share_port && port != 0) {
    asio::io_context tmp;
    tcp::acceptor probe(tmp);
    probe.open(addr.is_v4() ? tcp::v4() : tcp::v6(), ec);
    if (!ec) probe.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) probe.bind(tcp::endpoint(addr, port), ec);
    if (ec) {
      return fail(Errc::unavailable, "cannot listen on " + h + ":" + std::to_string(port) + ": " + ec.message());
    }
  }
  std::uint16_t bound = port;
  for (unsigned i = 0; i < rt_.size(); ++i) {
    auto w = std::make_unique<Worker>(*this, rt_.context(i));
    w->open_acceptor(tcp::endpoint(addr, bound), share_port, ec);
    if (ec) {
      return fail(Errc::unavailable, "cannot listen on " + h + ":" + std::to_string(bound) + ": " +
                                         ec.message());
    }
    if (bound == 0) bound = w->local_port();
    workers_.push_back(std::move(w));
  }
  port_ = bound;
  started_ = true;
  for (auto& w : workers_) w->start();
  return bound;
}

void ServerCore::shutdown(std::chrono::milliseconds grace, std::function<void()> on_done) {
  {
    std::lock_guard lock(done_mutex_);
    if (done_called_.load()) {
      if (on_done) on_done();
      return;
    }
    if (on_done) on_done_.push_back(std::move(on_done));
    if (draining_.exchange(true, std::memory_order_acq_rel)) return;  // already draining
  }
  log::info("shutting down", {{"grace_ms", static_cast<std::int64_t>(grace.count())},
                              {"open_connections", open_.load()}});
  for (auto& w : workers_) {
    asio::post(w->context(), [w = w.get()] { w->begin_drain(); });
  }
  if (!workers_.empty()) {
    // The grace timer lives on worker 0 and is only ever touched there.
    asio::post(workers_[0]->context(), [this, grace] {
      grace_timer_ = std::make_unique<asio::steady_timer>(workers_[0]->context(), grace);
      grace_timer_->async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        if (open_.load() > 0) {
          log::warn("grace period over; cancelling in-flight requests", {{"open_connections", open_.load()}});
        }
        for (auto& w : workers_) {
          asio::post(w->context(), [w = w.get()] { w->cancel_all(); });
        }
      });
      maybe_done();
    });
  } else {
    maybe_done();
  }
}

Worker* ServerCore::least_loaded(Worker* self) noexcept {
  Worker* best = self;
  for (auto& w : workers_) {
    if (w->load_.load(std::memory_order_relaxed) < best->load_.load(std::memory_order_relaxed)) best = w.get();
  }
  return best;
}

void ServerCore::connection_opened() {
  open_.fetch_add(1, std::memory_order_relaxed);
  active_connections_->inc();
}

void ServerCore::connection_closed() {
  active_connections_->dec();
  if (open_.fetch_sub(1, std::memory_order_acq_rel) == 1) maybe_done();
}

void ServerCore::maybe_done() {
  if (!draining() || open_.load(std::memory_order_acquire) != 0) return;
  if (done_called_.exchange(true)) return;
  std::vector<std::function<void()>> callbacks;
  {
    std::lock_guard lock(done_mutex_);
    callbacks = std::move(on_done_);
  }
  if (!workers_.empty()) {
    asio::post(workers_[0]->context(), [this] {
      if (grace_timer_) grace_timer_->cancel();
    });
  }
  log::info("shutdown complete", {{"requests", requests_.load()}});
  for (auto& f : callbacks) f();
}

Response ServerCore::reject(const Request* req, int status, std::string_view detail) {
  Response res = req != nullptr ? problem(*req, status, detail) : problem(status, detail);
  requests_.fetch_add(1, std::memory_order_relaxed);
  Method m = req != nullptr ? req->method() : Method::other;
  if (req != nullptr) {
    record(*req, m, "unmatched", status, Clock::duration::zero(), nullptr);
  } else {
    Request empty;
    record(empty, m, "unmatched", status, Clock::duration::zero(), nullptr);
  }
  return res;
}

void ServerCore::record(const Request& req, Method method, std::string_view endpoint, int status,
                        Clock::duration elapsed, RouteMetrics* cached) {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  const int idx = status - 100;
  obs::Counter* counter = nullptr;
  if (cached != nullptr && idx >= 0 && idx < 500) {
    counter = cached->by_status[static_cast<std::size_t>(idx)].load(std::memory_order_acquire);
  }
  if (counter == nullptr) {
    char code[8];
    auto r = std::to_chars(code, code + sizeof code, status);
    counter = &requests_total_->with({to_string(method), endpoint, std::string_view(code, r.ptr)});
    if (cached != nullptr && idx >= 0 && idx < 500) {
      cached->by_status[static_cast<std::size_t>(idx)].store(counter, std::memory_order_release);
    }
  }
  counter->inc();
  if (cached != nullptr) {
    cached->duration->observe(seconds);
  } else {
    duration_->with({to_string(method), endpoint}).observe(seconds);
  }
  if (opts_.access_log && log::enabled(log::Level::info)) {
    log::write(status >= 500 ? log::Level::error : log::Level::info,
               req.trace().valid() ? &req.trace() : nullptr, "request",
               {{"method", req.method_name()},
                {"path", req.path()},
                {"route", endpoint},
                {"status", status},
                {"duration_ms", std::round(seconds * 1e6) / 1e3},
                {"remote", req.remote_address()}});
  }
}

awaitable<Response> ServerCore::handle(Request& req) {
  const auto start = Clock::now();
  std::optional<obs::TraceContext> parent;
  if (auto tp = req.header("traceparent")) parent = obs::TraceContext::parse(*tp);
  if (auto budget = req.header(kDeadlineHeader)) {
    std::int64_t ms = 0;
    auto [ptr, ec] = std::from_chars(budget->data(), budget->data() + budget->size(), ms);
    if (ec == std::errc() && ptr == budget->data() + budget->size() && ms >= 0) {
      req.set_deadline(start + std::chrono::milliseconds(std::min<std::int64_t>(ms, 3'600'000)));
    }
  }

  Router::Match match = router_.match(req.method(), req.path());
  std::string_view endpoint = match.kind == Router::Match::Kind::not_found
                                  ? std::string_view("unmatched")
                                  : match.path_template;
  {
    // The span's name is only built when the span is recorded (an exporter is installed).
    obs::Span span(std::string_view(), obs::SpanKind::server, parent ? &*parent : nullptr);
    if (span.recording()) {
      std::string name(req.method_name());
      name += ' ';
      name += endpoint;
      span.set_name(name);
    }
    req.set_span(std::move(span));
  }
  req.set_route(match.kind == Router::Match::Kind::not_found ? std::string_view() : match.path_template,
                match.params);

  Response res;
  RouteMetrics* cached = nullptr;
  switch (match.kind) {
    case Router::Match::Kind::found:
      if (match.options_auto) {
        res = Response::no_content();
        res.headers.add("Allow", match.allow);
        break;
      }
      if (!match.head_via_get) cached = static_cast<RouteMetrics*>(match.route->user);
      try {
        res = co_await match.route->handler(req);
      } catch (const boost::system::system_error& e) {
        if (e.code() == asio::error::operation_aborted) {
          res = problem(req, 503, "the request was cancelled because the server is shutting down");
        } else {
          log::error(req.trace(), "handler failed", {{"route", endpoint}, {"error", e.what()}});
          res = problem(req, 500, "internal error");
        }
      } catch (const std::exception& e) {
        log::error(req.trace(), "handler failed", {{"route", endpoint}, {"error", e.what()}});
        res = problem(req, 500, "internal error");
      }
      break;
    case Router::Match::Kind::method_not_allowed:
      res = problem(req, 405, std::string(req.method_name()) + " is not allowed on " +
                                  std::string(match.path_template));
      res.headers.add("Allow", match.allow);
      break;
    case Router::Match::Kind::not_found:
      res = problem(req, 404, "no route for " + std::string(req.path()));
      break;
  }

  auto& span = req.span();
  if (span.recording()) {
    span.set_attribute("http.request.method", std::string(req.method_name()));
    span.set_attribute("http.route", std::string(endpoint));
    span.set_attribute("url.path", std::string(req.path()));
    span.set_attribute("http.response.status_code", static_cast<std::int64_t>(res.status));
    span.set_attribute("client.address", std::string(req.remote_address()));
    if (res.status >= 500) span.set_error(res.body);
  }
  requests_.fetch_add(1, std::memory_order_relaxed);
  record(req, req.method(), endpoint, res.status, Clock::now() - start, cached);
  span.end();
  co_return res;
}

}  // namespace mercado::http::detail

namespace mercado::http {

Server::Server(core::IoRuntime& runtime, ServerOptions options)
    : core_(std::make_unique<detail::ServerCore>(runtime, std::move(options))) {}
Server::~Server() = default;
Router& Server::router() noexcept { return core_->router(); }
void Server::use(Middleware middleware) { core_->use(std::move(middleware)); }
Result<std::uint16_t> Server::listen(std::string_view host, std::uint16_t port) {
  return core_->listen(host, port);
}
void Server::shutdown(std::chrono::milliseconds grace, std::function<void()> on_done) {
  core_->shutdown(grace, std::move(on_done));
}
bool Server::draining() const noexcept { return core_->draining(); }
ServerStats Server::stats() const noexcept { return core_->stats(); }
std::uint16_t Server::port() const noexcept { return core_->port(); }
const ServerOptions& Server::options() const noexcept { return core_->options(); }

}  // namespace mercado::http
