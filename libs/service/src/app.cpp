#include <mercado/service/app.hpp>

#include <cstdio>
#include <cstdlib>
#include <malloc.h>
#include <fstream>

#include <boost/asio/co_spawn.hpp>

#include <mercado/http/otlp_exporter.hpp>
#include <mercado/http/service_routes.hpp>
#include <mercado/observability/log.hpp>

namespace mercado::service {

App::App(std::string name, std::string description) : config_(std::move(name), std::move(description)) {}

App::~App() {
  // The server's coroutines live on the runtime's contexts: stop those first.
  if (runtime_) {
    runtime_->stop();
    runtime_->join();
  }
}

std::optional<int> App::init(int argc, const char* const* argv) {
  if (auto rc = config_.parse(argc, argv)) return rc;
  // With glibc's allocator (MERCADO_ALLOCATOR=system: the sanitizer builds; the others link
  // jemalloc and this does nothing): glibc gives each thread that allocates its own arena
  // (up to 8 per core); a service's few threads then keep several half-empty heaps. Two
  // arenas keep the io threads from contending on one lock and cost 1-3 MiB less under load
  // (bench/RESULTS.md, shop). MALLOC_ARENA_MAX in the environment still decides when set.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  const auto& o = config_.service();
  log::init({.service = o.service_name,
             .instance = o.instance_id,
             .level = log::parse_level(o.log_level).value_or(log::Level::info)});
  try {
    runtime_ = std::make_unique<core::IoRuntime>(o.io_threads, o.io_yield_every);
  } catch (const std::exception& e) {
    log::error("cannot start the io threads", {{"error", e.what()}});
    return 1;
  }
  server_ = std::make_unique<http::Server>(
      *runtime_, http::ServerOptions{.service_name = o.service_name, .access_log = o.access_log});
  readiness_ = std::make_shared<http::Readiness>();
  client_ = std::make_unique<http::Client>();
  obs::register_process_metrics(obs::Registry::global());
  if (!o.otlp_endpoint.empty()) {
    otlp_ = http::OtlpExporter::start(runtime_->context(0), {.endpoint = o.otlp_endpoint,
                                                               .service_name = o.service_name,
                                                               .instance = o.instance_id});
    obs::set_span_exporter(otlp_);
  }
  http::add_service_routes(*server_, {o.service_name, o.instance_id}, readiness_);
  return std::nullopt;
}

void App::on_shutdown(std::function<boost::asio::awaitable<void>()> hook) {
  shutdown_hooks_.push_back(std::move(hook));
}

boost::asio::awaitable<void> App::finish() {
  for (auto it = shutdown_hooks_.rbegin(); it != shutdown_hooks_.rend(); ++it) {
    try {
      co_await (*it)();
    } catch (const std::exception& e) {
      log::error("shutdown step failed", {{"error", e.what()}});
    }
  }
  if (otlp_) {
    // Send the spans of the last requests before stopping.
    otlp_->stop();
    co_await otlp_->flush();
  }
}

std::string App::base_url() const {
  return "http://" + config_.service().host + ":" + std::to_string(port_);
}

int App::run() {
  const auto& o = config_.service();
  auto port = server_->listen(o.host, o.port);
  if (!port) {
    log::error("cannot start", {{"error", port.error().message}});
    std::fprintf(stderr, "%s: %s\n", o.service_name.c_str(), port.error().message.c_str());
    return 1;
  }
  port_ = *port;
  runtime_->on_shutdown_signal([this](int signo) {
    log::info("signal received, draining", {{"signal", signo}});
    server_->shutdown(config_.service().shutdown_grace(), [this] {
      boost::asio::co_spawn(runtime_->context(0), finish(), [this](std::exception_ptr) { runtime_->stop(); });
    });
  });
  log::info("listening", {{"url", base_url()},
                          {"io_threads", o.io_threads},
                          {"health", base_url() + "/health"},
                          {"ready", base_url() + "/ready"},
                          {"metrics", base_url() + "/metrics"}});
  if (!o.ready_file.empty()) {
    std::string tmp = o.ready_file + ".tmp";
    std::ofstream(tmp) << base_url() << "\n";
    std::rename(tmp.c_str(), o.ready_file.c_str());
  }
  runtime_->run();
  log::info("stopped");
  return 0;
}

}  // namespace mercado::service
