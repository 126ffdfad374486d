#include <mercado/core/io_runtime.hpp>

#include <csignal>
#include <stdexcept>

namespace mercado::core {

namespace asio = boost::asio;

IoRuntime::IoRuntime(unsigned threads) {
  if (threads == 0) throw std::invalid_argument("IoRuntime needs at least one thread");
  contexts_.reserve(threads);
  guards_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    // One thread runs each context, and sockets and timers are only touched by that thread
    // (the threading model of docs/architecture.md), so the reactor's per-descriptor
    // locking is off; posting from other threads (completions of the blocking pool,
    // notifiers, shutdown) stays thread-safe.
    contexts_.push_back(std::make_unique<asio::io_context>(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO));
    guards_.emplace_back(contexts_.back()->get_executor());
  }
}

IoRuntime::~IoRuntime() {
  stop();
  join();
}

asio::io_context& IoRuntime::next() noexcept {
  return *contexts_[next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size()];
}

void IoRuntime::run() {
  stopped_ = false;
  for (unsigned i = 1; i < contexts_.size(); ++i) {
    threads_.emplace_back([this, i] { contexts_[i]->run(); });
  }
  contexts_[0]->run();
  join();
}

void IoRuntime::start() {
  stopped_ = false;
  for (unsigned i = 0; i < contexts_.size(); ++i) {
    threads_.emplace_back([this, i] { contexts_[i]->run(); });
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
