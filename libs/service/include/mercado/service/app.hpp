#pragma once
// The wiring every Mercado executable shares, so that main() stays a few lines:
// configuration (env + flags), JSON logging, the io runtime, the HTTP server with
// /health /ready /metrics, process metrics, an outbound HTTP client, and a graceful
// shutdown on SIGINT/SIGTERM.
//
//   int main(int argc, char** argv) {
//     mercado::service::App app("hello-service", "Says hello");
//     std::string word = "Hello";
//     app.config().cli().add_option("--greeting", word)->envname("GREETING");
//     if (auto rc = app.init(argc, argv)) return *rc;
//     hello::register_routes(app, word);
//     return app.run();
//   }

#include <memory>
#include <functional>
#include <optional>
#include <vector>
#include <string>

#include <mercado/core/config.hpp>
#include <mercado/core/io_runtime.hpp>
#include <mercado/http/client.hpp>
#include <mercado/http/otlp_exporter.hpp>
#include <mercado/http/readiness.hpp>
#include <mercado/http/server.hpp>
#include <mercado/observability/metrics.hpp>

namespace mercado::service {

class App {
 public:
  App(std::string name, std::string description);
  ~App();
  App(const App&) = delete;
  App& operator=(const App&) = delete;

  // Add executable-specific options here before init().
  core::Config& config() noexcept { return config_; }
  const core::ServiceOptions& options() const noexcept { return config_.service(); }

  // Parses configuration and builds the runtime, logger and server. Returns an exit code
  // when the process should end now (--help, bad flags).
  std::optional<int> init(int argc, const char* const* argv);

  // Available after init().
  core::IoRuntime& runtime() noexcept { return *runtime_; }
  http::Server& server() noexcept { return *server_; }
  http::Router& router() noexcept { return server_->router(); }
  http::Readiness& readiness() noexcept { return *readiness_; }
  http::Client& client() noexcept { return *client_; }
  obs::Registry& metrics() noexcept { return obs::Registry::global(); }

  // Runs `hook` during a graceful shutdown, after the HTTP server has drained and before
  // the io threads stop (hooks run in reverse order of registration: close what was opened
  // last first). Use it to stop consumers, relays, sagas, and to close the bus.
  void on_shutdown(std::function<boost::asio::awaitable<void>()> hook);

  // Listens on HOST:PORT, announces the URL (log line and READY_FILE), serves until
  // SIGINT/SIGTERM, then shuts down gracefully. Returns the process exit code.
  int run();
  // The base URL once listening ("http://127.0.0.1:8000").
  std::string base_url() const;

 private:
  core::Config config_;
  std::unique_ptr<core::IoRuntime> runtime_;
  std::unique_ptr<http::Server> server_;
  std::shared_ptr<http::Readiness> readiness_;
  std::unique_ptr<http::Client> client_;
  std::shared_ptr<http::OtlpExporter> otlp_;
  std::vector<std::function<boost::asio::awaitable<void>()>> shutdown_hooks_;
  boost::asio::awaitable<void> finish();
  std::uint16_t port_ = 0;
};

}  // namespace mercado::service
