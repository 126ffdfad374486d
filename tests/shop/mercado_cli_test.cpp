// The `mercado` command as a user runs it (issue: "The shop, end to end"): `mercado up`
// starts the five services, waits for every /ready and prints their URLs, restarts a service
// that dies and stops everything on Ctrl-C; `mercado demo` and `mercado loadgen` run against
// it; a command that cannot start ends with its reason and exit status 1.
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include <mercado/core/process.hpp>

#include "shop_harness.hpp"

namespace shop::testing {
namespace {

namespace fs = std::filesystem;
using mercado::core::Process;
using namespace std::chrono_literals;

const std::vector<std::string> kServices = {"user-service", "inventory-service", "payment-service",
                                            "shipping-service", "order-service"};

std::string slurp(const fs::path& path) {
  std::ifstream f(path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

std::size_t count_of(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size()))
    ++n;
  return n;
}

// The pid of `parent`'s child whose executable is `name` (0: none).
pid_t child_named(pid_t parent, const std::string& name) {
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    // pid (comm) state ppid ...: comm may hold spaces, so parse after the last ')'.
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 1));
    std::string state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != parent) continue;
    std::error_code ec;
    if (fs::read_symlink(entry.path() / "exe", ec).filename() == name)
      return static_cast<pid_t>(std::stoi(pid));
  }
  return 0;
}

class MercadoCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() /
           ("mercado-cli-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (HasFailure()) {  // kept, with the services' logs, for whoever reads the failure
      std::printf("mercado_cli_test: output and logs kept in %s\n", dir_.c_str());
      return;
    }
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Runs `mercado args...` with its output in `log` (under the test's directory).
  Process mercado(const std::vector<std::string>& args, const std::string& log) {
    auto p = Process::spawn({.path = std::string(SHOP_BIN_DIR) + "/mercado",
                             .args = args,
                             .env = {},
                             .output_path = (dir_ / log).string()});
    if (!p) throw std::runtime_error("cannot start mercado: " + p.error().message);
    return std::move(*p);
  }
  std::string output(const std::string& log) const { return slurp(dir_ / log); }
  // `log`, then the end of every service's log (for failure messages).
  std::string output_and_service_logs(const std::string& log) const {
    std::string out = output(log);
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(dir_ / "data" / "logs", ec)) {
      const std::string text = slurp(entry.path());
      out += "\n--- " + entry.path().filename().string() + " (end) ---\n" +
             text.substr(text.size() > 3000 ? text.size() - 3000 : 0);
    }
    return out;
  }

  // Waits until `log` contains `needle`; false if `p` exits first or after `timeout`.
  bool wait_for_output(Process& p, const std::string& log, const std::string& needle,
                       std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (output(log).find(needle) != std::string::npos) return true;
      if (!p.running()) return output(log).find(needle) != std::string::npos;
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  fs::path dir_;
};

TEST_F(MercadoCliTest, UpRunsTheShopForDemoAndLoadgenRestartsADeadServiceAndStopsOnCtrlC) {
  const int base = free_ports_below_ephemeral_range(static_cast<int>(kServices.size()));
  const std::string data = (dir_ / "data").string();
  const std::vector<std::string> where = {"--data-dir", data, "--base-port", std::to_string(base)};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.end(), where.begin(), where.end());
    return args;
  };
  Process up = mercado(with({"up", "--log-level", "warn"}), "up.log");
  ASSERT_TRUE(wait_for_output(up, "up.log", "Ctrl-C stops everything", 120s))
      << output_and_service_logs("up.log");

  // Every service's URL is printed, and every one is ready.
  const std::string printed = output("up.log");
  for (std::size_t i = 0; i < kServices.size(); ++i) {
    const std::string url = "http://127.0.0.1:" + std::to_string(base + static_cast<int>(i));
    EXPECT_NE(printed.find(kServices[i]), std::string::npos) << printed;
    EXPECT_NE(printed.find(url), std::string::npos) << printed;
    EXPECT_EQ(call("GET", url + "/ready").status, 200) << kServices[i];
    EXPECT_TRUE(fs::exists(fs::path(data) / (kServices[i] + ".db")))
        << "own SQLite file of " << kServices[i];
  }
  // The demo command it suggests is the one that works against this shop.
  EXPECT_NE(printed.find("try: mercado demo --data-dir " + data + " --base-port " + std::to_string(base)), std::string::npos)
      << printed;

  // `mercado demo`: the happy path and the three failure paths, then the same
  // Idempotency-Key twice giving one order.
  Process demo = mercado(with({"demo"}), "demo.log");
  ASSERT_EQ(demo.wait_for(180s), 0) << output("demo.log");
  const std::string shown = output("demo.log");
  EXPECT_EQ(count_of(shown, "\"status\":\"CONFIRMED\""), 2U)
      << shown;  // the happy path and the idempotent one
  EXPECT_EQ(count_of(shown, "\"status\":\"CANCELLED\""), 3U) << shown;
  for (const char* reason : {"insufficient-stock", "insufficient-funds", "shipping-refused"}) {
    EXPECT_NE(shown.find(reason), std::string::npos) << reason << "\n" << shown;
  }
  std::smatch same;
  ASSERT_TRUE(std::regex_search(
      shown, same, std::regex(R"(the same POST again -> HTTP 202, id (\S+) \(first was (\S+)\))")))
      << shown;
  EXPECT_EQ(same[1].str(), same[2].str());
  // ... and another order under that key is refused, placing nothing.
  EXPECT_NE(shown.find("with that key -> HTTP 422"), std::string::npos) << shown;
  EXPECT_NE(shown.find("idempotency-key-reused"), std::string::npos) << shown;

  // `mercado loadgen`: a short closed-loop run whose every order is confirmed.
  Process load = mercado(with({"loadgen", "--clients", "2", "--duration", "2", "--warmup", "0"}),
                         "loadgen.log");
  ASSERT_EQ(load.wait_for(120s), 0) << output("loadgen.log");
  std::smatch result;
  const std::string measured = output("loadgen.log");
  ASSERT_TRUE(std::regex_search(
      measured, result,
      std::regex(R"(\((\d+) confirmed, (\d+) cancelled, (\d+) errors, (\d+) timeouts\))")))
      << measured;
  EXPECT_GT(std::stoi(result[1].str()), 0) << measured;
  EXPECT_EQ(result[2].str() + result[3].str() + result[4].str(), "000") << measured;

  // A service that dies is restarted and serves again.
  const pid_t killed = child_named(up.pid(), "order-service");
  ASSERT_NE(killed, 0);
  ASSERT_EQ(::kill(killed, SIGKILL), 0);
  ASSERT_TRUE(wait_for_output(up, "up.log", "order-service exited (status 137); restarting", 30s))
      << output("up.log");
  const std::string order_url = "http://127.0.0.1:" + std::to_string(base + 4);
  bool ready_again = false;
  for (int i = 0; i < 1500 && !ready_again; ++i) {
    ready_again = call("GET", order_url + "/ready").status == 200;
    if (!ready_again) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(ready_again) << output("up.log");
  const pid_t restarted = child_named(up.pid(), "order-service");
  EXPECT_NE(restarted, 0);
  EXPECT_NE(restarted, killed);

  // Ctrl-C: every service stops and `mercado up` exits 0.
  up.signal(SIGINT);
  ASSERT_EQ(up.wait_for(90s), 0) << output("up.log");
  EXPECT_NE(output("up.log").find("stopping the services"), std::string::npos);
  for (std::size_t i = 0; i < kServices.size(); ++i) {
    const std::string url = "http://127.0.0.1:" + std::to_string(base + static_cast<int>(i));
    EXPECT_EQ(call("GET", url + "/health").status, 0) << kServices[i] << " still answers";
  }
}

TEST_F(MercadoCliTest, ACommandThatCannotStartSaysWhyAndExitsOne) {
  // A data directory that cannot be created (under /proc).
  Process up =
      mercado({"up", "--data-dir", "/proc/mercado-cannot-be-here", "--base-port", "1"}, "up.log");
  EXPECT_EQ(up.wait_for(30s), 1) << output("up.log");
  EXPECT_NE(output("up.log").find("mercado up: "), std::string::npos) << output("up.log");
  EXPECT_NE(output("up.log").find("/proc/mercado-cannot-be-here"), std::string::npos)
      << output("up.log");
  // No shop there: the demo says what it needs.
  Process demo = mercado({"demo", "--data-dir", (dir_ / "empty").string()}, "demo.log");
  EXPECT_EQ(demo.wait_for(30s), 1) << output("demo.log");
  EXPECT_NE(output("demo.log").find("is `mercado up` running"), std::string::npos)
      << output("demo.log");
}

}  // namespace
}  // namespace shop::testing
