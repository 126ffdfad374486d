#pragma once
// The SQLite backend of storage::Database (see database.hpp for its contract).

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <mercado/storage/database.hpp>
#include <mercado/storage/database_url.hpp>

struct sqlite3;

namespace mercado::storage::detail {

class SqliteConnection;

class SqliteDatabase final : public Database {
 public:
  // Opens one connection (creating the file) to check that the database is usable.
  static Result<std::shared_ptr<SqliteDatabase>> open(const DatabaseUrl& url, core::BlockingPool& pool,
                                                      const DatabaseOptions& options);
  ~SqliteDatabase() override;

  Dialect dialect() const noexcept override { return Dialect::sqlite; }
  std::string describe() const override { return "sqlite://" + path_; }

  SqliteDatabase(core::BlockingPool& pool, std::string path, std::string synchronous,
                 const DatabaseOptions& options);

 protected:
  Result<void> run(TxMode mode, const std::function<Result<void>(Tx&)>& body) override;
  Result<void> sync_log_blocking() override;

 private:
  Result<std::unique_ptr<SqliteConnection>> acquire();
  std::size_t writer_cache_kib() const noexcept {
    return options_.writer_cache_kib != 0 ? options_.writer_cache_kib : options_.cache_kib;
  }
  void release(std::unique_ptr<SqliteConnection> c);

  std::string path_;
  std::string synchronous_;
  std::string resync_pragma_;  // puts synchronous_ back after an unsynced write
  bool full_sync_;             // synchronous_ is FULL: a write's commit syncs the log
  DatabaseOptions options_;
  // One writer of this process at a time, taken with a timeout. Not std::timed_mutex: its
  // try_lock_for uses pthread_mutex_clocklock, which GCC 12's ThreadSanitizer does not see
  // (it then reports every unlock as an error and misses the ordering the lock gives).
  class WriterLock {
   public:
    bool try_lock_for(std::chrono::milliseconds timeout) {
      std::unique_lock lock(m_);
      ++waiting_;
      const bool got = cv_.wait_for(lock, timeout, [this] { return !held_; });
      --waiting_;
      if (!got) return false;
      held_ = true;
      return true;
    }
    // For a read that would like the writer's connection: only if nobody holds it and no
    // writer waits for it, so that reads arriving one after another cannot keep a writer
    // waiting (it waits for one read at most).
    bool try_lock() {
      std::lock_guard lock(m_);
      if (held_ || waiting_ > 0) return false;
      held_ = true;
      return true;
    }
    void unlock() {
      std::lock_guard lock(m_);
      held_ = false;
      cv_.notify_one();
    }

   private:
    std::mutex m_;
    std::condition_variable cv_;
    bool held_ = false;
    unsigned waiting_ = 0;
  };
  WriterLock write_mutex_;
  // The connection every write runs on, held by whoever holds write_mutex_ (null until
  // opened, or after it failed to be put back in shape). Only this connection commits, so
  // its page cache stays valid from one write to the next: in WAL mode a connection drops
  // its whole cache when it finds that another connection has committed since its last
  // transaction, and then reads each page again (a pread each). Reads use the pool below.
  std::unique_ptr<SqliteConnection> writer_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<SqliteConnection>> idle_;  // readers (and sync_log)
  std::size_t open_ = 0;
  std::size_t max_readers_ = 1;
};

}  // namespace mercado::storage::detail
