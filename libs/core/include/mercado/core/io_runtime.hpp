#pragma once
// The process's I/O threads: N Asio io_contexts, each run by exactly one thread (the
// nginx-worker / thread-per-core model). Connections and the coroutines serving them stay
// on the thread that accepted them, so per-connection state needs no locks or strands.
// Anything shared between threads (metrics, breakers, pools) is thread-safe itself.

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

namespace mercado::core {

// Throws std::runtime_error with what to do when the build's io backend cannot run here
// (io_uring forbidden by a sysctl or a seccomp profile); nothing on epoll builds. IoRuntime
// calls it for each of its contexts; code with a plain io_context calls it once, first.
void require_io_backend(boost::asio::io_context& ctx);

class IoRuntime {
 public:
  // threads >= 1. yield_every: after this many handlers run without blocking, an io thread
  // offers its CPU to another runnable thread (sched_yield); 0: never (the default). See
  // run_context() in io_runtime.cpp for when it helps and when it costs.
  explicit IoRuntime(unsigned threads, unsigned yield_every = 0);
  ~IoRuntime();
  IoRuntime(const IoRuntime&) = delete;
  IoRuntime& operator=(const IoRuntime&) = delete;

  unsigned size() const noexcept { return static_cast<unsigned>(contexts_.size()); }
  boost::asio::io_context& context(unsigned i) { return *contexts_.at(i); }
  // Round-robin over the contexts; thread-safe.
  boost::asio::io_context& next() noexcept;

  // Runs every context: size()-1 background threads plus the calling thread (context 0).
  // Returns once stop() was called and every thread has finished.
  void run();
  // Starts one background thread per context and returns (tests, embedding).
  void start();
  // Thread-safe and idempotent: makes run() return / the threads finish.
  void stop();
  // Waits for the threads started by start().
  void join();
  bool stopped() const noexcept { return stopped_.load(); }

  // On the first SIGINT or SIGTERM, `handler(signal)` runs on context 0; a second signal
  // stops the runtime at once. Call before run().
  void on_shutdown_signal(std::function<void(int)> handler);

 private:
  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<Guard> guards_;
  std::vector<std::thread> threads_;
  std::unique_ptr<boost::asio::signal_set> signals_;
  std::function<void(int)> signal_handler_;
  int signals_seen_ = 0;
  std::atomic<unsigned> next_{0};
  std::atomic<bool> stopped_{false};
  unsigned yield_every_ = 0;

  void wait_signal();
  void run_context(boost::asio::io_context& ctx) const;
};

}  // namespace mercado::core
