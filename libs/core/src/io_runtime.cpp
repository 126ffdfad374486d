#include <mercado/core/io_runtime.hpp>

#include <sched.h>

#include <boost/asio/steady_timer.hpp>

#include <csignal>
#include <stdexcept>

namespace mercado::core {

namespace asio = boost::asio;

namespace {

// One thread runs each context, and sockets and timers are only touched by that thread (the
// threading model of docs/architecture.md), so the per-descriptor locking is off. Posting
// from other threads (completions of the blocking pool, notifiers, shutdown) stays
// thread-safe: the scheduler locks, and with io_uring so does the ring's submission queue,
// because waking a thread blocked on the ring submits an entry from the posting thread.
#if defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
constexpr int kConcurrencyHint = static_cast<int>(BOOST_ASIO_CONCURRENCY_HINT_ID |
                                                  BOOST_ASIO_CONCURRENCY_HINT_LOCKING_SCHEDULER |
                                                  BOOST_ASIO_CONCURRENCY_HINT_LOCKING_REACTOR_REGISTRATION);
#else
constexpr int kConcurrencyHint = BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO;
#endif

}  // namespace

void require_io_backend(asio::io_context& ctx) {
#if defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
  // The ring is set up when the context's first timer or socket is.
  try {
    asio::steady_timer probe(ctx);
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error(
        std::string("io_uring is not available here (") + e.what() +
        "): it may be disabled (sysctl kernel.io_uring_disabled) or blocked by a seccomp profile, as container "
        "runtimes' defaults do; allow it, or build with -DMERCADO_IO_BACKEND=epoll");
  }
#else
  (void)ctx;
#endif
}

IoRuntime::IoRuntime(unsigned threads, unsigned yield_every) : yield_every_(yield_every) {
  if (threads == 0) throw std::invalid_argument("IoRuntime needs at least one thread");
  contexts_.reserve(threads);
  guards_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    contexts_.push_back(std::make_unique<asio::io_context>(kConcurrencyHint));
    guards_.emplace_back(contexts_.back()->get_executor());
    require_io_backend(*contexts_.back());  // fails here, at start, rather than at the first socket
  }
}

IoRuntime::~IoRuntime() {
  stop();
  join();
}

// An io thread that always has ready work never blocks, so the scheduler takes its CPU
// away only at a timer tick (4 ms here); a thread waiting for that CPU then waits up to two
// ticks. When that thread is the client whose requests this one serves (a load generator on
// the same cores), every request it would send or read waits too. With yield_every_ set,
// after that many handlers without blocking the thread offers its CPU (sched_yield, which
// returns at once when nobody else is runnable there). bench/http (wrk on the same two
// cores): p99 0.6-1.25x nginx's with 256, 1.1-2.5x without. In the shop (five services and
// the load generator on two cores) it made the p99 worse, so it is off by default
// (bench/RESULTS.md has both).
void IoRuntime::run_context(asio::io_context& ctx) const {
  if (yield_every_ == 0) {
    ctx.run();
    return;
  }
  while (ctx.run_one() != 0) {  // blocks until a handler has run; 0: stopped or out of work
    unsigned ran = 1;
    while (ctx.poll_one() != 0) {  // what is ready now, without blocking
      if (++ran == yield_every_) {
        ::sched_yield();
        ran = 0;
      }
    }
    if (ctx.stopped()) break;
  }
}

asio::io_context& IoRuntime::next() noexcept {
  return *contexts_[next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

void IoRuntime::run() {
  stopped_ = false;
  for (unsigned i = 1; i < contexts_.size(); ++i) {
    threads_.emplace_back([this, i] { run_context(*contexts_[i]); });
  }
  run_context(*contexts_[0]);
  join();
}

void IoRuntime::start() {
  stopped_ = false;
  for (unsigned i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([this, i] { run_context(*contexts_[i]); });
  }
}

void IoRuntime::stop() {
  if (stopped_.exchange(true)) return;
  for (auto& c : contexts_) c->stop();
}

void IoRuntime::join() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void IoRuntime::on_shutdown_signal(std::function<void(int)> handler) {
  signal_handler_ = std::move(handler);
  signals_ = std::make_unique<asio::signal_set>(*contexts_[0], SIGINT, SIGTERM);
  wait_signal();
}

void IoRuntime::wait_signal() {
  signals_->async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    if (++signals_seen_ == 1 && signal_handler_) {
      signal_handler_(signo);
      wait_signal();
    } else {
      stop();
    }
  });
}

}  // namespace mercado::core
