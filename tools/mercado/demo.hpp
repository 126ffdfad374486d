#pragma once
// `mercado demo`: runs the happy path and each failure path of the order saga against a
// running system (mercado up) and prints, step by step, what happened -- from the answers
// of the services themselves (orders, the saga's history, stock, balances).

#include "launcher.hpp"

namespace mercado::cli {

int run_demo(const LaunchOptions& options);

}  // namespace mercado::cli
