#include <mercado/storage/database_url.hpp>

namespace mercado::storage {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return fail(Errc::invalid_argument, "bad percent-escape in URL");
    int hi = hex_digit(s[i + 1]);
    int lo = hex_digit(s[i + 2]);
    if (hi < 0 || lo < 0) return fail(Errc::invalid_argument, "bad percent-escape in URL");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

}  // namespace

std::string redact_url_password(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  auto auth_begin = scheme_end + 3;
  auto auth_end = url.find_first_of("/?#", auth_begin);
  if (auth_end == std::string_view::npos) auth_end = url.size();
  auto at = url.rfind('@', auth_end);
  if (at == std::string_view::npos || at < auth_begin) return std::string(url);
  auto colon = url.find(':', auth_begin);
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  return std::string(url.substr(0, colon + 1)) + "***" + std::string(url.substr(at));
}

Result<DatabaseUrl> parse_database_url(std::string_view url) {
  DatabaseUrl out;
  out.redacted = redact_url_password(url);
  if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
    out.kind = DatabaseUrl::Kind::postgres;
    out.conninfo = std::string(url);
    return out;
  }
  constexpr std::string_view kSqlite = "sqlite://";
  if (!url.starts_with(kSqlite)) {
    return fail(Errc::invalid_argument,
                "unsupported database URL '" + out.redacted +
                    "' (use sqlite:///path/file.db or postgres://user:pass@host:5432/db)");
  }
  std::string_view rest = url.substr(kSqlite.size());
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  auto path = percent_decode(rest);
  if (!path) return std::unexpected(path.error());
  if (path->empty()) return fail(Errc::invalid_argument, "sqlite URL without a file path");
  out.kind = DatabaseUrl::Kind::sqlite;
  out.path = std::move(*path);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    if (eq == std::string_view::npos) {
      return fail(Errc::invalid_argument, "URL option without a value: " + std::string(pair));
    }
    auto key = percent_decode(pair.substr(0, eq));
    auto value = percent_decode(pair.substr(eq + 1));
    if (!key || !value) return fail(Errc::invalid_argument, "bad percent-escape in URL options");
    out.query[*key] = *value;
  }
  return out;
}

}  // namespace mercado::storage
