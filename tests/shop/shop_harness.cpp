#include "shop_harness.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mercado/auth/jwt.hpp>
#include <mercado/auth/service_token.hpp>

namespace shop::testing {

namespace fs = std::filesystem;
namespace bj = boost::json;
namespace http = mercado::http;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> kServices = {"user-service", "inventory-service", "payment-service", "shipping-service",
                                            "order-service"};

bool port_is_free(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool free = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return free;
}

}  // namespace

int free_ports_below_ephemeral_range(int count) {
  int low = 32768;
  if (std::ifstream range("/proc/sys/net/ipv4/ip_local_port_range"); range) range >> low;
  if (low <= 12000) throw std::runtime_error("the ephemeral port range starts at " + std::to_string(low));
  std::random_device rd;
  for (int i = 0; i < 200; ++i) {
    const int first = low - 10000 + static_cast<int>(rd() % static_cast<unsigned>(10000 - count));
    bool all = true;
    for (int p = first; all && p < first + count; ++p) all = port_is_free(p);
    if (all) return first;
  }
  throw std::runtime_error("no free ports below the ephemeral range");
}

Reply send(http::ClientRequest request) {
  boost::asio::io_context ctx;
  http::Client client({.connect_timeout = 2s, .request_timeout = 20s});
  Reply out;
  boost::asio::co_spawn(ctx, client.send(std::move(request)), [&](std::exception_ptr, http::ClientResult res) {
    if (!res) {
      out.error = res.error().message;
      return;
    }
    out.status = res->status;
    out.body = res->body;
    boost::system::error_code ec;
    out.json = bj::parse(res->body, ec);
  });
  ctx.run();
  return out;
}

Reply call(const std::string& method, const std::string& url, const std::string& body, const std::string& authorization,
           const std::string& idempotency_key) {
  http::ClientRequest r;
  r.method = http::parse_method(method);
  r.url = url;
  r.body = body;
  if (!body.empty()) r.content_type = "application/json";
  if (!authorization.empty()) r.headers.add("Authorization", authorization);
  if (!idempotency_key.empty()) r.headers.add("Idempotency-Key", idempotency_key);
  return send(std::move(r));
}

Shop::Shop(ShopOptions options) : options_(std::move(options)) {
  std::random_device rd;
  dir_ = (fs::temp_directory_path() / ("mercado-shop-" + std::to_string(::getpid()) + "-" + std::to_string(rd()))).string();
  fs::create_directories(fs::path(dir_) / "logs");
  secret_file_ = (fs::path(dir_) / "jwt.secret").string();
  {
    std::ofstream f(secret_file_);
    for (int i = 0; i < 64; ++i) f << "0123456789abcdef"[rd() % 16];
  }
  auto secret = mercado::auth::load_secret(secret_file_, "");
  mercado::auth::JwtIssuer issuer(*secret, "mercado", std::chrono::hours(1));
  mercado::auth::ServiceToken token(issuer, "shop-test");
  service_auth_ = token.authorization();
  for (const auto& s : kServices) launch(s);
}

Shop::~Shop() {
  for (auto it = kServices.rbegin(); it != kServices.rend(); ++it) {
    if (auto& p = procs_[*it]) p->terminate(5s);
  }
  std::error_code ec;
  const char* keep = std::getenv("MERCADO_KEEP_TEST_DATA");  // =1 keeps databases and logs for a post-mortem
  if (keep == nullptr || std::string(keep) != "1") fs::remove_all(dir_, ec);
}

void Shop::launch(const std::string& s) {
  // A service keeps its port across restarts (the others hold its URL). The first port is
  // chosen below the kernel's ephemeral range: a port from that range, free while the
  // service is down, can become the local port of an outgoing connection meanwhile, and
  // the restarted service could not listen on it. Two test processes may still pick the
  // same port at the same moment; a first launch that loses that race tries another one.
  const bool first = !ports_.contains(s);
  for (int attempt = 0;; ++attempt) {
    if (first) ports_[s] = free_ports_below_ephemeral_range(1);
    std::string log_tail;
    if (try_launch(s, log_tail)) return;
    const bool port_taken = log_tail.find("Address already in use") != std::string::npos;
    if (!first || !port_taken || attempt == 4) {
      if (first) ports_.erase(s);
      throw std::runtime_error(s + " did not start; the end of its log:\n" + log_tail);
    }
  }
}

bool Shop::try_launch(const std::string& s, std::string& log_tail) {
  const std::string ready = (fs::path(dir_) / (s + ".ready")).string();
  fs::remove(ready);
  mercado::core::ProcessOptions o;
  o.path = (fs::path(SHOP_BIN_DIR) / s).string();
  o.output_path = (fs::path(dir_) / "logs" / (s + ".log")).string();
  std::uintmax_t log_start = 0;
  {
    std::error_code ec;
    if (auto size = fs::file_size(o.output_path, ec); !ec) log_start = size;
  }
  o.env = {{"PORT", std::to_string(ports_.at(s))},
           {"READY_FILE", ready},
           {"DATA_DIR", dir_},
           {"INSTANCE_ID", s + "-1"},
           {"JWT_SECRET_FILE", secret_file_},
           {"IO_THREADS", "1"},
           {"LOG_LEVEL", "info"},
           {"SHUTDOWN_GRACE_SECONDS", "2"}};
  if (s == "order-service") {
    o.env.emplace_back("INVENTORY_URL", urls_.at("inventory-service"));
    o.env.emplace_back("PAYMENT_URL", urls_.at("payment-service"));
    o.env.emplace_back("SHIPPING_URL", urls_.at("shipping-service"));
  }
  for (const auto& kv : options_.all) o.env.push_back(kv);
  if (auto it = options_.per_service.find(s); it != options_.per_service.end()) {
    for (const auto& kv : it->second) o.env.push_back(kv);
  }
  auto p = mercado::core::Process::spawn(o);
  if (!p) throw std::runtime_error("cannot start " + s + ": " + p.error().message);
  auto& proc = procs_[s];
  proc.emplace(std::move(*p));
  // Wait for the ready file, but notice at once a service that exits instead.
  auto give_up = [&] {
    proc->terminate(5s);
    proc.reset();
    std::ifstream in(o.output_path);
    in.seekg(static_cast<std::streamoff>(log_start));
    log_tail.assign(std::istreambuf_iterator<char>(in), {});
    if (log_tail.size() > 4000) log_tail.erase(0, log_tail.size() - 4000);
    return false;
  };
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (!mercado::core::wait_for_file(ready, 100ms)) {
    if (!proc->running() || std::chrono::steady_clock::now() > deadline) return give_up();
  }
  std::ifstream in(ready);
  std::string url;
  std::getline(in, url);
  urls_[s] = url;
  // Listening is not yet ready (the database and bus checks): wait for /ready.
  for (int i = 0; i < 600; ++i) {
    if (call("GET", url + "/ready").status == 200) return true;
    if (!proc->running()) return give_up();
    std::this_thread::sleep_for(10ms);
  }
  return give_up();
}

void Shop::stop(const std::string& s, bool hard) {
  auto& p = procs_.at(s);
  if (!p) return;
  if (hard) {
    p->signal(SIGKILL);
    p->wait_for(10s);
  } else {
    p->terminate(10s);
  }
  p.reset();
}

void Shop::start(const std::string& s) { launch(s); }

void Shop::signal(const std::string& s, int signo) { procs_.at(s)->signal(signo); }

Reply Shop::call(const std::string& method, const std::string& url, const std::string& body,
                 const std::string& authorization, const std::string& idempotency_key) {
  return testing::call(method, url, body, authorization, idempotency_key);
}

Shop::Customer Shop::customer(std::int64_t deposit) {
  std::random_device rd;
  const std::string email = "c" + std::to_string(rd()) + "@example.com";
  bj::object reg;
  reg["email"] = email;
  reg["password"] = "shop-test-1";
  reg["name"] = "Test Customer";
  auto u = call("POST", url("user-service") + "/users", bj::serialize(reg));
  if (u.status != 201) throw std::runtime_error("register failed: " + u.body + u.error);
  bj::object login;
  login["email"] = email;
  login["password"] = "shop-test-1";
  auto t = call("POST", url("user-service") + "/auth/login", bj::serialize(login));
  if (t.status != 200) throw std::runtime_error("login failed: " + t.body);
  Customer c{std::string(u.json.at("id").as_string()), "Bearer " + std::string(t.json.at("access_token").as_string())};
  if (deposit > 0) {
    auto d = call("POST", url("payment-service") + "/accounts/" + c.id + "/deposits",
                  bj::serialize(bj::object{{"amount", deposit}}), c.auth, "initial-" + c.id);
    if (d.status != 201) throw std::runtime_error("deposit failed: " + d.body);
  }
  return c;
}

Reply Shop::place(const Customer& c, const bj::array& lines, const std::string& address, const std::string& key) {
  bj::object o;
  o["customer_id"] = c.id;
  o["items"] = lines;
  o["address"] = address;
  return call("POST", url("order-service") + "/orders", bj::serialize(o), c.auth, key);
}

Reply Shop::wait_final(const Customer& c, const std::string& order_id, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Reply r;
  while (std::chrono::steady_clock::now() < deadline) {
    r = call("GET", url("order-service") + "/orders/" + order_id, {}, c.auth);
    if (r.status == 200 && r.json.at("status").as_string() != "PENDING") return r;
    std::this_thread::sleep_for(20ms);
  }
  return r;
}

std::map<std::string, std::int64_t> Shop::stock_totals() {
  auto r = call("GET", url("inventory-service") + "/stock", {}, service_auth_);
  std::map<std::string, std::int64_t> out;
  for (const auto& p : r.json.as_array()) {
    out[std::string(p.at("id").as_string())] =
        p.at("stock").as_int64() + p.at("reserved").as_int64() + p.at("shipped").as_int64();
  }
  return out;
}

std::int64_t Shop::balance(const Customer& c) {
  auto r = call("GET", url("payment-service") + "/accounts/" + c.id, {}, c.auth);
  return r.status == 200 ? r.json.at("balance").as_int64() : 0;
}

std::int64_t Shop::captured(const std::vector<std::string>& order_ids) {
  std::int64_t sum = 0;
  for (const auto& id : order_ids) {
    auto r = call("GET", url("payment-service") + "/payments/pay-" + id, {}, service_auth_);
    if (r.status == 200 && r.json.at("status").as_string() == "COMPLETED") sum += r.json.at("amount").as_int64();
  }
  return sum;
}

bj::array items(std::initializer_list<std::pair<std::string, int>> lines) {
  bj::array a;
  for (const auto& [p, q] : lines) {
    bj::object line;
    line["product_id"] = p;
    line["quantity"] = q;
    a.push_back(std::move(line));
  }
  return a;
}

}  // namespace shop::testing
