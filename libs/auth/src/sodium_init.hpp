#pragma once
// libsodium must be initialised once before use; every user in libs/auth calls this first.

#include <sodium.h>

#include <stdexcept>

namespace mercado::auth::detail {

inline void ensure_sodium() {
  static const bool ok = sodium_init() >= 0;  // thread-safe static initialisation
  if (!ok) throw std::runtime_error("libsodium failed to initialise");
}

}  // namespace mercado::auth::detail
