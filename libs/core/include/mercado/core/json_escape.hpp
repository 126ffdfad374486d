#pragma once
// The one JSON string escaper of the project (log lines, the JSON codec): appends `s` as the
// body of a JSON string (no quotes). Escapes '"', '\\', control characters (short forms for
// \n \r \t \b \f, \u00XX otherwise) and DEL; copies runs of plain bytes at once.

#include <string>
#include <string_view>

namespace mercado::core {

void append_json_escaped(std::string& out, std::string_view s);

}  // namespace mercado::core
