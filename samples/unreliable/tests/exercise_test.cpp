// Ejercicio 1 end to end with real processes: unreliable-service fails 70 % of calls; the
// exercise's breaker opens, fails fast while OPEN (those calls never reach the service, as
// the service's own /metrics confirm), tries again after the timeout and closes on
// recovery.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <mercado/core/process.hpp>
#include <mercado/http/client.hpp>

#include "exercise.hpp"

namespace {

namespace fs = std::filesystem;
namespace http = mercado::http;
using mercado::core::Process;
using mercado::resilience::CircuitState;
using namespace std::chrono_literals;

struct Service {
  Process process;
  std::string url;
};

Service start_service(const std::string& name, const std::string& failure_rate, const std::string& fail_first = "0") {
  const fs::path dir = fs::path(::testing::TempDir()) / ("unreliable-" + name + "-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string ready = (dir / "ready").string();
  fs::remove(ready);
  auto p = Process::spawn({.path = UNRELIABLE_SERVICE_BIN,
                           .args = {"--failure-rate", failure_rate, "--fail-first", fail_first, "--seed", "7"},
                           .env = {{"PORT", "0"}, {"READY_FILE", ready}, {"IO_THREADS", "1"}, {"ACCESS_LOG", "false"}},
                           .output_path = (dir / "service.log").string()});
  if (!p) throw std::runtime_error(p.error().message);
  if (!mercado::core::wait_for_file(ready, 20s)) throw std::runtime_error("unreliable-service did not become ready");
  std::ifstream in(ready);
  std::string url;
  std::getline(in, url);
  return {std::move(*p), url};
}

// The service's own count of GET /work answers with this status.
std::uint64_t served(const std::string& base_url, int status) {
  boost::asio::io_context ctx;
  http::Client client;
  http::ClientResult r = std::unexpected(http::ClientError{http::ClientErrc::cancelled, "not run"});
  boost::asio::co_spawn(ctx, client.get(base_url + "/metrics"), [&](std::exception_ptr, http::ClientResult res) { r = std::move(res); });
  ctx.run();
  if (!r) throw std::runtime_error(r.error().message);
  const std::regex line("http_requests_total\\{method=\"GET\",endpoint=\"/work\",status_code=\"" + std::to_string(status) +
                        "\"\\} ([0-9]+)");
  std::smatch m;
  return std::regex_search(r->body, m, line) ? std::stoull(m[1]) : 0;
}

TEST(Exercise1, TheBreakerOpensFailsFastRetriesAfterTheTimeoutAndRecovers) {
  Service svc = start_service("70", "0.7");
  unreliable::ExerciseOptions o;
  o.base_url = svc.url;
  o.calls = 150;
  o.interval = 5ms;
  o.breaker = mercado::resilience::CircuitBreakerConfig::consecutive(5, 100ms, 3);
  mercado::obs::Registry metrics;
  std::ostringstream out;
  const auto report = unreliable::run_exercise(o, metrics, out);

  EXPECT_EQ(report.success + report.failure + report.not_permitted, 150U) << out.str();
  EXPECT_EQ(report.ignored, 0U);
  EXPECT_EQ(report.timeline.size(), 150U);
  EXPECT_GT(report.not_permitted, 0U) << out.str();

  // Every transition is one the chapter's breaker can make, in a connected chain.
  ASSERT_FALSE(report.transitions.empty()) << out.str();
  EXPECT_EQ(report.transitions[0].from, CircuitState::closed);
  EXPECT_EQ(report.transitions[0].to, CircuitState::open);
  EXPECT_EQ(report.transitions[0].reason, "5 consecutive failures");
  bool saw_half_open = false;
  for (std::size_t i = 0; i < report.transitions.size(); ++i) {
    const auto& t = report.transitions[i];
    if (i > 0) {
      EXPECT_EQ(report.transitions[i - 1].to, t.from);
    }
    saw_half_open |= t.to == CircuitState::half_open;
    EXPECT_TRUE((t.from == CircuitState::closed && t.to == CircuitState::open) ||
                (t.from == CircuitState::open && t.to == CircuitState::half_open) ||
                (t.from == CircuitState::half_open && (t.to == CircuitState::open || t.to == CircuitState::closed)));
    EXPECT_NE(out.str().find(std::string(to_string(t.from)) + " -> " + std::string(to_string(t.to))), std::string::npos);
  }
  EXPECT_TRUE(saw_half_open) << out.str();

  // Calls failed fast by the breaker never reached the service.
  EXPECT_EQ(served(svc.url, 200), report.success);
  EXPECT_EQ(served(svc.url, 503), report.failure);
  EXPECT_NE(out.str().find("outcomes: success " + std::to_string(report.success)), std::string::npos);
  svc.process.terminate(5s);
}

TEST(Exercise1, AfterAnOutageTheBreakerClosesAgain) {
  Service svc = start_service("outage", "0", "5");  // 5 failures, then healthy
  unreliable::ExerciseOptions o;
  o.base_url = svc.url;
  o.calls = 60;
  o.interval = 5ms;
  o.breaker = mercado::resilience::CircuitBreakerConfig::consecutive(5, 100ms, 3);
  mercado::obs::Registry metrics;
  std::ostringstream out;
  const auto report = unreliable::run_exercise(o, metrics, out);
  ASSERT_EQ(report.transitions.size(), 3U) << out.str();
  EXPECT_EQ(report.transitions[0].call, 5);
  EXPECT_EQ(report.transitions[1].to, CircuitState::half_open);
  EXPECT_EQ(report.transitions[2].from, CircuitState::half_open);
  EXPECT_EQ(report.transitions[2].to, CircuitState::closed);
  EXPECT_EQ(report.transitions[2].reason, "3 consecutive successes in HALF_OPEN");
  EXPECT_EQ(report.failure, 5U);
  EXPECT_GT(report.not_permitted, 0U);
  EXPECT_EQ(report.success + report.not_permitted, 55U);
  EXPECT_TRUE(report.timeline.starts_with("xxxxx-")) << report.timeline;
  EXPECT_TRUE(report.timeline.ends_with("...")) << report.timeline;
  EXPECT_EQ(served(svc.url, 503), 5U);
  EXPECT_EQ(served(svc.url, 200), report.success);
  svc.process.terminate(5s);
}

TEST(Exercise1, AHealthyServiceNeverTripsTheBreaker) {
  Service svc = start_service("0", "0");
  unreliable::ExerciseOptions o;
  o.base_url = svc.url;
  o.calls = 30;
  o.interval = 1ms;
  mercado::obs::Registry metrics;
  std::ostringstream out;
  const auto report = unreliable::run_exercise(o, metrics, out);
  EXPECT_EQ(report.success, 30U);
  EXPECT_TRUE(report.transitions.empty());
  EXPECT_EQ(report.timeline, std::string(30, '.'));
  svc.process.terminate(5s);
}

TEST(Exercise1, TheClientExecutablePrintsTransitionsAndCounts) {
  Service svc = start_service("client", "1");
  const fs::path out_path = fs::path(::testing::TempDir()) / ("unreliable-client-" + std::to_string(::getpid()) + ".out");
  fs::remove(out_path);
  auto client = Process::spawn({.path = UNRELIABLE_CLIENT_BIN,
                                .args = {"--url", svc.url, "--calls", "12", "--interval-ms", "1", "--timeout", "60"},
                                .output_path = out_path.string()});
  ASSERT_TRUE(client) << client.error().message;
  ASSERT_EQ(client->wait_for(30s), 0);
  std::ifstream in(out_path);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("CLOSED -> OPEN"), std::string::npos) << text;
  EXPECT_NE(text.find("5 consecutive failures"), std::string::npos) << text;
  EXPECT_NE(text.find("xxxxx-------"), std::string::npos) << text;
  EXPECT_NE(text.find("outcomes: success 0, failure 5, not_permitted 7, ignored 0  (total 12)"), std::string::npos) << text;
  EXPECT_EQ(served(svc.url, 503), 5U);
  svc.process.terminate(5s);
}

}  // namespace
