#include "demo.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <cstdio>
#include <filesystem>
#include <random>

#include <mercado/auth/jwt.hpp>
#include <mercado/auth/service_token.hpp>
#include <mercado/core/io_runtime.hpp>
#include <mercado/http/client.hpp>

namespace mercado::cli {

namespace asio = boost::asio;
namespace bj = boost::json;
using namespace std::chrono_literals;

namespace {

struct Shop {
  const LaunchOptions& o;
  http::Client client{{.connect_timeout = 1s, .request_timeout = 10s}};
  std::string service_auth;  // "Bearer <service token>" for the internal reads
  std::string user_auth;
  std::string user_id;

  asio::awaitable<http::ClientResult> call(http::Method m, std::string url, std::string body = {}, std::string auth = {},
                                           std::string key = {}) {
    http::ClientRequest r;
    r.method = m;
    r.url = std::move(url);
    r.body = std::move(body);
    if (!r.body.empty()) r.content_type = "application/json";
    if (!auth.empty()) r.headers.add("Authorization", auth);
    if (!key.empty()) r.headers.add("Idempotency-Key", key);
    co_return co_await client.send(std::move(r));
  }
};

void say(const char* fmt, const std::string& a = {}, const std::string& b = {}) {
  std::printf(fmt, a.c_str(), b.c_str());
  std::fflush(stdout);
}

bj::value body(const http::ClientResult& r) {
  if (!r) return bj::value(nullptr);
  boost::system::error_code ec;
  auto v = bj::parse(r->body, ec);
  return ec ? bj::value(nullptr) : v;
}

std::string show(const http::ClientResult& r) {
  if (!r) return "(no answer: " + r.error().message + ")";
  return "HTTP " + std::to_string(r->status) + " " + r->body;
}

// Places an order and follows it to its end, printing the saga's steps.
asio::awaitable<std::string> order(Shop& s, std::string title, bj::array items, std::string address,
                                   std::string key = {}) {
  say("\n== %s\n", title);
  bj::object req;
  req["customer_id"] = s.user_id;
  req["items"] = std::move(items);
  req["address"] = std::move(address);
  auto placed = co_await s.call(http::Method::post, url_of(s.o, "order-service") + "/orders", bj::serialize(req), s.user_auth, key);
  say("  POST /orders -> %s\n", show(placed));
  auto v = body(placed);
  if (!placed || placed->status != 202) co_return std::string();
  const std::string id(v.at("id").as_string());
  std::string status = "PENDING";
  for (int i = 0; i < 200 && status == "PENDING"; ++i) {
    asio::steady_timer t(co_await asio::this_coro::executor, 50ms);
    co_await t.async_wait(asio::use_awaitable);
    auto o = co_await s.call(http::Method::get, url_of(s.o, "order-service") + "/orders/" + id, {}, s.user_auth);
    auto ov = body(o);
    if (ov.is_object()) status = std::string(ov.at("status").as_string());
  }
  auto saga = co_await s.call(http::Method::get, url_of(s.o, "order-service") + "/sagas/" + id, {}, s.service_auth);
  auto sv = body(saga);
  if (sv.is_object()) {
    say("  saga %s:\n", id);
    const auto& history = sv.at("history").as_array();
    for (const auto& h : history) {
      std::string line = std::string(h.at("event").as_string());
      if (!h.at("step").as_string().empty()) line += "  " + std::string(h.at("step").as_string());
      if (!h.at("detail").as_string().empty()) line += "  (" + std::string(h.at("detail").as_string()) + ")";
      say("    - %s\n", line);
    }
  }
  auto final_order = co_await s.call(http::Method::get, url_of(s.o, "order-service") + "/orders/" + id, {}, s.user_auth);
  say("  GET /orders/{id} -> %s\n", show(final_order));
  co_return id;
}

asio::awaitable<void> balance(Shop& s) {
  auto a = co_await s.call(http::Method::get, url_of(s.o, "payment-service") + "/accounts/" + s.user_id, {}, s.user_auth);
  say("  balance: %s\n", show(a));
}

asio::awaitable<void> stock(Shop& s, std::string product) {
  auto levels = co_await s.call(http::Method::get, url_of(s.o, "inventory-service") + "/stock", {}, s.service_auth);
  const auto all = body(levels);
  if (!all.is_array()) {
    say("  stock: %s\n", show(levels));
    co_return;
  }
  for (const auto& l : all.as_array()) {
    if (l.at("id").as_string() == product) say("  stock of %s: %s\n", product, bj::serialize(l));
  }
}

// A confirmed order's reservation is committed after the fact, by order-service's committer:
// shows it once it is no longer RESERVED (or after two seconds).
asio::awaitable<void> reservation(Shop& s, std::string order_id) {
  const std::string url = url_of(s.o, "inventory-service") + "/reservations/res-" + order_id;
  http::ClientResult r;
  for (int i = 0; i < 40; ++i) {
    r = co_await s.call(http::Method::get, url, {}, s.service_auth);
    if (!r || r->status != 200 || body(r).at("status").as_string() != "RESERVED") break;
    asio::steady_timer t(co_await asio::this_coro::executor, 50ms);
    co_await t.async_wait(asio::use_awaitable);
  }
  say("  reservation (committed by order-service's committer after the confirmation): %s\n", show(r));
}

// items("p-2", 2, "p-5", 1): variadic, because GCC 12 rejects std::initializer_list
// arguments inside coroutines ("array used as initializer").
inline void add_items(bj::array&) {}
template <class... Rest>
void add_items(bj::array& a, const char* product, int quantity, Rest... rest) {
  bj::object line;
  line["product_id"] = product;
  line["quantity"] = quantity;
  a.push_back(std::move(line));
  add_items(a, rest...);
}
template <class... Args>
bj::array items(Args... args) {
  bj::array a;
  add_items(a, args...);
  return a;
}

// (GCC 12 cannot keep string literals or braced lists alive across a co_await in this
// function -- "array used as initializer" -- hence the named strings.)
struct Scenario {
  std::string title;
  bj::array items;
  std::string address;
  std::string product;  // whose stock to show afterwards (empty: none)
  bool show_balance;
};

asio::awaitable<int> demo(Shop& s) {
  std::random_device rd;
  const std::string email = "demo-" + std::to_string(rd() % 1000000) + "@example.com";
  const std::string password = "mercado-demo-1";
  const std::string madrid = "Calle Mayor 1, Madrid";
  say("== Register %s and log in\n", email);
  bj::object reg;
  reg["email"] = email;
  reg["password"] = password;
  reg["name"] = std::string("Demo Customer");
  auto u = co_await s.call(http::Method::post, url_of(s.o, "user-service") + "/users", bj::serialize(reg));
  say("  POST /users -> %s\n", show(u));
  if (!u || u->status != 201) co_return 1;
  s.user_id = std::string(body(u).at("id").as_string());
  bj::object login;
  login["email"] = email;
  login["password"] = password;
  auto t = co_await s.call(http::Method::post, url_of(s.o, "user-service") + "/auth/login", bj::serialize(login));
  if (!t || t->status != 200) {
    say("  login failed: %s\n", show(t));
    co_return 1;
  }
  s.user_auth = "Bearer " + std::string(body(t).at("access_token").as_string());
  say("  POST /auth/login -> a JWT for user %s\n", std::string(body(t).at("user_id").as_string()));
  const std::string deposit = R"({"amount":10000})";
  auto d = co_await s.call(http::Method::post, url_of(s.o, "payment-service") + "/accounts/" + s.user_id + "/deposits",
                           deposit, s.user_auth, "demo-deposit-" + s.user_id);
  say("  POST /accounts/{id}/deposits 100.00 -> %s\n", show(d));

  std::vector<Scenario> scenarios;
  scenarios.push_back({"Happy path: 2 x yerba + 1 x alfajores", items("p-2", 2, "p-5", 1), madrid, "p-2", true});
  scenarios.push_back({"Short stock: 50 x dulce de leche (3 in stock) -> CANCELLED, nothing charged",
                       items("p-6", 50), madrid, "p-6", true});
  scenarios.push_back({"Short funds: 5 x thermos (225.00) -> CANCELLED, stock released", items("p-4", 5), madrid, "p-4",
                       true});
  scenarios.push_back({"Shipping refuses Atlantis -> payment refunded, stock released", items("p-3", 1),
                       "1 Coral Way, Atlantis", "p-3", true});
  for (std::size_t i = 0; i < scenarios.size(); ++i) {
    auto& sc = scenarios[i];
    const std::string id = co_await order(s, sc.title, sc.items, sc.address);
    if (sc.show_balance) co_await balance(s);
    if (i == 0 && !id.empty()) co_await reservation(s, id);
    if (!sc.product.empty()) co_await stock(s, sc.product);
  }

  const std::string key = "demo-" + std::to_string(rd());
  auto first = co_await order(s, "Idempotency-Key: the same order twice", items("p-2", 1), madrid, key);
  bj::object again_req;
  again_req["customer_id"] = s.user_id;
  again_req["items"] = items("p-2", 1);
  again_req["address"] = madrid;
  auto again = co_await s.call(http::Method::post, url_of(s.o, "order-service") + "/orders", bj::serialize(again_req),
                               s.user_auth, key);
  const bj::value again_body = body(again);
  const std::string again_id = again_body.is_object() && again_body.as_object().contains("id")
                                   ? std::string(again_body.at("id").as_string())
                                   : std::string("?");
  say("  the same POST again -> %s, id %s", again ? "HTTP " + std::to_string(again->status) : show(again), again_id);
  say(" (first was %s): %s\n", first, again_id == first ? "the same order, charged once" : "ANOTHER ORDER");
  // The key names one request: another order under it is refused, and nothing is placed.
  again_req["items"] = items("p-2", 3);
  auto other = co_await s.call(http::Method::post, url_of(s.o, "order-service") + "/orders", bj::serialize(again_req),
                               s.user_auth, key);
  say("  another order (3 x yerba) with that key -> %s\n", show(other));
  co_await balance(s);
  say("\nDone. Metrics: %s/metrics (orders_*_total, saga_*); traces in the JSON logs.\n", url_of(s.o, "order-service"));
  co_return 0;
}

}  // namespace

int run_demo(const LaunchOptions& options) {
  auto secret = auth::load_secret((std::filesystem::path(options.data_dir) / "jwt.secret").string(), "");
  if (!secret) {
    std::fprintf(stderr, "mercado demo: %s (is `mercado up` running with --data-dir %s?)\n", secret.error().message.c_str(),
                 options.data_dir.c_str());
    return 1;
  }
  auth::JwtIssuer issuer(*secret, "mercado", std::chrono::hours(1));
  auth::ServiceToken token(issuer, "mercado-demo");
  Shop shop{options};
  shop.service_auth = token.authorization();
  asio::io_context ctx(1);
  core::require_io_backend(ctx);
  int rc = 1;
  asio::co_spawn(ctx, demo(shop), [&](std::exception_ptr e, int r) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        std::fprintf(stderr, "mercado demo: %s\n", ex.what());
      }
    }
    rc = r;
  });
  ctx.run();
  return rc;
}

}  // namespace mercado::cli
