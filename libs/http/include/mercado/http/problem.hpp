#pragma once
// RFC 9457 problem details: every error the HTTP edge answers is
//   Content-Type: application/problem+json
//   {"type":"urn:mercado:problem:<slug>","title":"Not Found","status":404,
//    "detail":"no user u-1","instance":"/users/u-1","trace_id":"…","errors":[{field,message}]}
// The `type` is stable and documented in docs/error-handling.md.

#include <string>
#include <string_view>
#include <vector>

#include <mercado/core/error.hpp>
#include <mercado/http/request.hpp>
#include <mercado/http/response.hpp>

namespace mercado::http {

int status_for(Errc code) noexcept;
Errc errc_for_status(int status) noexcept;

// "urn:mercado:problem:" + slug.
std::string problem_type(std::string_view slug);

struct Problem {
  int status = 500;
  std::string slug;    // type suffix; empty: derived from the status
  std::string detail;
  std::string instance;
  std::string trace_id;
  std::vector<FieldError> errors;
};

Response problem(const Problem& p);
Response problem(int status, std::string_view detail);
// Maps the error's code to a status; uses e.type as the slug when set. e.internal is
// not included (log it instead).
Response problem(const Error& e);
// As above, with instance = request path and the request's trace id.
Response problem(const Request& req, const Error& e);
Response problem(const Request& req, int status, std::string_view detail);

}  // namespace mercado::http
