#pragma once
// A bounded pool of worker threads for blocking calls (SQLite, libpq, rabbitmq-c), awaited
// from coroutines so that the io threads never block:
//
//   Result<Row> row = co_await pool.run([&] { return db.query_one(...); });
//
// The calling coroutine resumes on its own executor. An exception thrown by the function
// is rethrown in the coroutine; the function (and its captures) is destroyed on the worker
// before the coroutine resumes. Thread-safe. Destroying the pool waits for queued work.

#include <atomic>
#include <cstddef>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mercado::core {

class BlockingPool {
 public:
  explicit BlockingPool(std::size_t threads) : pool_(threads), threads_(threads) {}
  ~BlockingPool() { pool_.join(); }
  BlockingPool(const BlockingPool&) = delete;
  BlockingPool& operator=(const BlockingPool&) = delete;

  std::size_t threads() const noexcept { return threads_; }
  // Calls queued or running now.
  std::size_t pending() const noexcept { return pending_.load(std::memory_order_relaxed); }

  // Runs `f` on a worker and forgets it (the caller arranges its own completion).
  template <class F>
  void post(F f) {
    boost::asio::post(pool_, std::move(f));
  }

  template <class F>
  boost::asio::awaitable<std::invoke_result_t<F>> run(F f) {
    using R = std::invoke_result_t<F>;
    using Slot = std::conditional_t<std::is_void_v<R>, bool, std::optional<R>>;
    auto slot = co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                                     void(std::exception_ptr, Slot)>(
        [this](auto handler, F fn) {
          pending_.fetch_add(1, std::memory_order_relaxed);
          auto work = boost::asio::make_work_guard(handler);
          boost::asio::post(pool_, [this, handler = std::move(handler), fn = std::optional<F>(std::move(fn)),
                                    work = std::move(work)]() mutable {
            std::exception_ptr error;
            Slot value{};
            try {
              if constexpr (std::is_void_v<R>) {
                (*fn)();
                value = true;
              } else {
                value.emplace((*fn)());
              }
            } catch (...) {
              error = std::current_exception();
            }
            // The function and what it captured are gone before the caller resumes.
            fn.reset();
            pending_.fetch_sub(1, std::memory_order_relaxed);
            auto ex = work.get_executor();
            // The exception moves along too: the caller holds its only reference (a copy left
            // here could be the last one, freed on this thread after the caller read it --
            // correct, but invisible to TSan through libstdc++'s uninstrumented refcount).
            boost::asio::dispatch(ex, [handler = std::move(handler), error = std::move(error),
                                       value = std::move(value)]() mutable {
              std::move(handler)(error, std::move(value));
            });
          });
        },
        boost::asio::use_awaitable, std::move(f));
    if constexpr (!std::is_void_v<R>) co_return std::move(*slot);
  }

 private:
  boost::asio::thread_pool pool_;
  std::size_t threads_;
  std::atomic<std::size_t> pending_{0};
};

}  // namespace mercado::core
