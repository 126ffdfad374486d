#include <mercado/resilience/outcome.hpp>

namespace mercado::resilience {

std::string_view to_string(Outcome outcome) noexcept {
  switch (outcome) {
    case Outcome::success: return "success";
    case Outcome::failure: return "failure";
    case Outcome::ignored: return "ignored";
  }
  return "ignored";
}

}  // namespace mercado::resilience
