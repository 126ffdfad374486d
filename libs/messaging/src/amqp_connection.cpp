#include "amqp_connection.hpp"

#include <sys/time.h>

#include <cstring>

#include <mercado/storage/database_url.hpp>

namespace mercado::messaging::detail {
namespace {

amqp_bytes_t bytes(std::string_view s) noexcept {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}

std::string str(const amqp_bytes_t& b) {
  return b.bytes ? std::string(static_cast<const char*>(b.bytes), b.len) : std::string();
}

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

Error unavailable(std::string internal) {
  Error e(Errc::unavailable, "message broker unavailable");
  e.internal = std::move(internal);
  return e;
}

}  // namespace

Result<AmqpUrl> parse_amqp_url(std::string_view url) {
  if (auto api = load_librabbitmq(); !api) return std::unexpected(std::move(api.error()));
  std::string buf(url);
  amqp_connection_info info{};
  rmq().amqp_default_connection_info(&info);
  if (rmq().amqp_parse_url(buf.data(), &info) != AMQP_STATUS_OK) {
    return fail(Errc::invalid_argument, "malformed AMQP URL '" + storage::redact_url_password(url) + "'");
  }
  if (info.ssl) return fail(Errc::invalid_argument, "amqps:// (TLS) is not supported; use amqp://");
  AmqpUrl out;
  out.host = info.host;
  out.port = info.port;
  out.user = info.user;
  out.password = info.password;
  out.vhost = info.vhost;
  out.redacted = storage::redact_url_password(url);
  return out;
}

TableBuilder& TableBuilder::add(std::string key, std::string value) {
  auto& k = strings_.emplace_back(std::move(key));
  auto& v = strings_.emplace_back(std::move(value));
  amqp_table_entry_t e{};
  e.key = bytes(k);
  e.value.kind = AMQP_FIELD_KIND_UTF8;
  e.value.value.bytes = bytes(v);
  entries_.push_back(e);
  return *this;
}

TableBuilder& TableBuilder::add(std::string key, std::int64_t value) {
  auto& k = strings_.emplace_back(std::move(key));
  amqp_table_entry_t e{};
  e.key = bytes(k);
  e.value.kind = AMQP_FIELD_KIND_I64;
  e.value.value.i64 = value;
  entries_.push_back(e);
  return *this;
}

amqp_table_t TableBuilder::table() noexcept {
  return amqp_table_t{static_cast<int>(entries_.size()), entries_.empty() ? nullptr : entries_.data()};
}

Result<std::unique_ptr<AmqpConnection>> AmqpConnection::open(const AmqpUrl& url, std::chrono::seconds heartbeat,
                                                             std::chrono::milliseconds timeout) {
  if (auto api = load_librabbitmq(); !api) return std::unexpected(std::move(api.error()));
  amqp_connection_state_t conn = rmq().amqp_new_connection();
  if (!conn) return std::unexpected(unavailable("amqp_new_connection failed"));
  std::unique_ptr<AmqpConnection> c(new AmqpConnection(conn));
  c->broken_ = true;  // until logged in: nothing to close politely
  amqp_socket_t* socket = rmq().amqp_tcp_socket_new(conn);
  if (!socket) return std::unexpected(unavailable("amqp_tcp_socket_new failed"));
  timeval tv = to_timeval(timeout);
  int status = rmq().amqp_socket_open_noblock(socket, url.host.c_str(), url.port, &tv);
  if (status != AMQP_STATUS_OK) return std::unexpected(c->status_error(status, "connect to " + url.redacted));
  rmq().amqp_set_handshake_timeout(conn, &tv);
  rmq().amqp_set_rpc_timeout(conn, &tv);
  amqp_rpc_reply_t r = rmq().amqp_login(conn, url.vhost.c_str(), 0, 131072, static_cast<int>(heartbeat.count()),
                                  AMQP_SASL_METHOD_PLAIN, url.user.c_str(), url.password.c_str());
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
      return std::unexpected(unavailable("login to " + url.redacted + " refused by the broker"));
    }
    return std::unexpected(c->status_error(r.library_error, "login to " + url.redacted));
  }
  c->broken_ = false;
  return c;
}

AmqpConnection::~AmqpConnection() {
  if (!broken_) {
    // Politely, but never for long: a dead peer must not hold up shutdown.
    timeval tv = to_timeval(std::chrono::milliseconds(1000));
    rmq().amqp_set_rpc_timeout(conn_, &tv);
    rmq().amqp_connection_close(conn_, AMQP_REPLY_SUCCESS);
  }
  rmq().amqp_destroy_connection(conn_);
}

int AmqpConnection::fd() const noexcept { return rmq().amqp_get_sockfd(conn_); }

Error AmqpConnection::status_error(int status, std::string_view what) {
  broken_ = true;
  return unavailable(std::string(what) + ": " + rmq().amqp_error_string2(status));
}

Result<void> AmqpConnection::check_rpc(std::string_view what) {
  amqp_rpc_reply_t r = rmq().amqp_get_rpc_reply(conn_);
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL: return {};
    case AMQP_RESPONSE_LIBRARY_EXCEPTION: return std::unexpected(status_error(r.library_error, what));
    case AMQP_RESPONSE_SERVER_EXCEPTION: {
      broken_ = true;  // a channel or connection exception closes what we were using
      std::uint16_t code = 0;
      std::string text;
      if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        auto* m = static_cast<amqp_channel_close_t*>(r.reply.decoded);
        code = m->reply_code;
        text = str(m->reply_text);
      } else if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
        auto* m = static_cast<amqp_connection_close_t*>(r.reply.decoded);
        code = m->reply_code;
        text = str(m->reply_text);
      }
      std::string internal = std::string(what) + ": broker answered " + std::to_string(code) + " " + text;
      if (code == 406 || code == 403 || code == 404) {
        Error e(code == 404 ? Errc::not_found : Errc::internal, "message broker refused the request");
        e.internal = internal;
        return std::unexpected(std::move(e));
      }
      return std::unexpected(unavailable(internal));
    }
    default: return std::unexpected(unavailable(std::string(what) + ": no reply"));
  }
}

Result<void> AmqpConnection::open_channel(amqp_channel_t ch) {
  rmq().amqp_channel_open(conn_, ch);
  return check_rpc("channel.open");
}

Result<void> AmqpConnection::confirm_select(amqp_channel_t ch) {
  rmq().amqp_confirm_select(conn_, ch);
  return check_rpc("confirm.select");
}

Result<void> AmqpConnection::declare_exchange(amqp_channel_t ch, std::string_view name, std::string_view type) {
  rmq().amqp_exchange_declare(conn_, ch, bytes(name), bytes(type), 0, 1, 0, 0, kEmptyTable);
  return check_rpc("exchange.declare " + std::string(name));
}

Result<void> AmqpConnection::declare_queue(amqp_channel_t ch, std::string_view name, amqp_table_t args) {
  rmq().amqp_queue_declare(conn_, ch, bytes(name), 0, 1, 0, 0, args);
  return check_rpc("queue.declare " + std::string(name));
}

Result<void> AmqpConnection::delete_queue(amqp_channel_t ch, std::string_view name) {
  rmq().amqp_queue_delete(conn_, ch, bytes(name), 0, 0);  // not only if unused or empty
  return check_rpc("queue.delete " + std::string(name));
}

Result<void> AmqpConnection::bind_queue(amqp_channel_t ch, std::string_view queue, std::string_view exchange,
                                        std::string_view key) {
  rmq().amqp_queue_bind(conn_, ch, bytes(queue), bytes(exchange), bytes(key), kEmptyTable);
  return check_rpc("queue.bind " + std::string(queue));
}

Result<void> AmqpConnection::qos(amqp_channel_t ch, std::uint16_t prefetch) {
  rmq().amqp_basic_qos(conn_, ch, 0, prefetch, 0);
  return check_rpc("basic.qos");
}

Result<void> AmqpConnection::consume(amqp_channel_t ch, std::string_view queue) {
  rmq().amqp_basic_consume(conn_, ch, bytes(queue), kEmptyBytes, 0, 0, 0, kEmptyTable);
  return check_rpc("basic.consume " + std::string(queue));
}

Result<void> AmqpConnection::publish(amqp_channel_t ch, std::string_view exchange, std::string_view routing_key,
                                     const amqp_basic_properties_t& props, std::string_view body) {
  int s = rmq().amqp_basic_publish(conn_, ch, bytes(exchange), bytes(routing_key), 0, 0, &props, bytes(body));
  if (s != AMQP_STATUS_OK) return std::unexpected(status_error(s, "basic.publish"));
  return {};
}

Result<void> AmqpConnection::ack(amqp_channel_t ch, std::uint64_t tag) {
  int s = rmq().amqp_basic_ack(conn_, ch, tag, 0);
  if (s != AMQP_STATUS_OK) return std::unexpected(status_error(s, "basic.ack"));
  return {};
}

Result<void> AmqpConnection::nack(amqp_channel_t ch, std::uint64_t tag, bool requeue) {
  int s = rmq().amqp_basic_nack(conn_, ch, tag, 0, requeue ? 1 : 0);
  if (s != AMQP_STATUS_OK) return std::unexpected(status_error(s, "basic.nack"));
  return {};
}

bool AmqpConnection::buffered() const noexcept {
  return rmq().amqp_frames_enqueued(conn_) || rmq().amqp_data_in_buffer(conn_);
}

Result<std::optional<amqp_frame_t>> AmqpConnection::next_frame(std::chrono::milliseconds timeout) {
  amqp_frame_t frame{};
  timeval tv = to_timeval(timeout);
  int s = rmq().amqp_simple_wait_frame_noblock(conn_, &frame, &tv);
  if (s == AMQP_STATUS_TIMEOUT) return std::optional<amqp_frame_t>();
  if (s != AMQP_STATUS_OK) return std::unexpected(status_error(s, "read frame"));
  return std::optional<amqp_frame_t>(frame);
}

Result<AmqpContent> AmqpConnection::read_content(amqp_channel_t ch) {
  amqp_message_t msg{};
  amqp_rpc_reply_t r = rmq().amqp_read_message(conn_, ch, &msg, 0);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    return std::unexpected(status_error(r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION ? r.library_error
                                                                                       : AMQP_STATUS_UNEXPECTED_STATE,
                                        "read message"));
  }
  AmqpContent c;
  c.body = str(msg.body);
  const auto& p = msg.properties;
  if (p._flags & AMQP_BASIC_MESSAGE_ID_FLAG) c.message_id = str(p.message_id);
  if (p._flags & AMQP_BASIC_TYPE_FLAG) c.type = str(p.type);
  if (p._flags & AMQP_BASIC_HEADERS_FLAG) {
    for (int i = 0; i < p.headers.num_entries; ++i) {
      const amqp_table_entry_t& e = p.headers.entries[i];
      std::string key = str(e.key);
      switch (e.value.kind) {
        case AMQP_FIELD_KIND_UTF8:
        case AMQP_FIELD_KIND_BYTES: c.string_headers[key] = str(e.value.value.bytes); break;
        case AMQP_FIELD_KIND_I8: c.int_headers[key] = e.value.value.i8; break;
        case AMQP_FIELD_KIND_U8: c.int_headers[key] = e.value.value.u8; break;
        case AMQP_FIELD_KIND_I16: c.int_headers[key] = e.value.value.i16; break;
        case AMQP_FIELD_KIND_U16: c.int_headers[key] = e.value.value.u16; break;
        case AMQP_FIELD_KIND_I32: c.int_headers[key] = e.value.value.i32; break;
        case AMQP_FIELD_KIND_U32: c.int_headers[key] = e.value.value.u32; break;
        case AMQP_FIELD_KIND_I64: c.int_headers[key] = e.value.value.i64; break;
        case AMQP_FIELD_KIND_U64: c.int_headers[key] = static_cast<std::int64_t>(e.value.value.u64); break;
        default: break;
      }
    }
  }
  rmq().amqp_destroy_message(&msg);
  return c;
}

Result<std::optional<std::pair<std::uint64_t, AmqpContent>>> AmqpConnection::get(amqp_channel_t ch,
                                                                                  std::string_view queue) {
  amqp_rpc_reply_t r = rmq().amqp_basic_get(conn_, ch, bytes(queue), 0);
  if (r.reply_type != AMQP_RESPONSE_NORMAL) {
    if (auto c = check_rpc("basic.get " + std::string(queue)); !c) return std::unexpected(c.error());
    return std::unexpected(unavailable("basic.get failed"));
  }
  if (r.reply.id == AMQP_BASIC_GET_EMPTY_METHOD) return std::optional<std::pair<std::uint64_t, AmqpContent>>();
  std::uint64_t tag = static_cast<amqp_basic_get_ok_t*>(r.reply.decoded)->delivery_tag;
  auto content = read_content(ch);
  if (!content) return std::unexpected(content.error());
  return std::optional<std::pair<std::uint64_t, AmqpContent>>(std::in_place, tag, std::move(*content));
}

}  // namespace mercado::messaging::detail
