#include "sqlite_database.hpp"

#include <sqlite3.h>

#include <cctype>
#include <thread>
#include <unordered_map>

#include <mercado/storage/errors.hpp>

#include "sql_text.hpp"
#include "sqlite_busy.hpp"
#include "sqlite_wal_writes.hpp"

namespace mercado::storage::detail {
namespace {

Error sqlite_error(int rc, sqlite3* db, std::string_view sql) {
  std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string internal = detail + " [" + std::to_string(rc) + "]";
  if (!sql.empty()) internal += " in: " + excerpt(sql);
  switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
      return db_error(Errc::conflict, kUniqueViolation, "duplicate record", internal);
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return db_error(Errc::conflict, kForeignKeyViolation, "referenced record missing or in use", internal);
    case SQLITE_CONSTRAINT_NOTNULL:
      return db_error(Errc::unprocessable, kNotNullViolation, "a required value is missing", internal);
    case SQLITE_CONSTRAINT_CHECK:
      return db_error(Errc::unprocessable, kCheckViolation, "a value violates a rule", internal);
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return db_error(Errc::unavailable, kBusy, "database busy", internal);
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_PERM:
      return db_error(Errc::unavailable, kConnection, "database unavailable", internal);
    case SQLITE_CONSTRAINT:
      return db_error(Errc::unprocessable, kCheckViolation, "a value violates a rule", internal);
    default:
      return db_error(Errc::internal, "", "database statement failed", internal);
  }
}

}  // namespace

// One sqlite3 handle and its prepared statements. Used by one thread at a time.
class SqliteConnection {
 public:
  SqliteConnection(sqlite3* db, std::chrono::milliseconds busy_timeout) : db_(db), busy_(busy_timeout) {
    busy_.attach(db_);
  }
  ~SqliteConnection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  SqliteConnection(const SqliteConnection&) = delete;
  SqliteConnection& operator=(const SqliteConnection&) = delete;

  sqlite3* handle() const noexcept { return db_; }

  Result<sqlite3_stmt*> prepare(std::string_view sql) {
    // Heterogeneous lookup would need C++20 transparent hashing of std::string; the key
    // copy is small next to a statement's execution.
    std::string key(sql);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    std::string translated = dollar_to_question(sql);
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, translated.c_str(), static_cast<int>(translated.size() + 1),
                                SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) return std::unexpected(sqlite_error(rc, db_, sql));
    if (stmt == nullptr) {
      return std::unexpected(db_error(Errc::internal, "", "database statement failed",
                                      "empty statement: " + excerpt(sql)));
    }
    for (; tail && *tail; ++tail) {
      if (!std::isspace(static_cast<unsigned char>(*tail)) && *tail != ';') {
        sqlite3_finalize(stmt);
        return std::unexpected(db_error(Errc::internal, "", "database statement failed",
                                        "more than one statement (use exec_script): " + excerpt(sql)));
      }
    }
    cache_.emplace(std::move(key), stmt);
    return stmt;
  }

  Result<void> bind(sqlite3_stmt* stmt, std::string_view sql, std::span<const Param> params) {
    int expected = sqlite3_bind_parameter_count(stmt);
    if (expected != static_cast<int>(params.size())) {
      return std::unexpected(db_error(Errc::internal, "", "database statement failed",
                                      "statement takes " + std::to_string(expected) + " parameters, " +
                                          std::to_string(params.size()) + " given: " + excerpt(sql)));
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
      const Param& p = params[i];
      int idx = static_cast<int>(i + 1);
      int rc = SQLITE_OK;
      switch (p.kind()) {
        case Param::Kind::null: rc = sqlite3_bind_null(stmt, idx); break;
        case Param::Kind::integer:
        case Param::Kind::boolean: rc = sqlite3_bind_int64(stmt, idx, p.integer()); break;
        case Param::Kind::real: rc = sqlite3_bind_double(stmt, idx, p.real()); break;
        case Param::Kind::text:
          rc = sqlite3_bind_text64(stmt, idx, p.text().data(), p.text().size(), SQLITE_STATIC, SQLITE_UTF8);
          break;
        case Param::Kind::blob:
          rc = sqlite3_bind_blob64(stmt, idx, p.blob().data(), p.blob().size(), SQLITE_STATIC);
          break;
      }
      if (rc != SQLITE_OK) return std::unexpected(sqlite_error(rc, db_, sql));
    }
    return {};
  }

  // Steps the statement to completion; collects rows into `rows` when given.
  Result<std::int64_t> step_all(sqlite3_stmt* stmt, std::string_view sql, Rows* rows) {
    sqlite3_int64 before = sqlite3_total_changes64(db_);
    int columns = sqlite3_column_count(stmt);
    if (rows) {
      std::vector<std::string> names;
      names.reserve(static_cast<std::size_t>(columns));
      for (int c = 0; c < columns; ++c) names.emplace_back(sqlite3_column_name(stmt, c));
      *rows = Rows(std::move(names));
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      if (!rows) continue;
      for (int c = 0; c < columns; ++c) {
        switch (sqlite3_column_type(stmt, c)) {
          case SQLITE_INTEGER: rows->push(static_cast<std::int64_t>(sqlite3_column_int64(stmt, c))); break;
          case SQLITE_FLOAT: rows->push(sqlite3_column_double(stmt, c)); break;
          case SQLITE_TEXT: {
            const auto* t = reinterpret_cast<const char*>(sqlite3_column_text(stmt, c));
            rows->push(std::string(t, static_cast<std::size_t>(sqlite3_column_bytes(stmt, c))));
            break;
          }
          case SQLITE_BLOB: {
            const auto* b = static_cast<const std::byte*>(sqlite3_column_blob(stmt, c));
            rows->push(Blob(b, b + sqlite3_column_bytes(stmt, c)));
            break;
          }
          default: rows->push(std::monostate{}); break;
        }
      }
    }
    Result<std::int64_t> out = 0;
    if (rc != SQLITE_DONE) {
      out = std::unexpected(sqlite_error(rc, db_, sql));
    } else if (sqlite3_total_changes64(db_) != before) {
      out = static_cast<std::int64_t>(sqlite3_changes64(db_));
    }
    sqlite3_reset(stmt);
    sqlite3_clear_bindings(stmt);
    return out;
  }

  // `read_only`: refuse statements that would write (a read transaction), checked per
  // statement instead of with PRAGMA query_only, whose every change expires all of the
  // connection's prepared statements (each read transaction re-parsed its SQL).
  Result<std::int64_t> run(std::string_view sql, std::span<const Param> params, Rows* rows, bool read_only = false) {
    auto stmt = prepare(sql);
    if (!stmt) return std::unexpected(std::move(stmt.error()));
    if (read_only && !sqlite3_stmt_readonly(*stmt)) {
      return std::unexpected(db_error(Errc::internal, "", "database statement failed",
                                      "a read-only transaction cannot write: " + excerpt(sql)));
    }
    if (auto b = bind(*stmt, sql, params); !b) {
      sqlite3_clear_bindings(*stmt);
      return std::unexpected(std::move(b.error()));
    }
    return step_all(*stmt, sql, rows);
  }

  Result<void> script(std::string_view sql) {
    std::string text(sql);
    char* msg = nullptr;
    int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &msg);
    if (rc == SQLITE_OK) return {};
    Error e = sqlite_error(sqlite3_extended_errcode(db_), db_, sql);
    if (msg) {
      e.internal = std::string(msg) + " in: " + excerpt(sql);
      sqlite3_free(msg);
    }
    return std::unexpected(std::move(e));
  }

  // A script in a read transaction (savepoints): statement by statement, refusing writes.
  Result<void> read_only_script(std::string_view sql) {
    std::string text(sql);
    const char* next = text.c_str();
    while (next && *next) {
      sqlite3_stmt* stmt = nullptr;
      int rc = sqlite3_prepare_v2(db_, next, -1, &stmt, &next);
      if (rc != SQLITE_OK) return std::unexpected(sqlite_error(rc, db_, sql));
      if (stmt == nullptr) break;  // only whitespace or comments left
      if (!sqlite3_stmt_readonly(stmt)) {
        sqlite3_finalize(stmt);
        return std::unexpected(db_error(Errc::internal, "", "database statement failed",
                                        "a read-only transaction cannot write: " + excerpt(sql)));
      }
      while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      }
      sqlite3_finalize(stmt);
      if (rc != SQLITE_DONE) return std::unexpected(sqlite_error(rc, db_, sql));
    }
    return {};
  }

 private:
  sqlite3* db_;
  SqliteBusyWait busy_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

namespace {

class SqliteTx final : public Tx {
 public:
  SqliteTx(SqliteConnection& c, bool read_only) : c_(c), read_only_(read_only) {}
  Dialect dialect() const noexcept override { return Dialect::sqlite; }
  std::vector<std::function<void()>> hooks() noexcept { return take_hooks(); }

 protected:
  Result<std::int64_t> do_exec(std::string_view sql, std::span<const Param> params) override {
    return c_.run(sql, params, nullptr, read_only_);
  }
  Result<Rows> do_query(std::string_view sql, std::span<const Param> params) override {
    Rows rows;
    auto r = c_.run(sql, params, &rows, read_only_);
    if (!r) return std::unexpected(std::move(r.error()));
    return rows;
  }
  Result<void> do_script(std::string_view sql) override {
    return read_only_ ? c_.read_only_script(sql) : c_.script(sql);
  }
  Result<void> do_savepoint_statement(std::string_view sql) override {
    // Prepared once per connection (sqlite3_stmt_readonly is true for these, so read
    // transactions may use them too).
    auto r = c_.run(sql, {}, nullptr, read_only_);
    if (!r) return std::unexpected(std::move(r.error()));
    return {};
  }

 private:
  SqliteConnection& c_;
  bool read_only_;
};

Result<std::unique_ptr<SqliteConnection>> open_connection(const std::string& path,
                                                          const std::string& synchronous,
                                                          std::chrono::milliseconds busy_timeout,
                                                          std::size_t cache_kib) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                           detail::wal_writes_vfs());
  if (rc != SQLITE_OK) {
    Error e = db_error(Errc::unavailable, kConnection, "database unavailable",
                       "cannot open " + path + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close_v2(db);
    return std::unexpected(std::move(e));
  }
  auto conn = std::make_unique<SqliteConnection>(db, busy_timeout);
  sqlite3_extended_result_codes(db, 1);
  // Switching a new file to WAL takes its exclusive lock. Two processes opening the same new
  // file at once (the shop's services and the SQLite bus at the first `mercado up`) both read
  // it under a shared lock and then both ask for that lock: SQLite answers SQLITE_BUSY at once
  // to one of them instead of calling the busy handler, since waiting could deadlock. The
  // other one has converted the file by then, so trying again succeeds. (An attempt that
  // does call the busy handler may itself wait up to busy_timeout: the whole loop is bounded
  // by about twice that.)
  Rows mode;
  const auto deadline = std::chrono::steady_clock::now() + busy_timeout;
  for (std::chrono::milliseconds pause{1};; pause = std::min(pause * 2, std::chrono::milliseconds(20))) {
    Rows got;
    auto r = conn->run("PRAGMA journal_mode=WAL", {}, &got);
    if (r) {
      mode = std::move(got);
      break;
    }
    if (r.error().type != kBusy || std::chrono::steady_clock::now() + pause > deadline) {
      Error e = r.error();
      e.internal = path + ": " + e.internal;
      return std::unexpected(std::move(e));
    }
    std::this_thread::sleep_for(pause);
  }
  if (mode.empty() || mode[0].get<std::string>(0) != "wal") {
    return std::unexpected(db_error(Errc::unavailable, kConnection, "database unavailable",
                                    path + ": WAL journal mode not available"));
  }
  // temp_store=MEMORY keeps statement journals in memory: every SAVEPOINT (each member of a
  // group commit runs in one) records the original of each page it changes, and SQLite's
  // default spills that sub-journal to a temp file after 64 KiB and then writes every
  // record of every later savepoint with pwrite, for the life of the connection.
  std::string pragmas = "PRAGMA synchronous=" + synchronous + "; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;";
  if (cache_kib > 0) pragmas += " PRAGMA cache_size=-" + std::to_string(cache_kib) + ";";
  if (auto r = conn->script(pragmas); !r) {
    return std::unexpected(r.error());
  }
  // Keep the -wal file when the last connection closes, so that watchers of it (the SQLite
  // event bus) keep watching the same file.
  int persist = 1;
  sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  return conn;
}

}  // namespace

SqliteDatabase::SqliteDatabase(core::BlockingPool& pool, std::string path, std::string synchronous,
                               const DatabaseOptions& options)
    : Database(pool, options.group_commit ? std::max<std::size_t>(options.group_commit_max, 1) : 0,
               options.inline_reads, options.inline_unsynced_writes),
      path_(std::move(path)),
      synchronous_(std::move(synchronous)),
      resync_pragma_("PRAGMA synchronous=" + synchronous_),
      full_sync_(synchronous_ == "FULL"),
      options_(options) {
  // One connection writes; the others (at least one) read.
  max_readers_ = options_.max_connections > 1 ? options_.max_connections - 1 : 1;
}

SqliteDatabase::~SqliteDatabase() = default;

Result<std::shared_ptr<SqliteDatabase>> SqliteDatabase::open(const DatabaseUrl& url, core::BlockingPool& pool,
                                                             const DatabaseOptions& options) {
  std::string synchronous = "FULL";
  for (const auto& [key, value] : url.query) {
    if (key == "synchronous") {
      if (value == "full" || value == "FULL") {
        synchronous = "FULL";
      } else if (value == "normal" || value == "NORMAL") {
        synchronous = "NORMAL";
      } else {
        return fail(Errc::invalid_argument, "sqlite URL: synchronous must be full or normal");
      }
    } else {
      return fail(Errc::invalid_argument, "sqlite URL: unknown option '" + key + "'");
    }
  }
  auto db = std::make_shared<SqliteDatabase>(pool, url.path, synchronous, options);
  auto conn = open_connection(db->path_, db->synchronous_, options.busy_timeout, db->writer_cache_kib());
  if (!conn) return std::unexpected(std::move(conn.error()));
  db->writer_ = std::move(*conn);  // nobody else holds the write lock yet
  return db;
}

Result<std::unique_ptr<SqliteConnection>> SqliteDatabase::acquire() {
  std::unique_lock lock(mutex_);
  auto deadline = std::chrono::steady_clock::now() + options_.acquire_timeout;
  while (idle_.empty() && open_ >= max_readers_) {
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && idle_.empty() &&
        open_ >= max_readers_) {
      return std::unexpected(db_error(Errc::unavailable, kBusy, "database busy",
                                      "no free SQLite connection within the acquire timeout"));
    }
  }
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    return c;
  }
  ++open_;
  lock.unlock();
  auto c = open_connection(path_, synchronous_, options_.busy_timeout, options_.cache_kib);
  if (!c) {
    lock.lock();
    --open_;
    cv_.notify_one();
  }
  return c;
}

void SqliteDatabase::release(std::unique_ptr<SqliteConnection> c) {
  std::lock_guard lock(mutex_);
  if (c) {
    idle_.push_back(std::move(c));
  } else {
    --open_;
  }
  cv_.notify_one();
}

Result<void> SqliteDatabase::sync_log_blocking() {
  // Any connection's handle of the log will do: they all write the same file, and a sync
  // covers every byte written to it so far. Frames already copied into the database file
  // were made durable by that checkpoint, which syncs the file after copying (in NORMAL
  // mode as in FULL).
  auto conn = acquire();
  if (!conn) return std::unexpected(std::move(conn.error()));
  sqlite3_file* log = nullptr;
  int rc = sqlite3_file_control((*conn)->handle(), "main", SQLITE_FCNTL_JOURNAL_POINTER, &log);
  if (rc == SQLITE_OK && log != nullptr && log->pMethods != nullptr) {
    rc = log->pMethods->xSync(log, SQLITE_SYNC_NORMAL);
  } else if (rc == SQLITE_OK) {
    rc = SQLITE_CANTOPEN;  // no log open: not in WAL mode, which open_connection refuses
  }
  release(std::move(*conn));
  if (rc != SQLITE_OK) {
    return std::unexpected(db_error(Errc::unavailable, kConnection, "database unavailable",
                                    "cannot sync the log of " + path_ + ": " + sqlite3_errstr(rc)));
  }
  return {};
}

Result<void> SqliteDatabase::run(TxMode mode, const std::function<Result<void>(Tx&)>& body) {
  std::unique_lock<WriterLock> writer(write_mutex_, std::defer_lock);
  if (writes(mode) && !writer.try_lock_for(options_.acquire_timeout)) {
    return std::unexpected(db_error(Errc::unavailable, kBusy, "database busy",
                                    "the process's SQLite writer lock was not free within the acquire timeout"));
  }
  // A write runs on the writer connection (opened again if it was dropped). So does a read
  // when no write holds or waits for that connection: its cache is the one that is still
  // valid after the last commit. Otherwise a read runs on one of the pool's connections.
  bool on_writer = writes(mode);
  if (!on_writer && writer.try_lock()) {
    on_writer = writer_ != nullptr;
    if (!on_writer) writer.unlock();
  }
  Result<std::unique_ptr<SqliteConnection>> conn =
      !on_writer ? acquire()
      : writer_  ? Result<std::unique_ptr<SqliteConnection>>(std::move(writer_))
                 : open_connection(path_, synchronous_, options_.busy_timeout, writer_cache_kib());
  if (!conn) return std::unexpected(std::move(conn.error()));
  SqliteConnection& c = **conn;
  // An unsynced write commits with synchronous=NORMAL: in WAL mode the commit does not sync,
  // but a checkpoint this connection runs still syncs the log before it and the database file
  // after it. (OFF would skip those too: a power loss could then corrupt the file, not just
  // lose the last commits.) The setting may change only between transactions, and it is put
  // back before the connection goes back to the pool. (Not a cached statement: SQLite applies
  // this pragma when it compiles it, not when it runs.)
  const bool unsynced = mode == TxMode::write_unsynced;
  // A synced write's log frames go to the kernel in one write at its sync (sqlite_wal_writes.hpp).
  detail::WalWritesScope collect(mode == TxMode::write && full_sync_);
  auto give_back = [&] {
    detail::wal_writes_flush_thread();
    // A connection that could not be synced again is closed, never reused by synced writes.
    if (unsynced && !c.script(resync_pragma_)) conn->reset();
    if (on_writer) {
      writer_ = std::move(*conn);  // still under write_mutex_
    } else {
      release(std::move(*conn));
    }
  };
  if (unsynced) {
    if (auto r = c.script("PRAGMA synchronous=NORMAL"); !r) {
      give_back();
      return std::unexpected(std::move(r.error()));
    }
  }

  // A read transaction refuses writing statements (SqliteTx checks each one), the same
  // semantics as PostgreSQL's BEGIN READ ONLY.
  if (auto r = c.run(writes(mode) ? "BEGIN IMMEDIATE" : "BEGIN", {}, nullptr); !r) {
    give_back();
    return std::unexpected(std::move(r.error()));
  }
  SqliteTx tx(c, mode == TxMode::read);
  Result<void> outcome;
  try {
    outcome = body(tx);
  } catch (...) {
    (void)c.run("ROLLBACK", {}, nullptr);
    give_back();
    throw;
  }
  if (outcome && tx.failure()) outcome = std::unexpected(*tx.failure());
  if (!outcome) {
    (void)c.run("ROLLBACK", {}, nullptr);
    give_back();
    return outcome;
  }
  if (auto r = c.run("COMMIT", {}, nullptr); !r) {
    if (!sqlite3_get_autocommit(c.handle())) (void)c.run("ROLLBACK", {}, nullptr);
    give_back();
    return std::unexpected(std::move(r.error()));
  }
  if (writes(mode)) {
    int pages = 0, highwater = 0;
    if (sqlite3_db_status(c.handle(), SQLITE_DBSTATUS_CACHE_WRITE, &pages, &highwater, 1) == SQLITE_OK && pages > 0) {
      counters().pages_written.fetch_add(static_cast<std::uint64_t>(pages), std::memory_order_relaxed);
    }
  }
  give_back();
  if (writer.owns_lock()) writer.unlock();
  for (auto& hook : tx.hooks()) hook();
  return {};
}

}  // namespace mercado::storage::detail
