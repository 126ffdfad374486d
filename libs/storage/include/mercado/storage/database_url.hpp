#pragma once
// Parsing of DATABASE_URL / BROKER_URL values that name a SQLite file or a PostgreSQL
// server (see database.hpp for the accepted forms).

#include <map>
#include <string>
#include <string_view>

#include <mercado/core/error.hpp>

namespace mercado::storage {

struct DatabaseUrl {
  enum class Kind : std::uint8_t { sqlite, postgres };
  Kind kind = Kind::sqlite;
  std::string path;                          // sqlite: file path (percent-decoded)
  std::string conninfo;                      // postgres: the URL as libpq takes it
  std::map<std::string, std::string> query;  // sqlite: ?key=value options
  std::string redacted;                      // the URL without its password
};

// invalid_argument for an empty path, an unknown scheme or a malformed query.
Result<DatabaseUrl> parse_database_url(std::string_view url);

// "scheme://user:***@host/..." for logs.
std::string redact_url_password(std::string_view url);

}  // namespace mercado::storage
