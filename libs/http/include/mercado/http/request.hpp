#pragma once
// A server-side HTTP request. It owns its bytes (the request head and body); views it
// returns stay valid until the handler's response has been written. Not thread-safe:
// it belongs to the coroutine serving it.

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <mercado/core/clock.hpp>
#include <mercado/core/error.hpp>
#include <mercado/http/headers.hpp>
#include <mercado/http/method.hpp>
#include <mercado/observability/trace.hpp>

namespace mercado::http {

namespace detail {
class RequestParser;
class ServerCore;
class Worker;
}  // namespace detail

struct HeaderView {
  std::string_view name;
  std::string_view value;
};

// Path parameters captured by the router: names from the route template, raw values.
struct PathParams {
  static constexpr std::size_t kMax = 8;
  std::array<std::pair<std::string_view, std::string_view>, kMax> items{};
  std::size_t size = 0;
  std::optional<std::string_view> find(std::string_view name) const noexcept;
};

class Request {
 public:
  Request() = default;
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  // Moving keeps every view valid (they are re-pointed into the new object's storage).
  Request(Request&& other) noexcept;
  Request& operator=(Request&& other) noexcept;

  // A request built in memory, for handler unit tests and in-process calls.
  static Request make(Method method, std::string_view target, const Headers& headers = {},
                      std::string body = {});

  Method method() const noexcept { return method_; }
  std::string_view method_name() const noexcept { return method_name_; }
  std::string_view target() const noexcept { return target_; }
  // The path as sent (percent-encoded), without the query.
  std::string_view path() const noexcept { return path_; }
  std::string_view query_string() const noexcept { return query_; }
  // The first value of a query parameter, percent-decoded ('+' is a space). nullopt if absent.
  std::optional<std::string> query(std::string_view key) const;
  // Every query parameter, decoded, in order.
  std::vector<std::pair<std::string, std::string>> query_params() const;
  bool query_valid() const noexcept;  // false when the query string is not valid percent-encoding

  std::optional<std::string_view> header(std::string_view name) const noexcept;
  std::span<const HeaderView> headers() const noexcept { return headers_; }
  std::string_view body() const noexcept { return body_; }
  int version() const noexcept { return version_; }
  bool keep_alive() const noexcept { return keep_alive_; }

  // The matched route template ("/users/{id}"), empty when no route matched.
  std::string_view route() const noexcept { return route_; }
  // A path parameter, percent-decoded. nullopt when the route has no such parameter or its
  // encoding is invalid.
  std::optional<std::string> param(std::string_view name) const;
  // A path parameter as sent (still percent-encoded), e.g. to forward it in another URL.
  std::optional<std::string_view> raw_param(std::string_view name) const noexcept { return params_.find(name); }
  // A path parameter converted to an integer: invalid_argument error when it is not one.
  Result<std::int64_t> param_int(std::string_view name) const;

  // The caller's deadline, when it sent one (header X-Request-Timeout-Ms, read on arrival).
  // Outbound calls made for this request should not outlive it.
  std::optional<core::SteadyTime> deadline() const noexcept { return deadline_; }
  void set_deadline(std::optional<core::SteadyTime> d) noexcept { deadline_ = d; }

  // This request's server span; its context is what outbound calls should carry.
  obs::Span& span() noexcept { return span_; }
  const obs::TraceContext& trace() const noexcept { return span_.context(); }
  std::string_view remote_address() const noexcept { return remote_address_; }

  // Request-scoped values set by middleware (e.g. "subject" after authentication).
  void set_local(std::string_view key, std::string value);
  std::optional<std::string_view> local(std::string_view key) const noexcept;

  // Server internals and tests.
  void set_route(std::string_view route_template, const PathParams& params) noexcept {
    route_ = route_template;
    params_ = params;
  }
  void set_span(obs::Span span) { span_ = std::move(span); }
  void set_remote_address(std::string addr) { remote_address_ = std::move(addr); }

 private:
  friend class detail::RequestParser;
  friend class detail::ServerCore;
  friend class detail::Worker;

  // Empty again for the next request on the same connection (which keeps its remote address).
  void reset(bool keep_remote_address = false) noexcept;
  void index_head();  // builds the views from head_ and the recorded offsets
  void rebase(const char* old_base, std::size_t old_size) noexcept;

  // head_ holds the method, target and every field name and value back to back;
  // offsets_ records where each piece starts. Views are rebuilt after parsing completes.
  std::string head_;
  std::vector<std::uint32_t> offsets_;
  std::string body_;

  Method method_ = Method::get;
  std::string_view method_name_;
  std::string_view target_;
  std::string_view path_;
  std::string_view query_;
  std::vector<HeaderView> headers_;
  int version_ = 11;
  bool keep_alive_ = true;

  std::string_view route_;
  PathParams params_;
  std::optional<core::SteadyTime> deadline_;
  obs::Span span_;
  std::string remote_address_;
  std::vector<std::pair<std::string, std::string>> locals_;
};

}  // namespace mercado::http
