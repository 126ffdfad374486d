#pragma once
#include <string>

namespace mercado::core {

// A random (version 4) UUID in canonical lowercase form. Thread-safe.
std::string new_uuid();

}  // namespace mercado::core
