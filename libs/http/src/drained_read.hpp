#pragma once
// async_read_some for a TCP socket that, like nginx, takes a short read as "the socket is
// drained": the next read then waits for the reactor's next readiness event instead of first
// trying recv() at once.
//
// Why: Asio's epoll reactor tries every read speculatively, and marks a socket as having
// nothing to read only at end of stream. On a keep-alive connection the next request (or, in
// the client, the response) has almost never arrived when the read is started right after
// the previous exchange, so 0.5-0.7 recv() calls per request failed with EAGAIN
// (bench/RESULTS.md, HTTP section): a system call per request that nginx does not make.
//
// Why it is safe: the descriptor is registered edge-triggered (EPOLLET). recv() on a stream
// socket returns fewer bytes than asked only when it emptied the receive queue, and any byte
// (or FIN, or error) that arrives after that raises a new edge, which the reactor turns into
// another attempt. The operation reports such a read as `done_and_exhausted`, the status
// Asio itself uses for end of stream; the reactor then clears its "try at once" flag for the
// descriptor until the next event. Everything else (cancellation per operation and by
// cancel()/close(), completion through the handler's executor, handler memory) is done
// exactly as Asio's own reactive_socket_recv_op does: this file mirrors it (Boost 1.81,
// boost/asio/detail/reactive_socket_recv_op.hpp and reactive_socket_service_base.hpp).
//
// On builds whose io backend is not the epoll reactor (io_uring), and with a Boost other than
// the 1.81 this was written against (Debian 12's; the reactor's internals are not an API), it
// is plain async_read_some.

#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/version.hpp>

#if !defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT) && defined(BOOST_ASIO_HAS_EPOLL) && \
    !defined(BOOST_ASIO_DISABLE_EPOLL) && BOOST_VERSION / 100 == 1081
#define MERCADO_HTTP_DRAINED_READ 1
#include <boost/asio/associated_cancellation_slot.hpp>
#include <boost/asio/detail/bind_handler.hpp>
#include <boost/asio/detail/fenced_block.hpp>
#include <boost/asio/detail/handler_alloc_helpers.hpp>
#include <boost/asio/detail/handler_cont_helpers.hpp>
#include <boost/asio/detail/handler_work.hpp>
#include <boost/asio/detail/memory.hpp>
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <boost/asio/detail/socket_ops.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/query.hpp>
#endif

#include <utility>

namespace mercado::http::detail {

#if defined(MERCADO_HTTP_DRAINED_READ)

namespace drained {

namespace asio = boost::asio;
namespace ad = boost::asio::detail;
using tcp = asio::ip::tcp;

// The socket's reactor-side state (basic_socket keeps it in a protected member).
struct SocketAccess : tcp::socket {
  static auto& implementation(tcp::socket& s) {
    return (s.*&SocketAccess::impl_).get_implementation();
  }
};

// The reactor of the context the socket belongs to: the one its socket service registered
// with. (Looked up under the context's service-registry mutex, by type name: callers that read
// often keep it, see ReadReactor. Not cached here by context address: a context destroyed and
// another created at the same address would find the old reactor.)
inline ad::reactor& reactor_of(tcp::socket& s) {
  return asio::use_service<ad::reactor>(asio::query(s.get_executor(), asio::execution::context));
}

class Cancellation {
 public:
  Cancellation(ad::reactor* r, ad::reactor::per_descriptor_data* data, int descriptor)
      : reactor_(r), data_(data), descriptor_(descriptor) {}
  void operator()(asio::cancellation_type_t type) {
    if (!!(type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                   asio::cancellation_type::total))) {
      reactor_->cancel_ops_by_key(descriptor_, *data_, ad::reactor::read_op, this);
    }
  }

 private:
  ad::reactor* reactor_;
  ad::reactor::per_descriptor_data* data_;
  int descriptor_;
};

template <class Handler, class IoExecutor>
class RecvOp : public ad::reactor_op {
 public:
  BOOST_ASIO_DEFINE_HANDLER_PTR(RecvOp);

  RecvOp(const boost::system::error_code& success_ec, ad::socket_type socket,
         asio::mutable_buffer buffer, Handler& handler, const IoExecutor& io_ex)
      : ad::reactor_op(success_ec, &RecvOp::do_perform, &RecvOp::do_complete),
        socket_(socket),
        buffer_(buffer),
        handler_(std::move(handler)),
        work_(handler_, io_ex) {}

  static status do_perform(ad::reactor_op* base) {
    auto* o = static_cast<RecvOp*>(base);
    if (!ad::socket_ops::non_blocking_recv1(o->socket_, o->buffer_.data(), o->buffer_.size(), 0,
                                            /*is_stream=*/true, o->ec_, o->bytes_transferred_)) {
      return not_done;  // EAGAIN: queued until the next readiness event
    }
    // End of stream (0 bytes) or a short read: the receive queue is empty now.
    if (!o->ec_ && o->bytes_transferred_ < o->buffer_.size()) return done_and_exhausted;
    return done;
  }

  static void do_complete(void* owner, ad::operation* base, const boost::system::error_code& /*ec*/,
                          std::size_t /*bytes_transferred*/) {
    auto* o = static_cast<RecvOp*>(base);
    ptr p = {ad::addressof(o->handler_), o, o};
    ad::handler_work<Handler, IoExecutor> w(std::move(o->work_));
    // A copy of the handler, so that the operation's memory is freed before the upcall.
    ad::binder2<Handler, boost::system::error_code, std::size_t> handler(o->handler_, o->ec_,
                                                                         o->bytes_transferred_);
    p.h = ad::addressof(handler.handler_);
    p.reset();
    if (owner) {
      ad::fenced_block b(ad::fenced_block::half);
      w.complete(handler, handler.handler_);
    }
  }

 private:
  ad::socket_type socket_;
  asio::mutable_buffer buffer_;
  Handler handler_;
  ad::handler_work<Handler, IoExecutor> work_;
};

struct Initiation {
  tcp::socket* socket;
  ad::reactor* known_reactor;  // the socket's (reactor_of); null: look it up

  using executor_type = tcp::socket::executor_type;
  executor_type get_executor() const noexcept { return socket->get_executor(); }

  template <class Handler>
  void operator()(Handler&& handler, asio::mutable_buffer buffer) const {
    using H = std::decay_t<Handler>;
    using Op = RecvOp<H, executor_type>;
    H h(std::forward<Handler>(handler));
    auto& impl = SocketAccess::implementation(*socket);
    auto& reactor = known_reactor != nullptr ? *known_reactor : reactor_of(*socket);
    const bool is_continuation = boost_asio_handler_cont_helpers::is_continuation(h);
    auto slot = asio::get_associated_cancellation_slot(h);
    typename Op::ptr p = {ad::addressof(h), Op::ptr::allocate(h), nullptr};
    p.p =
        new (p.v) Op(boost::system::error_code(), impl.socket_, buffer, h, socket->get_executor());
    if (buffer.size() == 0) {  // nothing to read into: done, as Asio does for empty buffers
      reactor.post_immediate_completion(p.p, is_continuation);
      p.v = p.p = nullptr;
      return;
    }
    if (slot.is_connected()) {
      p.p->cancellation_key_ =
          &slot.template emplace<Cancellation>(&reactor, &impl.reactor_data_, impl.socket_);
    }
    if ((impl.state_ & ad::socket_ops::non_blocking) ||
        ad::socket_ops::set_internal_non_blocking(impl.socket_, impl.state_, true, p.p->ec_)) {
      reactor.start_op(ad::reactor::read_op, impl.socket_, impl.reactor_data_, p.p, is_continuation,
                       /*allow_speculative=*/true);
    } else {
      reactor.post_immediate_completion(p.p, is_continuation);
    }
    p.v = p.p = nullptr;
  }
};

}  // namespace drained

// The reactor a socket's drained reads go through, looked up once (per connection, per io
// thread) instead of at every read.
class ReadReactor {
 public:
  ReadReactor() = default;
  explicit ReadReactor(boost::asio::ip::tcp::socket& socket) : reactor_(&drained::reactor_of(socket)) {}
  drained::ad::reactor* get() const noexcept { return reactor_; }

 private:
  drained::ad::reactor* reactor_ = nullptr;
};

// Completes with (error_code, bytes read), like socket.async_read_some(buffer, token).
// `reactor`: the socket's, when the caller keeps it.
template <class CompletionToken>
auto async_read_some_drained(boost::asio::ip::tcp::socket& socket, boost::asio::mutable_buffer buffer,
                             CompletionToken&& token, ReadReactor reactor = {}) {
  return boost::asio::async_initiate<CompletionToken, void(boost::system::error_code, std::size_t)>(
      drained::Initiation{&socket, reactor.get()}, token, buffer);
}

#else

class ReadReactor {
 public:
  ReadReactor() = default;
  explicit ReadReactor(boost::asio::ip::tcp::socket&) {}
};

template <class CompletionToken>
auto async_read_some_drained(boost::asio::ip::tcp::socket& socket, boost::asio::mutable_buffer buffer,
                             CompletionToken&& token, ReadReactor = {}) {
  return socket.async_read_some(buffer, std::forward<CompletionToken>(token));
}

#endif

}  // namespace mercado::http::detail
