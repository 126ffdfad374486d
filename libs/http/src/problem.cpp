#include <mercado/http/problem.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <mercado/http/status.hpp>

namespace mercado::http {

namespace json = boost::json;

int status_for(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_argument: return 400;
    case Errc::unauthenticated: return 401;
    case Errc::permission_denied: return 403;
    case Errc::not_found: return 404;
    case Errc::conflict: return 409;
    case Errc::precondition_failed: return 412;
    case Errc::payload_too_large: return 413;
    case Errc::unsupported_media_type: return 415;
    case Errc::unprocessable: return 422;
    case Errc::rate_limited: return 429;
    case Errc::internal: return 500;
    case Errc::unavailable: return 503;
    case Errc::timeout: return 504;
  }
  return 500;
}

Errc errc_for_status(int status) noexcept {
  switch (status) {
    case 400: return Errc::invalid_argument;
    case 401: return Errc::unauthenticated;
    case 403: return Errc::permission_denied;
    case 404: return Errc::not_found;
    case 409: return Errc::conflict;
    case 412: return Errc::precondition_failed;
    case 413: return Errc::payload_too_large;
    case 415: return Errc::unsupported_media_type;
    case 422: return Errc::unprocessable;
    case 429: return Errc::rate_limited;
    case 503: return Errc::unavailable;
    case 504: return Errc::timeout;
    default: return status >= 500 ? Errc::internal : Errc::invalid_argument;
  }
}

std::string problem_type(std::string_view slug) {
  std::string t = "urn:mercado:problem:";
  t += slug;
  return t;
}

namespace {

std::string slug_for_status(int status) {
  switch (status) {
    case 400: return "bad-request";
    case 401: return "unauthenticated";
    case 403: return "forbidden";
    case 404: return "not-found";
    case 405: return "method-not-allowed";
    case 408: return "request-timeout";
    case 409: return "conflict";
    case 412: return "precondition-failed";
    case 413: return "payload-too-large";
    case 415: return "unsupported-media-type";
    case 422: return "unprocessable";
    case 429: return "rate-limited";
    case 431: return "header-fields-too-large";
    case 500: return "internal";
    case 501: return "not-implemented";
    case 502: return "bad-gateway";
    case 503: return "unavailable";
    case 504: return "timeout";
    default: return "http-" + std::to_string(status);
  }
}

}  // namespace

Response problem(const Problem& p) {
  json::object o;
  o["type"] = problem_type(p.slug.empty() ? slug_for_status(p.status) : p.slug);
  o["title"] = reason_phrase(p.status);
  o["status"] = p.status;
  if (!p.detail.empty()) o["detail"] = p.detail;
  if (!p.instance.empty()) o["instance"] = p.instance;
  if (!p.trace_id.empty()) o["trace_id"] = p.trace_id;
  if (!p.errors.empty()) {
    json::array errors;
    for (const auto& f : p.errors) {
      errors.push_back(json::object{{"field", f.field}, {"message", f.message}});
    }
    o["errors"] = std::move(errors);
  }
  return Response(p.status, kProblemJson, json::serialize(o));
}

Response problem(int status, std::string_view detail) {
  return problem(Problem{.status = status, .detail = std::string(detail)});
}

namespace {

Problem from_error(const Error& e) {
  Problem p;
  p.status = status_for(e.code);
  p.slug = e.type.empty() ? (e.code == Errc::invalid_argument && !e.fields.empty()
                                 ? std::string("validation")
                                 : slug_for_status(p.status))
                          : e.type;
  p.detail = e.message;
  p.errors = e.fields;
  return p;
}

}  // namespace

Response problem(const Error& e) { return problem(from_error(e)); }

Response problem(const Request& req, const Error& e) {
  Problem p = from_error(e);
  p.instance = req.path();
  if (req.trace().valid()) p.trace_id = req.trace().trace_id_hex();
  return problem(p);
}

Response problem(const Request& req, int status, std::string_view detail) {
  Problem p{.status = status, .detail = std::string(detail), .instance = std::string(req.path())};
  if (req.trace().valid()) p.trace_id = req.trace().trace_id_hex();
  return problem(p);
}

}  // namespace mercado::http
