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
// slow reader, a large body). The attempt uses MSG_DONTWAIT: it never blocks the io thread.
//
// The io_uring backend queues every send as a ring entry and submits them in batches; there
// everything goes through async_write.

#include <array>
#include <cerrno>
#include <cstddef>
#include <span>
#include <sys/socket.h>
#include <sys/uio.h>
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

// Sends what `socket` takes of `bufs` now, with one sendmsg(MSG_DONTWAIT): it never blocks,
// whatever mode Asio believes the socket is in (a socket handed to another io thread through
// release()/assign() loses Asio's non-blocking flag, and Asio's synchronous send then waits
// in poll() for room). `ec` is clear when everything was sent, `would_block` when some (or
// all) of it is left for write_rest(), anything else on a failed connection. Returns the bytes
// sent. On the io_uring backend it sends nothing (every send there is a queued ring entry,
// submitted in batches: an extra system call per message would undo that).
inline std::size_t send_now(boost::asio::ip::tcp::socket& socket,
                            std::span<const boost::asio::const_buffer> bufs,
                            boost::system::error_code& ec) {
#if defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
  (void)socket;
  (void)bufs;
  ec = boost::asio::error::would_block;
  return 0;
#else
  std::array<::iovec, 8> iov{};
  std::size_t count = 0;
  for (const auto& b : bufs) {
    if (count == iov.size()) break;  // the rest goes through write_rest()
    iov[count++] = {const_cast<void*>(b.data()), b.size()};
  }
  ::msghdr msg{};
  msg.msg_iov = iov.data();
  msg.msg_iovlen = count;
  ::ssize_t n = 0;
  do {
    n = ::sendmsg(socket.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    ec = errno == EAGAIN || errno == EWOULDBLOCK
             ? boost::system::error_code(boost::asio::error::would_block)
             : boost::system::error_code(errno, boost::asio::error::get_system_category());
    return 0;
  }
  const auto sent = static_cast<std::size_t>(n);
  ec = sent < boost::asio::buffer_size(bufs)
           ? boost::system::error_code(boost::asio::error::would_block)
           : boost::system::error_code();
  return sent;
#endif
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
