#include <mercado/core/error.hpp>

namespace mercado {

std::string_view to_string(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_argument: return "invalid-argument";
    case Errc::unauthenticated: return "unauthenticated";
    case Errc::permission_denied: return "permission-denied";
    case Errc::not_found: return "not-found";
    case Errc::conflict: return "conflict";
    case Errc::precondition_failed: return "precondition-failed";
    case Errc::payload_too_large: return "payload-too-large";
    case Errc::unsupported_media_type: return "unsupported-media-type";
    case Errc::unprocessable: return "unprocessable";
    case Errc::rate_limited: return "rate-limited";
    case Errc::internal: return "internal";
    case Errc::unavailable: return "unavailable";
    case Errc::timeout: return "timeout";
  }
  return "internal";
}

}  // namespace mercado
