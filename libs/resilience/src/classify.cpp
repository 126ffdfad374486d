#include <mercado/resilience/classify.hpp>

#include <mercado/resilience/retry.hpp>

namespace mercado::resilience {

namespace {
bool transient_status(int status) noexcept {
  return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}
}  // namespace

Outcome classify_outcome(const http::ClientResult& result) noexcept {
  if (result) return result->status >= 500 ? Outcome::failure : Outcome::success;
  switch (result.error().code) {
    case http::ClientErrc::refused:
    case http::ClientErrc::resolve:
    case http::ClientErrc::timeout:
    case http::ClientErrc::closed:
    case http::ClientErrc::protocol:
    case http::ClientErrc::too_large:
      return Outcome::failure;
    case http::ClientErrc::http_status:
      return result.error().status >= 500 ? Outcome::failure : Outcome::success;
    case http::ClientErrc::invalid_url:
    case http::ClientErrc::cancelled:
      return Outcome::ignored;
  }
  return Outcome::ignored;
}

bool is_transient(const http::ClientResult& result) noexcept {
  if (result) return transient_status(result->status);
  switch (result.error().code) {
    case http::ClientErrc::refused:
    case http::ClientErrc::resolve:
    case http::ClientErrc::timeout:
    case http::ClientErrc::closed:
      return true;
    case http::ClientErrc::http_status:
      return transient_status(result.error().status);
    case http::ClientErrc::protocol:
    case http::ClientErrc::too_large:
    case http::ClientErrc::invalid_url:
    case http::ClientErrc::cancelled:
      return false;
  }
  return false;
}

bool maybe_delivered(const http::ClientResult& result) noexcept {
  return result.has_value() || result.error().maybe_delivered;
}

std::optional<core::Duration> retry_after_of(const http::ClientResult& result,
                                             std::chrono::system_clock::time_point now) noexcept {
  if (!result) return std::nullopt;
  auto value = result->headers.get("Retry-After");
  if (!value) return std::nullopt;
  return parse_retry_after(*value, now);
}

}  // namespace mercado::resilience
