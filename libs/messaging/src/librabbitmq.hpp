#pragma once
// rabbitmq-c, loaded (dlopen) when the first RabbitMQ connection is opened, for the same
// reason as libpq (libs/storage/src/libpq.hpp): a service on the embedded SQLite bus never
// maps it nor the OpenSSL it links. MERCADO_RABBITMQ_SONAME comes from the CMake package.

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include <mercado/core/error.hpp>

namespace mercado::messaging::detail {

// The rabbitmq-c functions the AMQP transport calls, by their own names.
struct LibRabbitmq {
  decltype(&::amqp_basic_ack) amqp_basic_ack = nullptr;
  decltype(&::amqp_basic_consume) amqp_basic_consume = nullptr;
  decltype(&::amqp_basic_get) amqp_basic_get = nullptr;
  decltype(&::amqp_basic_nack) amqp_basic_nack = nullptr;
  decltype(&::amqp_basic_publish) amqp_basic_publish = nullptr;
  decltype(&::amqp_basic_qos) amqp_basic_qos = nullptr;
  decltype(&::amqp_channel_open) amqp_channel_open = nullptr;
  decltype(&::amqp_confirm_select) amqp_confirm_select = nullptr;
  decltype(&::amqp_connection_close) amqp_connection_close = nullptr;
  decltype(&::amqp_cstring_bytes) amqp_cstring_bytes = nullptr;
  decltype(&::amqp_data_in_buffer) amqp_data_in_buffer = nullptr;
  decltype(&::amqp_default_connection_info) amqp_default_connection_info = nullptr;
  decltype(&::amqp_destroy_connection) amqp_destroy_connection = nullptr;
  decltype(&::amqp_destroy_message) amqp_destroy_message = nullptr;
  decltype(&::amqp_error_string2) amqp_error_string2 = nullptr;
  decltype(&::amqp_exchange_declare) amqp_exchange_declare = nullptr;
  decltype(&::amqp_frames_enqueued) amqp_frames_enqueued = nullptr;
  decltype(&::amqp_get_rpc_reply) amqp_get_rpc_reply = nullptr;
  decltype(&::amqp_get_sockfd) amqp_get_sockfd = nullptr;
  decltype(&::amqp_login) amqp_login = nullptr;
  decltype(&::amqp_maybe_release_buffers) amqp_maybe_release_buffers = nullptr;
  decltype(&::amqp_new_connection) amqp_new_connection = nullptr;
  decltype(&::amqp_parse_url) amqp_parse_url = nullptr;
  decltype(&::amqp_queue_bind) amqp_queue_bind = nullptr;
  decltype(&::amqp_queue_declare) amqp_queue_declare = nullptr;
  decltype(&::amqp_queue_delete) amqp_queue_delete = nullptr;
  decltype(&::amqp_read_message) amqp_read_message = nullptr;
  decltype(&::amqp_set_handshake_timeout) amqp_set_handshake_timeout = nullptr;
  decltype(&::amqp_set_rpc_timeout) amqp_set_rpc_timeout = nullptr;
  decltype(&::amqp_simple_wait_frame_noblock) amqp_simple_wait_frame_noblock = nullptr;
  decltype(&::amqp_socket_open_noblock) amqp_socket_open_noblock = nullptr;
  decltype(&::amqp_tcp_socket_new) amqp_tcp_socket_new = nullptr;
};

// Loads rabbitmq-c once (thread-safe); Errc::unavailable, naming the library, when it cannot.
Result<const LibRabbitmq*> load_librabbitmq();

// The loaded functions; only after load_librabbitmq() succeeded.
const LibRabbitmq& rmq() noexcept;

// rabbitmq-c's amqp_empty_table and amqp_empty_bytes, which are data, not functions.
inline constexpr amqp_table_t kEmptyTable{0, nullptr};
inline constexpr amqp_bytes_t kEmptyBytes{0, nullptr};

}  // namespace mercado::messaging::detail
