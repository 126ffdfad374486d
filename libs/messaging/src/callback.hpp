#pragma once
// Awaits a value delivered by a callback from another thread:
//
//   Result<void> r = co_await await_callback<Result<void>>([&](Completion<Result<void>> done) {
//     actor->post([done] { ...; done(Result<void>{}); });
//   });
//
// The coroutine resumes on its own executor. The completion must be called exactly once
// (later calls are ignored); while it is pending the coroutine's executor has work.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace mercado::messaging::detail {

template <class T>
using Completion = std::function<void(T)>;

template <class T, class Start>
boost::asio::awaitable<T> await_callback(Start start) {
  co_return co_await boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&, void(T)>(
      [](auto handler, Start s) {
        using Handler = decltype(handler);
        auto ex = boost::asio::get_associated_executor(handler);
        struct Pending {
          std::optional<Handler> handler;
          std::optional<decltype(boost::asio::make_work_guard(ex))> work;
          std::atomic<bool> done{false};
        };
        auto pending = std::make_shared<Pending>();
        pending->handler.emplace(std::move(handler));
        pending->work.emplace(boost::asio::make_work_guard(ex));
        s(Completion<T>([pending](T value) {
          if (pending->done.exchange(true)) return;
          // The work guard is released here, after post() has returned: released by the
          // handler, the io_context could finish run() and be destroyed while this thread is
          // still inside post() signalling it.
          auto work = std::move(*pending->work);
          pending->work.reset();
          boost::asio::post(work.get_executor(), [pending, value = std::move(value)]() mutable {
            auto h = std::move(*pending->handler);
            pending->handler.reset();
            std::move(h)(std::move(value));
          });
          work.reset();
        }));
      },
      boost::asio::use_awaitable, std::move(start));
}

}  // namespace mercado::messaging::detail
