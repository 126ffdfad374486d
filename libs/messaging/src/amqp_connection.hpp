#pragma once
// A thin RAII layer over one rabbitmq-c connection: connect and log in with timeouts,
// declare topology, publish, ack, read frames and messages, with every failure as an
// Error (Errc::unavailable for broker and network failures, Errc::internal for topology
// mismatches such as redeclaring a queue with other arguments).
// Not thread-safe: one thread uses a connection at a time (rabbitmq-c's rule).

#include "librabbitmq.hpp"

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <mercado/core/error.hpp>

namespace mercado::messaging::detail {

struct AmqpUrl {
  std::string host;
  int port = 5672;
  std::string user;
  std::string password;
  std::string vhost;
  std::string redacted;  // for logs
};

// amqp://user:pass@host:port/vhost (vhost percent-decoded: %2f is "/"). invalid_argument
// for a malformed URL or amqps:// (TLS is not supported).
Result<AmqpUrl> parse_amqp_url(std::string_view url);

// Builds an AMQP field table whose strings live as long as the builder.
class TableBuilder {
 public:
  TableBuilder& add(std::string key, std::string value);
  TableBuilder& add(std::string key, std::int64_t value);
  amqp_table_t table() noexcept;

 private:
  std::deque<std::string> strings_;
  std::vector<amqp_table_entry_t> entries_;
};

// A received message: body and the properties Mercado uses.
struct AmqpContent {
  std::string body;
  std::string message_id;
  std::string type;
  std::map<std::string, std::string, std::less<>> string_headers;
  std::map<std::string, std::int64_t, std::less<>> int_headers;
};

class AmqpConnection {
 public:
  static Result<std::unique_ptr<AmqpConnection>> open(const AmqpUrl& url, std::chrono::seconds heartbeat,
                                                      std::chrono::milliseconds timeout);
  ~AmqpConnection();
  AmqpConnection(const AmqpConnection&) = delete;
  AmqpConnection& operator=(const AmqpConnection&) = delete;

  amqp_connection_state_t state() const noexcept { return conn_; }
  int fd() const noexcept;
  // After an error the connection is not closed politely on destruction.
  void mark_broken() noexcept { broken_ = true; }

  Result<void> open_channel(amqp_channel_t ch);
  Result<void> confirm_select(amqp_channel_t ch);
  Result<void> declare_exchange(amqp_channel_t ch, std::string_view name, std::string_view type);
  Result<void> declare_queue(amqp_channel_t ch, std::string_view name, amqp_table_t args);
  Result<void> delete_queue(amqp_channel_t ch, std::string_view name);
  Result<void> bind_queue(amqp_channel_t ch, std::string_view queue, std::string_view exchange, std::string_view key);
  Result<void> qos(amqp_channel_t ch, std::uint16_t prefetch);
  Result<void> consume(amqp_channel_t ch, std::string_view queue);
  Result<void> publish(amqp_channel_t ch, std::string_view exchange, std::string_view routing_key,
                       const amqp_basic_properties_t& props, std::string_view body);
  Result<void> ack(amqp_channel_t ch, std::uint64_t tag);
  Result<void> nack(amqp_channel_t ch, std::uint64_t tag, bool requeue);

  // The next frame within `timeout` (zero: only what is already readable), nullopt when
  // none arrived. Sends heartbeats when due.
  Result<std::optional<amqp_frame_t>> next_frame(std::chrono::milliseconds timeout);
  // True when frames are buffered and next_frame() will not block.
  bool buffered() const noexcept;
  // After a basic.deliver / basic.get-ok method frame: reads the content that follows.
  Result<AmqpContent> read_content(amqp_channel_t ch);
  // basic.get: one message of `queue` (and its delivery tag), or nullopt when it is empty.
  Result<std::optional<std::pair<std::uint64_t, AmqpContent>>> get(amqp_channel_t ch, std::string_view queue);

  void release_buffers() noexcept { rmq().amqp_maybe_release_buffers(conn_); }

 private:
  explicit AmqpConnection(amqp_connection_state_t conn) : conn_(conn) {}
  Result<void> check_rpc(std::string_view what);
  Error status_error(int status, std::string_view what);

  amqp_connection_state_t conn_;
  bool broken_ = false;
};

}  // namespace mercado::messaging::detail
