#pragma once
#include <string>

namespace mercado::core {

// A new UUID in canonical lowercase form: version 7 (RFC 9562), i.e. the Unix time in
// milliseconds in the first 48 bits, then 74 random bits. Ids made later sort later, so
// database indexes on them grow at their right edge: a group of new orders lands in one or
// two B-tree leaf pages instead of one page each (each page is a 4 KiB WAL frame at commit).
// Their creation time is visible in them; they are identifiers, never secrets. Thread-safe.
std::string new_uuid();

}  // namespace mercado::core
