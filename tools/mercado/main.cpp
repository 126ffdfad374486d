// mercado: the shop's launcher and demo.
//   mercado up     [--data-dir DIR] [--base-port 8001] ...   run the five services
//   mercado demo   [--data-dir DIR] [--base-port 8001]       exercise them, step by step
//   mercado loadgen [--clients N --duration S]               closed-loop order load
//   mercado token  [--data-dir DIR]                          print a service token (for curl)
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>

#include <mercado/auth/jwt.hpp>
#include <mercado/auth/service_token.hpp>

#include "demo.hpp"
#include "launcher.hpp"
#include "loadgen.hpp"

namespace {

using namespace mercado::cli;

int print_token(const LaunchOptions& o) {
  auto secret = mercado::auth::load_secret((std::filesystem::path(o.data_dir) / "jwt.secret").string(), "");
  if (!secret) {
    std::fprintf(stderr, "mercado token: %s\n", secret.error().message.c_str());
    return 1;
  }
  mercado::auth::JwtIssuer issuer(*secret, "mercado", std::chrono::hours(1));
  mercado::auth::ServiceToken t(issuer, "operator");
  std::printf("%s\n", t.authorization().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Mercado: run and explore the shop", "mercado");
  app.require_subcommand(1);
  LaunchOptions o;
  auto add_common = [&](CLI::App* sub) {
    sub->add_option("--data-dir", o.data_dir, "Data directory (databases, bus, logs, secret)")
        ->envname("MERCADO_DATA_DIR")
        ->capture_default_str();
    sub->add_option("--base-port", o.base_port, "First service port (user; then inventory, payment, shipping, order)")
        ->capture_default_str();
    sub->add_option("--host", o.host, "Address the services listen on")->capture_default_str();
  };
  auto* up = app.add_subcommand("up", "Start every service and supervise them until Ctrl-C");
  add_common(up);
  up->add_option("--bin-dir", o.bin_dir, "Directory of the service executables (default: next to mercado)");
  up->add_option("--log-level", o.log_level, "Services' log level")->capture_default_str();
  up->add_option("--io-threads", o.io_threads, "I/O threads per service (0: one per core; default 1, as the services share the machine)");
  up->add_option("--access-log", o.access_log, "Services log one line per request")->capture_default_str();
  up->add_option("--sqlite-synchronous", o.sqlite_synchronous,
                 "full: every commit survives power loss; normal: survives process crashes (faster)")
      ->check(CLI::IsMember({"full", "normal"}));
  auto* demo = app.add_subcommand("demo", "Run the happy path and each failure path against the running shop");
  add_common(demo);
  LoadOptions load;
  auto* loadgen = app.add_subcommand("loadgen", "Closed-loop order load against the running shop; prints orders/s, latency, RSS");
  add_common(loadgen);
  loadgen->add_option("--clients", load.clients, "Concurrent clients")->capture_default_str();
  int duration = 20, warmup = 3;
  loadgen->add_option("--duration", duration, "Measured seconds")->capture_default_str();
  loadgen->add_option("--warmup", warmup, "Warm-up seconds (not measured)")->capture_default_str();
  auto* token = app.add_subcommand("token", "Print a service token (Authorization header value) for internal endpoints");
  add_common(token);
  CLI11_PARSE(app, argc, argv);

  // What cannot start (an io_uring build on a host that forbids io_uring, no threads left…)
  // ends the command with its reason instead of std::terminate.
  try {
    if (up->parsed()) return run_up(o);
    if (demo->parsed()) return run_demo(o);
    if (loadgen->parsed()) {
      load.duration = std::chrono::seconds(duration);
      load.warmup = std::chrono::seconds(warmup);
      return run_loadgen(o, load);
    }
    if (token->parsed()) return print_token(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mercado %s: %s\n", app.get_subcommands().front()->get_name().c_str(), e.what());
    return 1;
  }
  return 2;
}
