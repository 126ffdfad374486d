#include <mercado/resilience/call_result.hpp>

#include <fmt/format.h>

namespace mercado::resilience {

std::string_view to_string(CallErrc code) noexcept {
  switch (code) {
    case CallErrc::not_permitted: return "not_permitted";
    case CallErrc::bulkhead_full: return "bulkhead_full";
    case CallErrc::rate_limited: return "rate_limited";
    case CallErrc::deadline_exceeded: return "deadline_exceeded";
    case CallErrc::downstream: return "downstream";
  }
  return "downstream";
}

CallResult expect_2xx(CallResult result) {
  if (!result || result->ok()) return result;
  CallError e;
  e.code = CallErrc::downstream;
  e.message = "HTTP " + std::to_string(result->status);
  e.downstream = http::ClientError{http::ClientErrc::http_status, e.message, result->status, std::move(result->body), true};
  e.attempts = 1;
  return std::unexpected(std::move(e));
}

Error to_error(const CallError& error, std::string_view downstream_name) {
  Error e;
  switch (error.code) {
    case CallErrc::not_permitted:
    case CallErrc::bulkhead_full:
    case CallErrc::rate_limited:
      e = Error(Errc::unavailable, fmt::format("{} is unavailable", downstream_name));
      break;
    case CallErrc::deadline_exceeded:
      e = Error(Errc::timeout, fmt::format("{} did not answer in time", downstream_name));
      break;
    case CallErrc::downstream: {
      const auto& d = error.downstream;
      if (d.code == http::ClientErrc::timeout) {
        e = Error(Errc::timeout, fmt::format("{} did not answer in time", downstream_name));
      } else if (d.code == http::ClientErrc::http_status && d.status < 500) {
        e = Error(Errc::internal, "internal error");
      } else {
        e = Error(Errc::unavailable, fmt::format("{} is unavailable", downstream_name));
      }
      break;
    }
  }
  e.internal = fmt::format("{}: {} ({}) after {} attempt(s)", downstream_name, to_string(error.code), error.message,
                           error.attempts);
  return e;
}

}  // namespace mercado::resilience
