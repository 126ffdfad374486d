#pragma once
// Readiness checks behind GET /ready: each named check answers ok or an error; /ready is
// 200 when all pass, else 503 with a problem naming the failing checks. Checks are added
// at start-up; run() is thread-safe.

#include <functional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include <mercado/core/error.hpp>

namespace mercado::http {

class Readiness {
 public:
  using Check = std::function<boost::asio::awaitable<Result<void>>()>;
  using SyncCheck = std::function<Result<void>()>;

  void add(std::string name, Check check);
  // For checks that only read in-memory state (must not block).
  void add_sync(std::string name, SyncCheck check);

  struct Outcome {
    std::string name;
    bool ok = true;
    std::string detail;
  };
  boost::asio::awaitable<std::vector<Outcome>> run() const;

 private:
  std::vector<std::pair<std::string, Check>> checks_;
};

}  // namespace mercado::http
