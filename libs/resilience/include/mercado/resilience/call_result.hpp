#pragma once
// The result of an outbound call made through a Pipeline or a ServiceClient.
//
// A response of any status is a value: the caller decides what a 404 means, and
// expect_2xx() turns non-2xx answers into errors. An error says whether a policy refused
// the call -- without touching the network -- or the downstream failed.

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

#include <mercado/core/error.hpp>
#include <mercado/http/client.hpp>

namespace mercado::resilience {

enum class CallErrc : std::uint8_t {
  not_permitted,      // the circuit breaker rejected the call (OPEN, FORCED_OPEN, HALF_OPEN full)
  bulkhead_full,      // too many calls in flight to this downstream
  rate_limited,       // this caller's outbound rate limit for the downstream
  deadline_exceeded,  // the call's time budget was spent before an attempt could start
  downstream,         // the last attempt failed: see CallError::downstream
};
std::string_view to_string(CallErrc code) noexcept;

struct CallError {
  CallErrc code = CallErrc::downstream;
  std::string message;
  http::ClientError downstream{};  // code == downstream: the last attempt's error
  std::uint32_t attempts = 0;      // attempts handed to the transport before the call ended
};

using CallResult = std::expected<http::ClientResponse, CallError>;

// Turns a non-2xx response into a downstream error with an http_status ClientError that
// keeps the status and body.
CallResult expect_2xx(CallResult result);

// The error to answer the inbound caller with (docs/error-handling.md):
// not_permitted, bulkhead_full, rate_limited -> unavailable (503); deadline_exceeded and a
// downstream timeout -> timeout (504); other downstream failures and 5xx -> unavailable;
// a 4xx from the downstream -> internal (the caller should map those it expects itself).
// `internal` names the downstream and the cause; `message` is safe for clients.
Error to_error(const CallError& error, std::string_view downstream_name);

}  // namespace mercado::resilience
