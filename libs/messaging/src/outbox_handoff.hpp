#pragma once
// The rows this process's transactions added to the outbox, handed to the relay by their
// commit hooks, so that the relay need not read back what was just written (SQLite only,
// see relay.cpp's take_handed for when it trusts them). Filled on the committing threads,
// emptied by the relay's coroutine.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include <mercado/messaging/message.hpp>

namespace mercado::messaging::detail {

struct HandedRow {
  std::int64_t seq = 0;
  std::int64_t created_ms = 0;
  Message message;
};

class OutboxHandoff {
 public:
  // A relay on SQLite takes the rows; until then Outbox::add hands none over. At most
  // `capacity` rows wait: when no relay takes them (another process holds the lease) the
  // rows are dropped and the relay reads the table instead.
  void enable(std::size_t capacity) {
    std::lock_guard lock(mutex_);
    capacity_ = std::max<std::size_t>(capacity, 1);
    enabled_.store(true, std::memory_order_release);
  }
  bool enabled() const noexcept { return enabled_.load(std::memory_order_acquire); }

  // In a commit hook: the row has committed.
  void push(HandedRow row) {
    std::lock_guard lock(mutex_);
    if (rows_.size() >= capacity_) {
      rows_.clear();
      lost_ = true;
    }
    rows_.push_back(std::move(row));
  }

  // In a commit hook: a row committed without being handed over (added before enable()).
  void lose() {
    std::lock_guard lock(mutex_);
    lost_ = true;
  }

  // Every row waiting, in no particular order (hooks run after their commits, not
  // necessarily in commit order). `lost`: rows were dropped since the last take.
  std::vector<HandedRow> take(bool& lost) {
    std::vector<HandedRow> out;
    std::lock_guard lock(mutex_);
    out.swap(rows_);
    lost = lost_;
    lost_ = false;
    return out;
  }

  // Rows taken and not used (yet): they wait again, ahead of those pushed meanwhile.
  void give_back(std::vector<HandedRow> rows) {
    if (rows.empty()) return;
    std::lock_guard lock(mutex_);
    if (rows.size() + rows_.size() > capacity_) {
      rows_.clear();
      lost_ = true;
      return;
    }
    rows.insert(rows.end(), std::make_move_iterator(rows_.begin()), std::make_move_iterator(rows_.end()));
    rows_.swap(rows);
  }

 private:
  std::mutex mutex_;
  std::vector<HandedRow> rows_;
  std::size_t capacity_ = 1;
  bool lost_ = false;
  std::atomic<bool> enabled_{false};
};

}  // namespace mercado::messaging::detail
