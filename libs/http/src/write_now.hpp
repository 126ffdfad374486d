#pragma once
// Writing a message on a TCP socket: at once when the socket takes it, asynchronously
// otherwise.
//
// Why: asio::async_write on the epoll reactor also tries the send at once, but then posts its
// completion to the io thread's queue, and the coroutine resumes only when the scheduler
// reaches it: an operation object, a queue round trip and a coroutine suspension per message,
// where the send itself almost always succeeded (an HTTP head and a small body fit the socket's
// send buffer). `send_now` sends with one non-blocking sendmsg() in the calling coroutine and
// falls back to async_write (`write_rest`) for what the socket did not take (a full send buffer: a
// slow reader, a large body). The socket must be in non-blocking mode
// (`socket.non_blocking(true)`), so that the attempt never blocks the io thread.
//
// The io_uring backend has no speculative send (every write is a queued operation), so there
// the attempt saves the queued operation itself.

#include <cstddef>
#include <span>
#include <tuple>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace mercado::http::detail {

// Sends what the non-blocking `socket` takes of `bufs` now, with one sendmsg(). `ec` is clear
// when everything was sent, `would_block` when some (or all) of it is left for write_rest(),
// anything else on a failed connection. Returns the bytes sent.
inline std::size_t send_now(boost::asio::ip::tcp::socket& socket,
                            std::span<const boost::asio::const_buffer> bufs,
                            boost::system::error_code& ec) {
  const std::size_t total = boost::asio::buffer_size(bufs);
  std::size_t sent = socket.write_some(bufs, ec);
  if (ec == boost::asio::error::try_again) ec = boost::asio::error::would_block;
  if (ec) return 0;
  if (sent < total) ec = boost::asio::error::would_block;
  return sent;
}

// Writes what send_now() left: the buffers after their first `sent` bytes.
inline boost::asio::awaitable<std::tuple<boost::system::error_code, std::size_t>> write_rest(
    boost::asio::ip::tcp::socket& socket, std::span<const boost::asio::const_buffer> bufs,
    std::size_t sent) {
  std::vector<boost::asio::const_buffer> rest;
  std::size_t skip = sent;
  for (const auto& b : bufs) {
    if (skip >= b.size()) {
      skip -= b.size();
      continue;
    }
    rest.push_back(b + skip);
    skip = 0;
  }
  auto [ec, n] = co_await boost::asio::async_write(
      socket, rest, boost::asio::as_tuple(boost::asio::use_awaitable));
  co_return std::make_tuple(ec, sent + n);
}

}  // namespace mercado::http::detail
