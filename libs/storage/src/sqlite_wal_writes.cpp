#include "sqlite_wal_writes.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

namespace mercado::storage::detail {

namespace {

constexpr std::size_t kMaxCollected = 4u << 20;

std::atomic<unsigned long long> g_collected{0};
std::atomic<unsigned long long> g_flushes{0};
std::atomic<unsigned long long> g_log_syncs{0};

sqlite3_vfs* g_real = nullptr;  // the default VFS this one wraps (set once, before registration)
sqlite3_vfs g_vfs{};

struct File {
  sqlite3_file base;  // first: SQLite sees this
  sqlite3_file* real;
  bool wal;
  sqlite3_int64 start = 0;  // file offset of collected[0]
  std::string collected;
};

constexpr std::size_t kFileSpace = (sizeof(File) + 15) / 16 * 16;

thread_local bool t_collecting = false;
thread_local File* t_pending = nullptr;  // this thread's WAL file holding collected writes

File* self(sqlite3_file* f) {
  return reinterpret_cast<File*>(f);
}
const sqlite3_io_methods* real_methods(File* f) {
  return f->real->pMethods;
}

int flush(File* f) {
  if (t_pending == f) t_pending = nullptr;
  if (f->collected.empty()) return SQLITE_OK;
  // The unix VFS writes at most 128 KiB - 1 bytes per call (it masks the length with 0x1ffff).
  constexpr std::size_t kMaxWrite = 0x1ffff;
  int rc = SQLITE_OK;
  for (std::size_t at = 0; at < f->collected.size() && rc == SQLITE_OK; at += kMaxWrite) {
    const std::size_t n = std::min(kMaxWrite, f->collected.size() - at);
    rc = real_methods(f)->xWrite(f->real, f->collected.data() + at, static_cast<int>(n),
                                 f->start + static_cast<sqlite3_int64>(at));
    g_flushes.fetch_add(1, std::memory_order_relaxed);
  }
  f->collected.clear();
  if (f->collected.capacity() > kMaxCollected) f->collected.shrink_to_fit();
  return rc;
}

int x_close(sqlite3_file* pf) {
  File* f = self(pf);
  int flushed = flush(f);
  int rc = f->real->pMethods ? real_methods(f)->xClose(f->real) : SQLITE_OK;
  f->~File();
  return flushed != SQLITE_OK ? flushed : rc;
}

int x_read(sqlite3_file* pf, void* buf, int amt, sqlite3_int64 off) {
  File* f = self(pf);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f)->xRead(f->real, buf, amt, off);
}

int x_write(sqlite3_file* pf, const void* buf, int amt, sqlite3_int64 off) {
  File* f = self(pf);
  if (!f->wal || !t_collecting) {
    if (int rc = flush(f); rc != SQLITE_OK) return rc;
    return real_methods(f)->xWrite(f->real, buf, amt, off);
  }
  if (!f->collected.empty() && off != f->start + static_cast<sqlite3_int64>(f->collected.size())) {
    if (int rc = flush(f); rc != SQLITE_OK) return rc;
  }
  if (t_pending != nullptr && t_pending != f) {
    if (int rc = flush(t_pending); rc != SQLITE_OK) return rc;
  }
  if (f->collected.empty()) f->start = off;
  f->collected.append(static_cast<const char*>(buf), static_cast<std::size_t>(amt));
  g_collected.fetch_add(1, std::memory_order_relaxed);
  t_pending = f;
  return f->collected.size() >= kMaxCollected ? flush(f) : SQLITE_OK;
}

int x_truncate(sqlite3_file* pf, sqlite3_int64 size) {
  File* f = self(pf);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f)->xTruncate(f->real, size);
}

int x_sync(sqlite3_file* pf, int flags) {
  File* f = self(pf);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  if (f->wal) g_log_syncs.fetch_add(1, std::memory_order_relaxed);
  return real_methods(f)->xSync(f->real, flags);
}

int x_file_size(sqlite3_file* pf, sqlite3_int64* size) {
  File* f = self(pf);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f)->xFileSize(f->real, size);
}

int x_lock(sqlite3_file* pf, int lock) {
  return real_methods(self(pf))->xLock(self(pf)->real, lock);
}
int x_unlock(sqlite3_file* pf, int lock) {
  return real_methods(self(pf))->xUnlock(self(pf)->real, lock);
}
int x_check_reserved_lock(sqlite3_file* pf, int* out) {
  return real_methods(self(pf))->xCheckReservedLock(self(pf)->real, out);
}
int x_file_control(sqlite3_file* pf, int op, void* arg) {
  File* f = self(pf);
  if (int rc = flush(f); rc != SQLITE_OK) return rc;
  return real_methods(f)->xFileControl(f->real, op, arg);
}
int x_sector_size(sqlite3_file* pf) {
  return real_methods(self(pf))->xSectorSize(self(pf)->real);
}
int x_device_characteristics(sqlite3_file* pf) {
  return real_methods(self(pf))->xDeviceCharacteristics(self(pf)->real);
}
int x_shm_map(sqlite3_file* pf, int region, int size, int extend, void volatile** out) {
  return real_methods(self(pf))->xShmMap(self(pf)->real, region, size, extend, out);
}
int x_shm_lock(sqlite3_file* pf, int offset, int n, int flags) {
  return real_methods(self(pf))->xShmLock(self(pf)->real, offset, n, flags);
}
void x_shm_barrier(sqlite3_file* pf) {
  // The last guard (see the header): a wal-index header must never name frames that are
  // still in memory. With collecting limited to synced commits the log was flushed at its
  // sync and there is nothing left here.
  if (t_pending != nullptr && flush(t_pending) != SQLITE_OK) {
    std::fprintf(stderr, "mercado: SQLite WAL write failed before a wal-index update; stopping\n");
    std::abort();
  }
  real_methods(self(pf))->xShmBarrier(self(pf)->real);
}
int x_shm_unmap(sqlite3_file* pf, int del) {
  return real_methods(self(pf))->xShmUnmap(self(pf)->real, del);
}
int x_fetch(sqlite3_file* pf, sqlite3_int64 off, int amt, void** out) {
  return real_methods(self(pf))->xFetch(self(pf)->real, off, amt, out);
}
int x_unfetch(sqlite3_file* pf, sqlite3_int64 off, void* p) {
  return real_methods(self(pf))->xUnfetch(self(pf)->real, off, p);
}

// Version 3 methods (x_open refuses a real file with fewer; the unix VFS has 3).
const sqlite3_io_methods kMethods = {
    3,
    x_close,
    x_read,
    x_write,
    x_truncate,
    x_sync,
    x_file_size,
    x_lock,
    x_unlock,
    x_check_reserved_lock,
    x_file_control,
    x_sector_size,
    x_device_characteristics,
    x_shm_map,
    x_shm_lock,
    x_shm_barrier,
    x_shm_unmap,
    x_fetch,
    x_unfetch,
};

int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* pf, int flags, int* out_flags) {
  auto* f = new (pf) File{};
  f->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(pf) + kFileSpace);
  f->wal = (flags & SQLITE_OPEN_WAL) != 0;
  f->base.pMethods = nullptr;
  int rc = g_real->xOpen(g_real, name, f->real, flags, out_flags);
  if (f->real->pMethods == nullptr) {
    f->~File();
    pf->pMethods = nullptr;
    return rc;
  }
  if (f->real->pMethods->iVersion < 3) {
    // Never the case with the unix VFS; a wrapper that needs version 3 cannot stand in.
    f->real->pMethods->xClose(f->real);
    f->~File();
    pf->pMethods = nullptr;
    return SQLITE_CANTOPEN;
  }
  f->base.pMethods = &kMethods;
  return rc;
}

int x_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  return g_real->xDelete(g_real, name, sync_dir);
}
int x_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  return g_real->xAccess(g_real, name, flags, out);
}
int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
  return g_real->xFullPathname(g_real, name, n, out);
}
void* x_dl_open(sqlite3_vfs*, const char* name) {
  return g_real->xDlOpen(g_real, name);
}
void x_dl_error(sqlite3_vfs*, int n, char* msg) {
  g_real->xDlError(g_real, n, msg);
}
void (*x_dl_sym(sqlite3_vfs*, void* h, const char* sym))(void) {
  return g_real->xDlSym(g_real, h, sym);
}
void x_dl_close(sqlite3_vfs*, void* h) {
  g_real->xDlClose(g_real, h);
}
int x_randomness(sqlite3_vfs*, int n, char* out) {
  return g_real->xRandomness(g_real, n, out);
}
int x_sleep(sqlite3_vfs*, int us) {
  return g_real->xSleep(g_real, us);
}
int x_current_time(sqlite3_vfs*, double* out) {
  return g_real->xCurrentTime(g_real, out);
}
int x_get_last_error(sqlite3_vfs*, int n, char* out) {
  return g_real->xGetLastError(g_real, n, out);
}
int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  return g_real->xCurrentTimeInt64(g_real, out);
}

const char* register_vfs() noexcept {
  // Before SQLite initializes (sqlite3_vfs_find does): no memory statistics, which nothing
  // here reads and which take a process-wide mutex around every allocation SQLite makes
  // (Debian's build has no lookaside, so that is several per statement). Refused, harmlessly,
  // if something in the process initialized SQLite first.
  (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
  if (real == nullptr || real->iVersion < 2) return nullptr;
  g_real = real;
  g_vfs.iVersion = 2;
  g_vfs.szOsFile = static_cast<int>(kFileSpace) + real->szOsFile;
  g_vfs.mxPathname = real->mxPathname;
  g_vfs.zName = "mercado";
  g_vfs.xOpen = x_open;
  g_vfs.xDelete = x_delete;
  g_vfs.xAccess = x_access;
  g_vfs.xFullPathname = x_full_pathname;
  g_vfs.xDlOpen = x_dl_open;
  g_vfs.xDlError = x_dl_error;
  g_vfs.xDlSym = x_dl_sym;
  g_vfs.xDlClose = x_dl_close;
  g_vfs.xRandomness = x_randomness;
  g_vfs.xSleep = x_sleep;
  g_vfs.xCurrentTime = x_current_time;
  g_vfs.xGetLastError = x_get_last_error;
  g_vfs.xCurrentTimeInt64 = x_current_time_int64;
  if (sqlite3_vfs_register(&g_vfs, 0) != SQLITE_OK) return nullptr;
  return g_vfs.zName;
}

}  // namespace

const char* wal_writes_vfs() noexcept {
  static const char* name = register_vfs();
  return name;
}

WalWritesScope::WalWritesScope(bool enabled) noexcept : previous_(t_collecting) {
  t_collecting = enabled;
}

WalWritesScope::~WalWritesScope() {
  // Nothing collected outlives the transaction: what is left belongs to frames that were
  // not committed (a rollback), which SQLite would have written all the same.
  if (t_pending != nullptr) (void)flush(t_pending);
  t_collecting = previous_;
}

void wal_writes_flush_thread() noexcept {
  if (t_pending != nullptr) (void)flush(t_pending);
}

std::size_t wal_writes_pending() noexcept {
  return t_pending != nullptr ? t_pending->collected.size() : 0;
}

WalWritesStats wal_writes_stats() noexcept {
  return {g_collected.load(std::memory_order_relaxed), g_flushes.load(std::memory_order_relaxed),
          g_log_syncs.load(std::memory_order_relaxed)};
}

}  // namespace mercado::storage::detail
