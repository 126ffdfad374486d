// The `mercado` command of an io_uring build (-DMERCADO_IO_BACKEND=io_uring) on a host where
// io_uring is blocked, as a container runtime's default seccomp profile blocks it: `up`,
// `demo` and `loadgen` stop before starting anything, say why and what to do, and exit 1.
// Built and run only in io_uring builds (scripts/test.sh runs them after the main suite).
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <gtest/gtest.h>

#include <mercado/core/process.hpp>

#include "forbid_io_uring.hpp"
#include "shop_harness.hpp"

namespace shop::testing {
namespace {

namespace fs = std::filesystem;
using mercado::core::Process;
using namespace std::chrono_literals;

class MercadoIoUringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!mercado::testing::can_forbid_io_uring())
      GTEST_SKIP() << "no seccomp filter for this architecture";
    std::random_device rd;
    dir_ = fs::temp_directory_path() /
           ("mercado-io-uring-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }

  // Runs `mercado args...` (under without-io-uring when `blocked`); returns its exit status
  // and leaves its output in `output_`.
  int run(const std::vector<std::string>& args, bool blocked) {
    const std::string mercado = std::string(SHOP_BIN_DIR) + "/mercado";
    std::vector<std::string> argv = args;
    if (blocked) argv.insert(argv.begin(), mercado);
    const fs::path log = dir_ / ("run-" + std::to_string(++runs_) + ".log");
    auto p = Process::spawn({.path = blocked ? std::string(WITHOUT_IO_URING) : mercado,
                             .args = argv,
                             .env = {},
                             .output_path = log.string()});
    if (!p) throw std::runtime_error("cannot start mercado: " + p.error().message);
    const auto status = p->wait_for(60s);
    std::ifstream f(log);
    std::ostringstream s;
    s << f.rdbuf();
    output_ = s.str();
    return status.value_or(-1);
  }

  static bool says_io_uring_is_blocked(const std::string& output) {
    return output.find("io_uring is not available here") != std::string::npos &&
           output.find("MERCADO_IO_BACKEND=epoll") != std::string::npos;
  }

  fs::path dir_;
  std::string output_;
  int runs_ = 0;
};

TEST_F(MercadoIoUringTest, UpStopsBeforeStartingAnyServiceAndSaysWhatToDo) {
  const fs::path data = dir_ / "data";
  const int base = free_ports_below_ephemeral_range(5);
  EXPECT_EQ(run({"up", "--data-dir", data.string(), "--base-port", std::to_string(base)}, true), 1)
      << output_;
  EXPECT_TRUE(says_io_uring_is_blocked(output_)) << output_;
  // No service was started: none has a log or a database, none answers. (The data directory
  // may not exist at all, should `up` check the io backend before creating it.)
  std::size_t files = 0;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(data, ec)) {
    if (entry.is_regular_file() && entry.path().filename() != "jwt.secret") ++files;
  }
  EXPECT_EQ(files, 0u) << "files under " << data;
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(call("GET", "http://127.0.0.1:" + std::to_string(base + i) + "/health").status, 0);
  }
}

TEST_F(MercadoIoUringTest, DemoAndLoadgenStopAtStartAndSayWhatToDo) {
  // A data directory as `mercado up` leaves it (its JWT secret), with no shop running.
  const std::string data = (dir_ / "data").string();
  fs::create_directories(data);
  std::ofstream(dir_ / "data" / "jwt.secret") << std::string(64, 'a') << "\n";
  const std::string base = std::to_string(free_ports_below_ephemeral_range(5));
  EXPECT_EQ(run({"demo", "--data-dir", data, "--base-port", base}, true), 1) << output_;
  EXPECT_TRUE(says_io_uring_is_blocked(output_)) << output_;
  EXPECT_EQ(run({"loadgen", "--data-dir", data, "--base-port", base, "--duration", "1"}, true), 1)
      << output_;
  EXPECT_TRUE(says_io_uring_is_blocked(output_)) << output_;
  // The control: without the filter the same demo gets past the io backend and fails where
  // it should here, at its first call (no shop is running).
  EXPECT_EQ(run({"demo", "--data-dir", data, "--base-port", base}, false), 1) << output_;
  EXPECT_FALSE(says_io_uring_is_blocked(output_)) << output_;
  EXPECT_NE(output_.find("POST /users -> (no answer: cannot connect to 127.0.0.1:" + base),
            std::string::npos)
      << output_;
}

}  // namespace
}  // namespace shop::testing
