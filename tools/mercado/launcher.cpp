#include "launcher.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include <mercado/core/io_runtime.hpp>
#include <mercado/core/process.hpp>
#include <mercado/http/client.hpp>

namespace mercado::cli {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::vector<ServiceSpec> shop_services(const LaunchOptions& o) {
  const std::vector<std::string> names = {"user-service", "inventory-service", "payment-service", "shipping-service",
                                          "order-service"};
  std::vector<ServiceSpec> out;
  for (std::size_t i = 0; i < names.size(); ++i) out.push_back({names[i], o.base_port + static_cast<int>(i), {}});
  auto& order = out.back();
  order.env = {{"INVENTORY_URL", url_of(o, "inventory-service")},
               {"PAYMENT_URL", url_of(o, "payment-service")},
               {"SHIPPING_URL", url_of(o, "shipping-service")}};
  return out;
}

std::string url_of(const LaunchOptions& o, std::string_view service) {
  static const std::vector<std::string> order = {"user-service", "inventory-service", "payment-service",
                                                 "shipping-service", "order-service"};
  for (std::size_t i = 0; i < order.size(); ++i) {
    if (order[i] == service) return "http://" + o.host + ":" + std::to_string(o.base_port + static_cast<int>(i));
  }
  return {};
}

std::string ensure_secret(const std::string& data_dir) {
  fs::create_directories(data_dir);
  const std::string path = (fs::path(data_dir) / "jwt.secret").string();
  if (!fs::exists(path)) {
    std::random_device rd;
    std::string secret;
    static constexpr char kHex[] = "0123456789abcdef";
    for (int i = 0; i < 64; ++i) secret += kHex[rd() % 16];
    const std::string tmp = path + ".tmp";
    {
      std::ofstream f(tmp);
      f << secret << "\n";
    }
    ::chmod(tmp.c_str(), 0600);
    fs::rename(tmp, path);
  }
  return path;
}

namespace {

struct Child {
  ServiceSpec spec;
  std::optional<core::Process> process;
  std::vector<std::chrono::steady_clock::time_point> restarts;
  bool given_up = false;
};

std::string self_dir() {
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

Result<core::Process> start(const LaunchOptions& o, const std::string& bin_dir, const std::string& secret,
                            const ServiceSpec& s) {
  core::ProcessOptions p;
  p.path = (fs::path(bin_dir) / s.name).string();
  p.output_path = (fs::path(o.data_dir) / "logs" / (s.name + ".log")).string();
  p.env = {{"HOST", o.host},
           {"PORT", std::to_string(s.port)},
           {"DATA_DIR", o.data_dir},
           {"INSTANCE_ID", s.name + "-1"},
           {"JWT_SECRET_FILE", secret},
           {"LOG_LEVEL", o.log_level},
           {"ACCESS_LOG", o.access_log ? "1" : "0"},
           {"DATABASE_URL", "sqlite://" + (fs::path(o.data_dir) / (s.name + ".db")).string() +
                                "?synchronous=" + o.sqlite_synchronous},
           {"BROKER_URL", "sqlite://" + (fs::path(o.data_dir) / "bus.db").string() + "?synchronous=" + o.sqlite_synchronous}};
  if (o.io_threads != 0) p.env.emplace_back("IO_THREADS", std::to_string(o.io_threads));
  for (const auto& kv : s.env) p.env.push_back(kv);
  return core::Process::spawn(p);
}

asio::awaitable<bool> ready(http::Client& client, const std::string& url) {
  auto r = co_await client.get(url + "/ready");
  co_return r && r->status == 200;
}

}  // namespace

int run_up(const LaunchOptions& input) {
  LaunchOptions o = input;
  o.data_dir = fs::absolute(o.data_dir).string();
  const std::string bin_dir = o.bin_dir.empty() ? self_dir() : o.bin_dir;
  fs::create_directories(fs::path(o.data_dir) / "logs");
  const std::string secret = ensure_secret(o.data_dir);
  asio::io_context ctx(1);
  core::require_io_backend(ctx);  // before any child is started

  std::vector<Child> children;
  for (auto& s : shop_services(o)) children.push_back({s, std::nullopt, {}, false});
  for (auto& c : children) {
    auto p = start(o, bin_dir, secret, c.spec);
    if (!p) {
      std::fprintf(stderr, "mercado: cannot start %s: %s\n", c.spec.name.c_str(), p.error().message.c_str());
      return 1;
    }
    c.process.emplace(std::move(*p));
  }

  http::Client client({.connect_timeout = 500ms, .request_timeout = 2s});
  bool stopping = false;
  int exit_code = 0;

  asio::signal_set signals(ctx, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int) {
    if (ec) return;
    stopping = true;
    std::printf("\nmercado: stopping the services (grace %llds)...\n", static_cast<long long>(o.grace.count()));
    for (auto& c : children) {
      if (c.process && c.process->running()) c.process->signal(SIGTERM);
    }
    for (auto& c : children) {
      if (c.process) c.process->terminate(o.grace);
    }
    ctx.stop();
  });

  asio::co_spawn(ctx, [&]() -> asio::awaitable<void> {
    // Wait for every /ready.
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    for (auto& c : children) {
      const std::string url = "http://" + o.host + ":" + std::to_string(c.spec.port);
      for (;;) {
        if (stopping) break;
        const bool is_ready = co_await ready(client, url);  // not inside &&: GCC 12 (docs/architecture.md)
        if (is_ready) break;
        if (!c.process->running() || std::chrono::steady_clock::now() > deadline) {
          std::fprintf(stderr, "mercado: %s did not become ready; see %s/logs/%s.log\n", c.spec.name.c_str(),
                       o.data_dir.c_str(), c.spec.name.c_str());
          exit_code = 1;
          std::raise(SIGTERM);
          co_return;
        }
        asio::steady_timer t(ctx, 50ms);
        co_await t.async_wait(asio::use_awaitable);
      }
    }
    std::printf("\nMercado is up (data: %s, logs: %s/logs)\n\n", o.data_dir.c_str(), o.data_dir.c_str());
    for (const auto& c : children) {
      std::printf("  %-18s http://%s:%d   (/health /ready /metrics /openapi.json)\n", c.spec.name.c_str(),
                  o.host.c_str(), c.spec.port);
    }
    // The demo needs the same data directory (the token secret) and ports.
    std::string demo = "mercado demo";
    if (o.data_dir != LaunchOptions{}.data_dir) demo += " --data-dir " + o.data_dir;
    if (o.base_port != LaunchOptions{}.base_port) demo += " --base-port " + std::to_string(o.base_port);
    if (o.host != LaunchOptions{}.host) demo += " --host " + o.host;
    std::printf("\n  try: %s   (or the curl walkthrough in README.md)\n  Ctrl-C stops everything.\n\n", demo.c_str());
    std::fflush(stdout);
    // Supervise: restart a child that died, at most 5 times a minute.
    while (!stopping) {
      asio::steady_timer t(ctx, 200ms);
      co_await t.async_wait(asio::use_awaitable);
      for (auto& c : children) {
        if (stopping || c.given_up || c.process->running()) continue;
        auto status = c.process->wait_for(0ms).value_or(-1);
        const auto now = std::chrono::steady_clock::now();
        std::erase_if(c.restarts, [&](auto t0) { return now - t0 > 60s; });
        if (c.restarts.size() >= 5) {
          std::fprintf(stderr, "mercado: %s keeps dying (exit %d); giving up on it\n", c.spec.name.c_str(), status);
          c.given_up = true;
          continue;
        }
        std::fprintf(stderr, "mercado: %s exited (status %d); restarting\n", c.spec.name.c_str(), status);
        c.restarts.push_back(now);
        auto p = start(o, bin_dir, secret, c.spec);
        if (p) c.process.emplace(std::move(*p));
      }
    }
  }, asio::detached);
  ctx.run();
  return exit_code;
}

}  // namespace mercado::cli
