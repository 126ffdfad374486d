#pragma once
// How a policy counts the result of one call. The classification of HTTP results into
// outcomes lives in classify.hpp; the policies themselves only see Outcome values.

#include <cstdint>
#include <string_view>

namespace mercado::resilience {

enum class Outcome : std::uint8_t {
  success,  // the downstream did its job (including 4xx answers: the caller's mistake)
  failure,  // the downstream failed: cannot connect, timed out, 5xx, broken response
  ignored,  // says nothing about the downstream's health (cancelled by the caller, bad URL)
};

// "success", "failure", "ignored": the `outcome` label of circuit_breaker_calls_total.
std::string_view to_string(Outcome outcome) noexcept;

}  // namespace mercado::resilience
