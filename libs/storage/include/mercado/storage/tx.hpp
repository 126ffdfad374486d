#pragma once
// A database transaction in progress, handed to the function given to
// Database::transaction(). Statements use $1, $2, ... placeholders on every backend
// (translated for SQLite); arguments are bound with their C++ types (see param.hpp).
//
//   Result<std::int64_t> n = tx.exec("UPDATE stock SET qty = qty - $1 WHERE sku = $2", 2, sku);
//   Result<Rows> rows = tx.query("SELECT qty FROM stock WHERE sku = $1", sku);
//
// Statements are prepared once per connection and cached. After a statement fails, the
// transaction is aborted on every backend (PostgreSQL semantics): further statements
// return the same error and the transaction rolls back even if the function returns a
// value. Use INSERT ... ON CONFLICT DO NOTHING rather than catching a duplicate.
//
// Errors: Errc::conflict with type "unique-violation" / "foreign-key-violation" /
// "serialization-failure" / "deadlock"; Errc::unprocessable for "not-null-violation" /
// "check-violation"; Errc::unavailable when the database is unreachable or busy past the
// busy timeout; Errc::internal for SQL errors (a programmer error reported as a value so
// that the transaction still rolls back cleanly). See errors.hpp.
//
// Thread-safety: a Tx is used only by the thread running the transaction function and
// only during that call; it must not escape.

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <string_view>
#include <utility>
#include <vector>

#include <mercado/core/error.hpp>
#include <mercado/storage/param.hpp>
#include <mercado/storage/rows.hpp>

namespace mercado::storage {

enum class Dialect : std::uint8_t { sqlite, postgres };
std::string_view to_string(Dialect d) noexcept;

class Tx {
 public:
  virtual ~Tx() = default;
  Tx(const Tx&) = delete;
  Tx& operator=(const Tx&) = delete;

  virtual Dialect dialect() const noexcept = 0;

  // Runs one statement; returns the number of rows it inserted, updated or deleted.
  Result<std::int64_t> exec_params(std::string_view sql, std::span<const Param> params);
  // Runs one statement and reads every row it returns (SELECT, or ... RETURNING).
  Result<Rows> query_params(std::string_view sql, std::span<const Param> params);
  // Runs several ;-separated statements without parameters (DDL, migrations).
  Result<void> exec_script(std::string_view sql);

  template <class... A>
  Result<std::int64_t> exec(std::string_view sql, const A&... args) {
    const std::array<Param, sizeof...(A)> params{Param(args)...};
    return exec_params(sql, params);
  }
  template <class... A>
  Result<Rows> query(std::string_view sql, const A&... args) {
    const std::array<Param, sizeof...(A)> params{Param(args)...};
    return query_params(sql, params);
  }
  // The first column of the first row, or nullopt when there is no row.
  template <class T, class... A>
  Result<std::optional<T>> query_value(std::string_view sql, const A&... args) {
    auto rows = query(sql, args...);
    if (!rows) return std::unexpected(std::move(rows.error()));
    if (rows->empty()) return std::optional<T>();
    return std::optional<T>((*rows)[0].template get<T>(0));
  }

  // Runs f(tx) inside a SAVEPOINT. When f returns an error, throws, or one of its
  // statements fails, only f's changes (and the commit hooks it registered) are undone
  // (ROLLBACK TO SAVEPOINT), the transaction stays usable and f's error is returned (or its
  // exception rethrown); otherwise f's changes are kept. Savepoints nest.
  template <class F>
  std::invoke_result_t<F&, Tx&> savepoint(F&& f) {
    using R = std::invoke_result_t<F&, Tx&>;
    // One name for every savepoint: RELEASE and ROLLBACK TO act on the most recent open
    // savepoint of that name (SQLite and PostgreSQL alike), which is this one because
    // savepoints nest. So the three statements are always the same text, prepared once per
    // connection instead of parsed for every savepoint (each group-commit member has one).
    if (auto r = savepoint_statement("SAVEPOINT mercado_sp"); !r) return R(std::unexpected(r.error()));
    const std::size_t hooks_before = hooks_.size();
    auto undo = [&]() -> Result<void> {
      if (!savepoint_failed_) failure_.reset();
      hooks_.resize(hooks_before);
      if (auto r = savepoint_statement("ROLLBACK TO SAVEPOINT mercado_sp"); !r) return r;
      return savepoint_statement("RELEASE SAVEPOINT mercado_sp");
    };
    std::optional<R> out;
    try {
      out.emplace(f(*this));
    } catch (...) {
      (void)undo();
      throw;
    }
    if (*out && !failure_) {
      if (auto r = savepoint_statement("RELEASE SAVEPOINT mercado_sp"); !r) return R(std::unexpected(r.error()));
      return std::move(*out);
    }
    Error e = *out ? *failure_ : out->error();
    if (auto r = undo(); !r) return R(std::unexpected(r.error()));
    return R(std::unexpected(std::move(e)));
  }

  // Registers `hook` to run once the transaction has committed, on the committing thread,
  // after the connection is released. Never runs after a rollback. Hooks must not throw
  // and must not block (typically they wake a coroutine).
  void on_commit(std::function<void()> hook) { hooks_.push_back(std::move(hook)); }

  // The error that aborted the transaction, if a statement failed.
  const std::optional<Error>& failure() const noexcept { return failure_; }

 protected:
  Tx() = default;
  virtual Result<std::int64_t> do_exec(std::string_view sql, std::span<const Param> params) = 0;
  virtual Result<Rows> do_query(std::string_view sql, std::span<const Param> params) = 0;
  virtual Result<void> do_script(std::string_view sql) = 0;
  // SAVEPOINT, RELEASE and ROLLBACK TO (the same three texts every time): a script unless
  // the backend can keep them prepared.
  virtual Result<void> do_savepoint_statement(std::string_view sql) { return do_script(sql); }

  std::vector<std::function<void()>> take_hooks() noexcept { return std::move(hooks_); }

 private:
  // A SAVEPOINT, RELEASE or ROLLBACK TO that fails leaves the open savepoints no longer
  // matching the nesting of savepoint() calls (they share one name): its error then sticks,
  // no undo clears it, and the whole transaction rolls back.
  Result<void> savepoint_statement(std::string_view sql) {
    if (failure_) return std::unexpected(*failure_);
    auto r = remember(do_savepoint_statement(sql));
    if (!r) savepoint_failed_ = true;
    return r;
  }
  template <class R>
  R remember(R r) {
    if (!r && !failure_) failure_ = r.error();
    return r;
  }
  std::vector<std::function<void()>> hooks_;
  std::optional<Error> failure_;
  bool savepoint_failed_ = false;
};

}  // namespace mercado::storage
