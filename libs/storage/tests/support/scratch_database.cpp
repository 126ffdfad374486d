#include "scratch_database.hpp"

#include <libpq-fe.h>
#include <stdlib.h>

#include <filesystem>
#include <random>
#include <stdexcept>

namespace mercado::storage::testing {
namespace {

std::string random_suffix() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s;
  for (int i = 0; i < 12; ++i) s.push_back(kChars[rng() % (sizeof kChars - 1)]);
  return s;
}

// Runs one command on the server; throws on failure (test support: a broken server is a
// broken test environment).
void pg_command(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string msg = PQerrorMessage(conn);
    PQfinish(conn);
    throw std::runtime_error("cannot connect to the test PostgreSQL: " + msg);
  }
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  PGresult* r = PQexec(conn, sql.c_str());
  bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  std::string msg = PQerrorMessage(conn);
  PQclear(r);
  PQfinish(conn);
  if (!ok) throw std::runtime_error("test PostgreSQL: " + sql + ": " + msg);
}

}  // namespace

std::string to_string(Backend b) { return b == Backend::postgres ? "postgres" : "sqlite"; }

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool servers_required() { return env("MERCADO_REQUIRE_SERVERS") == "1"; }

ScratchDir::ScratchDir() {
  std::string base = env("TMPDIR");
  if (base.empty()) base = "/tmp";
  std::string templ = base + "/mercado-test-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed in " + base);
  path_ = templ;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

struct ScratchDatabase::PgSchema {
  std::string admin_url;
  std::string name;
  ~PgSchema() {
    try {
      pg_command(admin_url, "DROP SCHEMA IF EXISTS " + name + " CASCADE");
    } catch (const std::exception& e) {
      ADD_FAILURE() << e.what();
    }
  }
};

std::optional<ScratchDatabase> ScratchDatabase::create(Backend backend, std::string& why_not) {
  ScratchDatabase db;
  db.backend_ = backend;
  if (backend == Backend::sqlite) {
    db.dir_ = std::make_shared<ScratchDir>();
    db.url_ = "sqlite://" + db.dir_->path() + "/test.db";
    return db;
  }
  std::string admin = env("MERCADO_TEST_POSTGRES_URL");
  if (admin.empty()) {
    why_not = "MERCADO_TEST_POSTGRES_URL is not set (eval \"$(scripts/test-servers.sh start)\")";
    return std::nullopt;
  }
  std::string name = "t_" + random_suffix();
  pg_command(admin, "CREATE SCHEMA " + name);
  db.schema_ = std::make_shared<PgSchema>();
  db.schema_->admin_url = admin;
  db.schema_->name = name;
  db.url_ = admin + (admin.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + name;
  return db;
}

}  // namespace mercado::storage::testing
