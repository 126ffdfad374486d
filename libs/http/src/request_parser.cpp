#include "request_parser.hpp"

#include <boost/beast/http/error.hpp>

#include <mercado/core/boost_assertion.hpp>
#include <mercado/http/headers.hpp>

namespace mercado::http::detail {

namespace bhttp = beast::http;

RequestParser::RequestParser(Request& req, std::size_t body_limit, std::uint32_t header_limit)
    : req_(req), body_limit_(body_limit) {
  this->body_limit(body_limit);
  this->header_limit(header_limit);
  this->eager(true);
}

std::size_t RequestParser::feed(std::string_view data, ParseFailure& failure, std::string& detail) {
  beast::error_code ec;
  std::size_t n = 0;
  try {
    n = put(boost::asio::const_buffer(data.data(), data.size()), ec);
  } catch (const core::BoostAssertion&) {
    // Beast's parser reached an internal assertion on malformed input: refuse the request.
    failure = ParseFailure::bad_request;
    detail = "malformed HTTP request";
    return 0;
  }
  if (!ec || ec == bhttp::error::need_more) {
    failure = ParseFailure::none;
    return n;
  }
  if (ec == bhttp::error::header_limit) {
    failure = ParseFailure::header_too_large;
    detail = "the request header is larger than the limit";
  } else if (ec == bhttp::error::body_limit) {
    failure = ParseFailure::body_too_large;
    detail = "the request body is larger than the limit of " + std::to_string(body_limit_) + " bytes";
  } else if (missing_host_) {
    failure = ParseFailure::missing_host;
    detail = "HTTP/1.1 requests need a Host header";
  } else {
    failure = ParseFailure::bad_request;
    detail = "malformed HTTP request: " + ec.message();
  }
  return n;
}

void RequestParser::append_piece(std::string_view piece) {
  req_.offsets_.push_back(static_cast<std::uint32_t>(req_.head_.size()));
  req_.head_.append(piece);
}

void RequestParser::on_request_impl(bhttp::verb, beast::string_view method, beast::string_view target,
                                    int version, beast::error_code& ec) {
  if (target.empty()) {
    ec = bhttp::error::bad_target;
    return;
  }
  req_.method_ = mercado::http::parse_method(std::string_view(method));
  req_.version_ = version;
  append_piece(std::string_view(method));
  append_piece(std::string_view(target));
}

void RequestParser::on_response_impl(int, beast::string_view, int, beast::error_code& ec) {
  ec = bhttp::error::bad_method;  // never called for a request parser
}

void RequestParser::on_field_impl(bhttp::field f, beast::string_view name, beast::string_view value,
                                  beast::error_code&) {
  // Trailer fields of a chunked body arrive after the head was indexed; the head must not
  // change any more (its views are live), and no handler relies on trailers: drop them.
  if (is_header_done()) return;
  switch (f) {
    case bhttp::field::host: has_host_ = true; break;
    case bhttp::field::content_length: has_content_length_ = true; break;
    case bhttp::field::transfer_encoding: has_transfer_encoding_ = true; break;
    case bhttp::field::expect:
      if (iequals(std::string_view(value), "100-continue")) expect_continue_ = true;
      break;
    default: break;
  }
  append_piece(std::string_view(name));
  append_piece(std::string_view(value));
}

void RequestParser::on_header_impl(beast::error_code& ec) {
  // RFC 9112 §6.3: both framing headers is a smuggling vector; refuse it.
  if (has_content_length_ && has_transfer_encoding_) {
    ec = bhttp::error::bad_transfer_encoding;
    return;
  }
  if (req_.version_ >= 11 && !has_host_) {
    missing_host_ = true;
    ec = bhttp::error::bad_field;
    return;
  }
  req_.offsets_.push_back(static_cast<std::uint32_t>(req_.head_.size()));
  req_.index_head();
  req_.keep_alive_ = keep_alive();
}

void RequestParser::on_body_init_impl(const boost::optional<std::uint64_t>& length,
                                      beast::error_code&) {
  if (length) {
    announced_length_ = *length;
    req_.body_.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(*length, body_limit_)));
  }
}

std::size_t RequestParser::on_body_impl(beast::string_view body, beast::error_code&) {
  req_.body_.append(body.data(), body.size());
  return body.size();
}

void RequestParser::on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) {}

std::size_t RequestParser::on_chunk_body_impl(std::uint64_t, beast::string_view body,
                                              beast::error_code&) {
  req_.body_.append(body.data(), body.size());
  return body.size();
}

void RequestParser::on_finish_impl(beast::error_code&) {}

}  // namespace mercado::http::detail
