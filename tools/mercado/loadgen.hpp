#pragma once
// `mercado loadgen`: a closed loop of N concurrent clients placing orders against a running
// shop. Each client places an order, then waits until the order's saga has ended -- learned
// from the OrderConfirmed / OrderCancelled events on the shop's event bus -- and places the
// next. Reports confirmed orders/s, end-to-end latency percentiles (POST to the confirmation
// event) and each service's resident memory (from its /metrics).

#include <chrono>

#include "launcher.hpp"

namespace mercado::cli {

struct LoadOptions {
  unsigned clients = 64;
  std::chrono::seconds duration{20};
  std::chrono::seconds warmup{3};
  unsigned io_threads = 2;
};

int run_loadgen(const LaunchOptions& shop, const LoadOptions& load);

}  // namespace mercado::cli
