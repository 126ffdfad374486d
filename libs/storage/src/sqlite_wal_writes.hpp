#pragma once
// Fewer write system calls for SQLite's write-ahead log.
//
// SQLite writes each WAL frame with two pwrite calls (its 24-byte header, then the page), so
// a commit of 30 pages is 60 system calls -- on this project's virtual machines each one
// costs a paravirtualised interrupt round trip, and they were the most frequent system call
// of every service under load. The "mercado" VFS wraps the default one and, inside a synced
// write transaction, collects the log's contiguous writes in memory and hands them to the
// kernel in one pwrite when SQLite syncs the log (before a commit becomes visible to anyone)
// or earlier when anything else touches the file (a read, a size query, a truncate, a write
// elsewhere, close) or the collection passes 4 MiB.
//
// Why this is safe: a commit becomes visible to other connections only through the
// wal-index header, which SQLite writes after it has synced the log (synchronous=FULL), and
// a process that dies before the sync leaves an uncommitted tail, exactly as if it had died
// before writing it. Writes of transactions that do not sync at commit (TxMode::
// write_unsynced, synchronous=NORMAL databases) are never collected: SqliteWalWrites::Scope
// enables collecting only for synced writes. As a last guard, the wal-index barrier that
// precedes the header's second copy flushes whatever this thread still holds.

#include <cstddef>

#include <sqlite3.h>

namespace mercado::storage::detail {

// The VFS name to pass to sqlite3_open_v2, or nullptr when it could not be registered
// (then the default VFS is used and nothing is collected).
const char* wal_writes_vfs() noexcept;

// While alive, WAL writes of this thread are collected (the caller's transaction syncs the
// log at commit). Nested scopes are fine.
class WalWritesScope {
 public:
  explicit WalWritesScope(bool enabled) noexcept;
  ~WalWritesScope();
  WalWritesScope(const WalWritesScope&) = delete;
  WalWritesScope& operator=(const WalWritesScope&) = delete;

 private:
  bool previous_;
};

// Flushes what this thread collected (before its connection goes back to the pool).
void wal_writes_flush_thread() noexcept;

// Bytes this thread has collected and not yet written (for tests).
std::size_t wal_writes_pending() noexcept;

// Write system calls saved so far in this process (for tests and metrics).
struct WalWritesStats {
  unsigned long long collected_writes;  // pwrite calls SQLite asked for and that were collected
  unsigned long long flushes;           // pwrite calls made instead
  unsigned long long log_syncs;         // syncs of a log file (commits, checkpoints, sync_log)
};
WalWritesStats wal_writes_stats() noexcept;

}  // namespace mercado::storage::detail
