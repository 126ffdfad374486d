#pragma once
// Feeds raw bytes through Beast's HTTP/1.1 parser into a Request (private to libs/http;
// also used by the fuzz target). The request head is copied into the Request as it is
// parsed, so the input buffer may be reused or grown freely afterwards.

#include <boost/beast/http/basic_parser.hpp>

#include <cstdint>
#include <string_view>

#include <mercado/http/request.hpp>

namespace mercado::http::detail {

namespace beast = boost::beast;

// Why a request could not be read; each maps to a status and a problem body.
enum class ParseFailure { none, bad_request, header_too_large, body_too_large, missing_host };

class RequestParser final : public beast::http::basic_parser<true> {
 public:
  RequestParser(Request& req, std::size_t body_limit, std::uint32_t header_limit);

  // Consumes a prefix of `data`; returns how many bytes. need_more is not an error here:
  // it returns 0 and leaves `failure` at none. On failure the connection must be closed.
  std::size_t feed(std::string_view data, ParseFailure& failure, std::string& detail);
  bool expects_continue() const noexcept { return expect_continue_; }
  std::uint64_t announced_length() const noexcept { return announced_length_; }

 private:
  // beast::string_view is boost::core::string_view; it converts to std::string_view.
  void on_request_impl(beast::http::verb, beast::string_view method, beast::string_view target,
                       int version, beast::error_code& ec) override;
  void on_response_impl(int, beast::string_view, int, beast::error_code& ec) override;
  void on_field_impl(beast::http::field f, beast::string_view name, beast::string_view value,
                     beast::error_code& ec) override;
  void on_header_impl(beast::error_code& ec) override;
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, beast::error_code& ec) override;
  std::size_t on_body_impl(beast::string_view body, beast::error_code& ec) override;
  void on_chunk_header_impl(std::uint64_t size, beast::string_view ext, beast::error_code& ec) override;
  std::size_t on_chunk_body_impl(std::uint64_t remain, beast::string_view body,
                                 beast::error_code& ec) override;
  void on_finish_impl(beast::error_code& ec) override;

  void append_piece(std::string_view piece);

  Request& req_;
  std::size_t body_limit_;
  bool expect_continue_ = false;
  bool has_host_ = false;
  bool has_content_length_ = false;
  bool has_transfer_encoding_ = false;
  bool missing_host_ = false;
  std::uint64_t announced_length_ = 0;
};

}  // namespace mercado::http::detail
