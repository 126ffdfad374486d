#pragma once
// How a SQLite connection waits for a lock another connection holds (another process's
// writer on a shared file such as the SQLite bus's, or a checkpoint finishing).
//
// SQLite's own busy_timeout handler sleeps 1, 2, 5, 10, 15, 20, 25... ms between tries, far
// longer than the commit it waits for (≈ 1-2 ms here): a writer that found the lock taken
// twice lost 3 ms. This one retries after 50 µs, doubling up to 1 ms, until the timeout.

#include <algorithm>
#include <chrono>
#include <thread>

#include <sqlite3.h>

namespace mercado::storage::detail {

class SqliteBusyWait {
 public:
  explicit SqliteBusyWait(std::chrono::milliseconds timeout) : timeout_(timeout) {}

  // Installs the handler on `db`; this object must outlive the connection.
  void attach(sqlite3* db) noexcept { sqlite3_busy_handler(db, &SqliteBusyWait::on_busy, this); }

 private:
  static int on_busy(void* self, int count) noexcept {
    auto* w = static_cast<SqliteBusyWait*>(self);
    const auto now = std::chrono::steady_clock::now();
    if (count == 0) {
      w->since_ = now;
    } else if (now - w->since_ >= w->timeout_) {
      return 0;  // give up: the statement returns SQLITE_BUSY
    }
    std::this_thread::sleep_for(std::chrono::microseconds(std::min(1000, 50 << std::min(count, 5))));
    return 1;
  }

  std::chrono::milliseconds timeout_;
  std::chrono::steady_clock::time_point since_{};
};

}  // namespace mercado::storage::detail
