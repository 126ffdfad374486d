#include "test_support.hpp"

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <sys/socket.h>
#include <sys/time.h>

#include <gtest/gtest.h>

#include <mercado/http/headers.hpp>

namespace mercado::http::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

TestServer::TestServer(std::function<void(Server&)> setup, ServerOptions opts, unsigned threads)
    : runtime_(threads) {
  opts.metrics = &registry_;
  opts.access_log = false;
  server_ = std::make_unique<Server>(runtime_, opts);
  setup(*server_);
  auto port = server_->listen("127.0.0.1", 0);
  if (!port) throw std::runtime_error(port.error().message);
  port_ = *port;
  runtime_.start();
}

TestServer::~TestServer() {
  if (!shut_) shutdown(std::chrono::milliseconds(200));
  runtime_.stop();
  runtime_.join();
}

std::string TestServer::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
}

void TestServer::shutdown(std::chrono::milliseconds grace) {
  shut_ = true;
  // Shared: the io thread may still be inside set_value() when wait() returns.
  auto done = std::make_shared<std::promise<void>>();
  auto fut = done->get_future();
  server_->shutdown(grace, [done] { done->set_value(); });
  fut.wait();
}

RawConnection::RawConnection(std::uint16_t port, std::chrono::milliseconds recv_timeout) : socket_(ctx_) {
  socket_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(recv_timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((recv_timeout.count() % 1000) * 1000);
  ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

namespace {

// A blocking recv with a receive timeout returns EINTR when the thread is interrupted (a
// signal, or io_uring's task work for a ring this thread submitted to): try again.
ssize_t recv_retrying(int fd, char* buf, std::size_t size) {
  for (;;) {
    ssize_t n = ::recv(fd, buf, size, 0);
    if (n >= 0 || errno != EINTR) return n;
  }
}

}  // namespace

void RawConnection::send(std::string_view bytes) {
  boost::system::error_code ec;
  asio::write(socket_, asio::buffer(bytes), ec);
}

std::string RawConnection::read_response(bool head_only) {
  char buf[8192];
  for (;;) {
    auto end_of_head = pending_.find("\r\n\r\n");
    if (end_of_head != std::string::npos) {
      std::string head = pending_.substr(0, end_of_head + 4);
      std::size_t length = 0;
      auto cl = header_of(head, "Content-Length");
      if (!cl.empty()) length = std::stoul(cl);
      if (head_only || status_of(head) == 100 || status_of(head) == 204 || status_of(head) == 304) length = 0;
      if (pending_.size() >= end_of_head + 4 + length) {
        std::string response = pending_.substr(0, end_of_head + 4 + length);
        pending_.erase(0, end_of_head + 4 + length);
        return response;
      }
    }
    ssize_t n = recv_retrying(socket_.native_handle(), buf, sizeof buf);
    if (n <= 0) return {};
    pending_.append(buf, static_cast<std::size_t>(n));
  }
}

std::string RawConnection::read_until_close() {
  std::string all = std::move(pending_);
  pending_.clear();
  char buf[8192];
  for (;;) {
    ssize_t n = recv_retrying(socket_.native_handle(), buf, sizeof buf);
    if (n <= 0) return all;
    all.append(buf, static_cast<std::size_t>(n));
  }
}

bool RawConnection::peer_closed() {
  char c;
  ssize_t n = recv_retrying(socket_.native_handle(), &c, 1);
  if (n > 0) {
    pending_.push_back(c);
    return false;
  }
  return n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

void RawConnection::close() {
  boost::system::error_code ec;
  socket_.close(ec);
}

int status_of(std::string_view r) {
  if (r.size() < 12 || !r.starts_with("HTTP/1.")) return 0;
  return std::stoi(std::string(r.substr(9, 3)));
}

std::vector<std::string_view> in_pieces(std::string_view message, std::size_t first, std::size_t last) {
  const std::size_t cuts[] = {first, message.size() / 2, message.size() - last, message.size()};
  std::vector<std::string_view> out;
  std::size_t from = 0;
  for (std::size_t to : cuts) {
    out.push_back(message.substr(from, to - from));
    from = to;
  }
  return out;
}

std::string body_of(std::string_view r) {
  auto pos = r.find("\r\n\r\n");
  return pos == std::string_view::npos ? std::string() : std::string(r.substr(pos + 4));
}

std::string header_of(std::string_view r, std::string_view name) {
  auto head_end = r.find("\r\n\r\n");
  std::string_view head = r.substr(0, head_end);
  std::size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos < head.size()) {
    auto next = head.find("\r\n", pos + 2);
    auto line = head.substr(pos + 2, (next == std::string_view::npos ? head.size() : next) - pos - 2);
    auto colon = line.find(':');
    if (colon != std::string_view::npos && iequals(line.substr(0, colon), name)) {
      auto v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      return std::string(v);
    }
    pos = next;
  }
  return {};
}

}  // namespace mercado::http::testing
