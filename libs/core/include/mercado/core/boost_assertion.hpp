#pragma once
#include <stdexcept>

namespace mercado::core {

// Thrown when a Boost library's internal assertion fails (see src/boost_assert.cpp).
class BoostAssertion : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace mercado::core
