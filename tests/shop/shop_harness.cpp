#include "shop_harness.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <thread>

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

}  // namespace

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
  const std::string ready = (fs::path(dir_) / (s + ".ready")).string();
  fs::remove(ready);
  mercado::core::ProcessOptions o;
  o.path = (fs::path(SHOP_BIN_DIR) / s).string();
  o.output_path = (fs::path(dir_) / "logs" / (s + ".log")).string();
  o.env = {{"PORT", std::to_string(ports_.contains(s) ? ports_[s] : 0)},
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
  procs_[s].emplace(std::move(*p));
  if (!mercado::core::wait_for_file(ready, 30s)) throw std::runtime_error(s + " did not start; see " + o.output_path);
  std::ifstream in(ready);
  std::string url;
  std::getline(in, url);
  urls_[s] = url;
  ports_[s] = std::stoi(url.substr(url.rfind(':') + 1));
  // Listening is not yet ready (the database and bus checks): wait for /ready.
  for (int i = 0; i < 600; ++i) {
    if (call("GET", url + "/ready").status == 200) return;
    std::this_thread::sleep_for(10ms);
  }
  throw std::runtime_error(s + " never became ready");
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
  boost::asio::io_context ctx;
  http::Client client({.connect_timeout = 2s, .request_timeout = 20s});
  http::ClientRequest r;
  r.method = http::parse_method(method);
  r.url = url;
  r.body = body;
  if (!body.empty()) r.content_type = "application/json";
  if (!authorization.empty()) r.headers.add("Authorization", authorization);
  if (!idempotency_key.empty()) r.headers.add("Idempotency-Key", idempotency_key);
  Reply out;
  boost::asio::co_spawn(ctx, client.send(std::move(r)), [&](std::exception_ptr, http::ClientResult res) {
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
