#include "librabbitmq.hpp"

#include <mercado/core/shared_library.hpp>

namespace mercado::messaging::detail {

namespace {

Result<void> bind_all(const core::SharedLibrary& lib, LibRabbitmq& api) {
  Result<void> r;
  if (r = lib.bind("amqp_basic_ack", api.amqp_basic_ack); !r) return r;
  if (r = lib.bind("amqp_basic_consume", api.amqp_basic_consume); !r) return r;
  if (r = lib.bind("amqp_basic_get", api.amqp_basic_get); !r) return r;
  if (r = lib.bind("amqp_basic_nack", api.amqp_basic_nack); !r) return r;
  if (r = lib.bind("amqp_basic_publish", api.amqp_basic_publish); !r) return r;
  if (r = lib.bind("amqp_basic_qos", api.amqp_basic_qos); !r) return r;
  if (r = lib.bind("amqp_channel_open", api.amqp_channel_open); !r) return r;
  if (r = lib.bind("amqp_confirm_select", api.amqp_confirm_select); !r) return r;
  if (r = lib.bind("amqp_connection_close", api.amqp_connection_close); !r) return r;
  if (r = lib.bind("amqp_cstring_bytes", api.amqp_cstring_bytes); !r) return r;
  if (r = lib.bind("amqp_data_in_buffer", api.amqp_data_in_buffer); !r) return r;
  if (r = lib.bind("amqp_default_connection_info", api.amqp_default_connection_info); !r) return r;
  if (r = lib.bind("amqp_destroy_connection", api.amqp_destroy_connection); !r) return r;
  if (r = lib.bind("amqp_destroy_message", api.amqp_destroy_message); !r) return r;
  if (r = lib.bind("amqp_error_string2", api.amqp_error_string2); !r) return r;
  if (r = lib.bind("amqp_exchange_declare", api.amqp_exchange_declare); !r) return r;
  if (r = lib.bind("amqp_frames_enqueued", api.amqp_frames_enqueued); !r) return r;
  if (r = lib.bind("amqp_get_rpc_reply", api.amqp_get_rpc_reply); !r) return r;
  if (r = lib.bind("amqp_get_sockfd", api.amqp_get_sockfd); !r) return r;
  if (r = lib.bind("amqp_login", api.amqp_login); !r) return r;
  if (r = lib.bind("amqp_maybe_release_buffers", api.amqp_maybe_release_buffers); !r) return r;
  if (r = lib.bind("amqp_new_connection", api.amqp_new_connection); !r) return r;
  if (r = lib.bind("amqp_parse_url", api.amqp_parse_url); !r) return r;
  if (r = lib.bind("amqp_queue_bind", api.amqp_queue_bind); !r) return r;
  if (r = lib.bind("amqp_queue_declare", api.amqp_queue_declare); !r) return r;
  if (r = lib.bind("amqp_queue_delete", api.amqp_queue_delete); !r) return r;
  if (r = lib.bind("amqp_read_message", api.amqp_read_message); !r) return r;
  if (r = lib.bind("amqp_set_handshake_timeout", api.amqp_set_handshake_timeout); !r) return r;
  if (r = lib.bind("amqp_set_rpc_timeout", api.amqp_set_rpc_timeout); !r) return r;
  if (r = lib.bind("amqp_simple_wait_frame_noblock", api.amqp_simple_wait_frame_noblock); !r) return r;
  if (r = lib.bind("amqp_socket_open_noblock", api.amqp_socket_open_noblock); !r) return r;
  if (r = lib.bind("amqp_tcp_socket_new", api.amqp_tcp_socket_new); !r) return r;
  return r;
}

}  // namespace

Result<const LibRabbitmq*> load_librabbitmq() { return core::SharedLibrary::load_once<LibRabbitmq>(MERCADO_RABBITMQ_SONAME, bind_all); }

const LibRabbitmq& rmq() noexcept { return **core::SharedLibrary::load_once<LibRabbitmq>(MERCADO_RABBITMQ_SONAME, bind_all); }

}  // namespace mercado::messaging::detail
