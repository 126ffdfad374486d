#include "sql_text.hpp"

namespace mercado::storage::detail {

std::string dollar_to_question(std::string_view sql) {
  std::string out;
  out.reserve(sql.size());
  std::size_t i = 0;
  const std::size_t n = sql.size();
  auto copy_quoted = [&](char quote) {
    out.push_back(sql[i++]);
    while (i < n) {
      char c = sql[i++];
      out.push_back(c);
      if (c == quote) {
        if (i < n && sql[i] == quote) {  // doubled quote = escaped quote
          out.push_back(sql[i++]);
          continue;
        }
        return;
      }
    }
  };
  while (i < n) {
    char c = sql[i];
    if (c == '\'' || c == '"') {
      copy_quoted(c);
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      while (i < n && sql[i] != '\n') out.push_back(sql[i++]);
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      std::size_t end = sql.find("*/", i + 2);
      end = end == std::string_view::npos ? n : end + 2;
      out.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '$' && i + 1 < n && sql[i + 1] >= '0' && sql[i + 1] <= '9') {
      out.push_back('?');
      ++i;
      while (i < n && sql[i] >= '0' && sql[i] <= '9') out.push_back(sql[i++]);
    } else {
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

Error db_error(Errc code, std::string_view type, std::string message, std::string internal) {
  Error e(code, std::move(message));
  e.type = std::string(type);
  e.internal = std::move(internal);
  return e;
}

std::string excerpt(std::string_view sql, std::size_t max) {
  std::string s(sql.substr(0, max));
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (sql.size() > max) s += "...";
  return s;
}

}  // namespace mercado::storage::detail
