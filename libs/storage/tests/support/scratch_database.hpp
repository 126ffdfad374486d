#pragma once
// Test support: fresh, empty databases for the parametrized suites of storage and the
// libraries built on it.
//
//   sqlite   a new file in a new temporary directory (removed afterwards)
//   postgres a new schema on the server named by MERCADO_TEST_POSTGRES_URL, selected
//            through the URL's search_path (dropped afterwards)
//
// When a backend's server URL is not set, tests skip -- unless MERCADO_REQUIRE_SERVERS=1
// (exported by scripts/test-servers.sh start), where they fail. Use it in SetUp():
//
//   void SetUp() override {
//     MERCADO_SCRATCH_OR_SKIP(scratch_, storage::testing::Backend::postgres);
//   }

#include <memory>
#include <optional>
#include <string>

#include <gtest/gtest.h>

namespace mercado::storage::testing {

enum class Backend { sqlite, postgres };
std::string to_string(Backend b);

// Value of an environment variable, empty when unset.
std::string env(const char* name);
// True when MERCADO_REQUIRE_SERVERS=1.
bool servers_required();

// A fresh directory under TMPDIR (or /tmp), removed with everything in it on destruction.
class ScratchDir {
 public:
  ScratchDir();
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
};

class ScratchDatabase {
 public:
  // Empty optional and a reason in `why_not` when the backend is not configured.
  static std::optional<ScratchDatabase> create(Backend backend, std::string& why_not);

  Backend backend() const noexcept { return backend_; }
  // The DATABASE_URL of the scratch database.
  const std::string& url() const noexcept { return url_; }

 private:
  struct PgSchema;  // drops the schema when destroyed
  ScratchDatabase() = default;
  Backend backend_ = Backend::sqlite;
  std::string url_;
  std::shared_ptr<ScratchDir> dir_;     // sqlite
  std::shared_ptr<PgSchema> schema_;    // postgres
};

}  // namespace mercado::storage::testing

// Creates the scratch database into `var` (a std::optional<ScratchDatabase>) or skips / fails
// the test. For use in a fixture's SetUp() or a test body.
#define MERCADO_SCRATCH_OR_SKIP(var, backend)                                                  \
  do {                                                                                         \
    std::string why_not_;                                                                      \
    var = ::mercado::storage::testing::ScratchDatabase::create(backend, why_not_);             \
    if (!var) {                                                                                \
      if (::mercado::storage::testing::servers_required()) FAIL() << why_not_;                 \
      GTEST_SKIP() << why_not_;                                                                \
    }                                                                                          \
  } while (0)
