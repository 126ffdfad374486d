// End to end with real processes: a traceparent sent to service A travels to service B
// (A's /chain calls B's /hello) and shows up in both services' JSON log lines.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <mercado/core/process.hpp>
#include <mercado/http/client.hpp>

namespace {

namespace fs = std::filesystem;
namespace http = mercado::http;
using mercado::core::Process;
using namespace std::chrono_literals;

struct Service {
  Process process;
  std::string url;
  std::string log_path;
};

Service start(const fs::path& dir, const std::string& name, std::vector<std::pair<std::string, std::string>> env) {
  std::string ready = (dir / (name + ".ready")).string();
  std::string log = (dir / (name + ".log")).string();
  env.emplace_back("PORT", "0");
  env.emplace_back("READY_FILE", ready);
  env.emplace_back("INSTANCE_ID", name);
  env.emplace_back("IO_THREADS", "1");
  auto p = Process::spawn({.path = HELLO_SERVICE_BIN, .env = env, .output_path = log});
  if (!p) throw std::runtime_error(p.error().message);
  if (!mercado::core::wait_for_file(ready, 20s)) throw std::runtime_error(name + " did not become ready");
  std::ifstream in(ready);
  std::string url;
  std::getline(in, url);
  return {std::move(*p), url, log};
}

http::ClientResult call(const std::string& url, const mercado::obs::TraceContext* parent) {
  boost::asio::io_context ctx;
  http::Client client;
  http::ClientResult out = std::unexpected(http::ClientError{http::ClientErrc::cancelled, "not run"});
  boost::asio::co_spawn(ctx, client.get(url, parent), [&](std::exception_ptr, http::ClientResult r) { out = std::move(r); });
  ctx.run();
  return out;
}

std::vector<boost::json::object> log_lines(const std::string& path) {
  std::vector<boost::json::object> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with('{')) out.push_back(boost::json::parse(line).as_object());
  }
  return out;
}

TEST(HelloChain, TraceparentTravelsThroughTwoServicesIntoTheirLogs) {
  fs::path dir = fs::path(::testing::TempDir()) / ("chain_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  Service b = start(dir, "hello-b", {{"GREETING", "Hola"}});
  Service a = start(dir, "hello-a", {{"UPSTREAM_URL", b.url}});

  auto parent = *mercado::obs::TraceContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  auto res = call(a.url + "/chain/ana", &parent);
  ASSERT_TRUE(res) << res.error().message;
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(boost::json::parse(res->body).at("message").as_string(), "Hola, ana!");

  // Graceful stop flushes and ends both processes with exit code 0.
  EXPECT_EQ(a.process.terminate(10s), 0);
  EXPECT_EQ(b.process.terminate(10s), 0);

  const std::string trace = "0af7651916cd43dd8448eb211c80319c";
  auto count_trace = [&](const std::string& path, std::string_view service) {
    int n = 0;
    for (const auto& l : log_lines(path)) {
      if (l.contains("trace_id") && l.at("trace_id").as_string() == trace) {
        EXPECT_EQ(l.at("service").as_string(), service);
        ++n;
      }
    }
    return n;
  };
  EXPECT_GE(count_trace(a.log_path, "hello-service"), 2) << "A logs the upstream call and the request";
  EXPECT_GE(count_trace(b.log_path, "hello-service"), 1) << "B logs the request it served";
  // B's request line names A's client span as parent only indirectly; its trace id is ours.
  bool b_request_logged = false;
  for (const auto& l : log_lines(b.log_path)) {
    if (l.at("msg").as_string() == "request" && l.contains("trace_id") && l.at("trace_id").as_string() == trace) {
      EXPECT_EQ(l.at("fields").at("route").as_string(), "/hello/{name}");
      b_request_logged = true;
    }
  }
  EXPECT_TRUE(b_request_logged);
  fs::remove_all(dir);
}

}  // namespace
