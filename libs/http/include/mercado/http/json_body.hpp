#pragma once
// JSON in and out of handlers:
//   auto in = http::read_json<CreateUser>(req);
//   if (!in) co_return http::problem(req, in.error());   // 400 listing every bad field
//   co_return http::json_response(201, user);            // any encodable value

#include <string_view>

#include <mercado/http/problem.hpp>
#include <mercado/http/request.hpp>
#include <mercado/http/response.hpp>
#include <mercado/json/codec.hpp>

namespace mercado::http {

// unsupported media type when Content-Type is present and not JSON; then json::decode<T>.
Result<void> check_json_content_type(const Request& req);

template <class T>
Result<T> read_json(const Request& req) {
  if (auto ok = check_json_content_type(req); !ok) return fail(std::move(ok.error()));
  return json::decode<T>(req.body());
}

template <class T>
Response json_response(int status, const T& value) {
  return Response::json(status, json::to_string(value));
}

inline Response json_response(int status, const boost::json::value& value) {
  return Response::json(status, boost::json::serialize(value));
}

}  // namespace mercado::http
