#pragma once
// The PostgreSQL backend of storage::Database (libpq; see database.hpp for its contract).

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <mercado/storage/database.hpp>
#include <mercado/storage/database_url.hpp>

namespace mercado::storage::detail {

class PgConnection;

class PostgresDatabase final : public Database {
 public:
  // Connects once to check the URL and the server.
  static Result<std::shared_ptr<PostgresDatabase>> open(const DatabaseUrl& url, core::BlockingPool& pool,
                                                        const DatabaseOptions& options);
  PostgresDatabase(core::BlockingPool& pool, std::string conninfo, std::string redacted,
                   const DatabaseOptions& options);
  ~PostgresDatabase() override;

  Dialect dialect() const noexcept override { return Dialect::postgres; }
  std::string describe() const override { return redacted_; }

 protected:
  Result<void> run(TxMode mode, const std::function<Result<void>(Tx&)>& body) override;
  Result<void> sync_log_blocking() override;

 private:
  Result<std::unique_ptr<PgConnection>> acquire();
  // Returns a healthy connection to the pool; a broken one (or nullptr) is dropped.
  void release(std::unique_ptr<PgConnection> c);
  Result<std::unique_ptr<PgConnection>> connect() const;

  std::string conninfo_;
  std::string redacted_;
  DatabaseOptions options_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  std::size_t open_ = 0;
};

}  // namespace mercado::storage::detail
