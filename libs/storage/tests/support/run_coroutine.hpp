#pragma once
// Test support: runs one coroutine to completion on a private io_context and returns its
// result (exceptions propagate).

#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>

namespace mercado::storage::testing {

template <class T>
T run_coroutine(boost::asio::awaitable<T> a) {
  boost::asio::io_context io;
  auto done = boost::asio::co_spawn(io, std::move(a), boost::asio::use_future);
  io.run();
  return done.get();
}

}  // namespace mercado::storage::testing
