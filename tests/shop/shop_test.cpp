// The shop end to end, with real processes and real HTTP (issue: "The shop, end to end").
// After every test: per product stock + reserved + shipped is unchanged, and money is
// conserved: deposits = balances + captured payments.
#include <gtest/gtest.h>

#include <csignal>
#include <future>
#include <thread>

#include <mercado/core/blocking_pool.hpp>
#include <mercado/storage/database.hpp>

#include "scratch_database.hpp"
#include "shop_harness.hpp"

namespace shop::testing {
namespace {

namespace bj = boost::json;
using namespace std::chrono_literals;

class ShopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    shop_.emplace();
    stock_before_ = shop_->stock_totals();
  }
  void TearDown() override {
    if (!shop_) return;
    EXPECT_EQ(shop_->stock_totals(), stock_before_) << "stock + reserved + shipped changed for a product";
    std::int64_t balances = 0;
    for (const auto& c : customers_) balances += shop_->balance(c);
    EXPECT_EQ(deposits_, balances + shop_->captured(orders_)) << "money appeared or vanished";
  }
  Shop::Customer customer(std::int64_t deposit) {
    customers_.push_back(shop_->customer(deposit));
    deposits_ += deposit;
    return customers_.back();
  }
  std::string order(const Shop::Customer& c, const bj::array& lines, const std::string& address = "Calle Mayor 1, Madrid",
                    const std::string& key = {}) {
    auto r = shop_->place(c, lines, address, key);
    EXPECT_EQ(r.status, 202) << r.body << r.error;
    if (r.status != 202) return {};
    std::string id(r.json.at("id").as_string());
    orders_.push_back(id);
    return id;
  }
  std::int64_t available(const std::string& product) {
    auto r = shop_->call("GET", shop_->url("inventory-service") + "/products/" + product);
    return r.json.at("stock").as_int64();
  }
  // Whether payment-service has taken the order's payment within ten seconds.
  bool wait_paid(const std::string& order_id) {
    for (int i = 0; i < 1000; ++i) {
      auto p = shop_->call("GET", shop_->url("payment-service") + "/payments/pay-" + order_id, {}, shop_->service_auth());
      if (p.status == 200) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }
  // The status of an order's reservation once it is `want` (or whatever it is after `timeout`):
  // a confirmed order's reservation is committed after the fact, by order-service's committer.
  std::string reservation_status(const std::string& order_id, const std::string& want,
                                 std::chrono::seconds timeout = 30s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string status;
    do {
      auto r = shop_->call("GET", shop_->url("inventory-service") + "/reservations/res-" + order_id, {},
                           shop_->service_auth());
      status = r.status == 200 ? std::string(r.json.at("status").as_string()) : "HTTP " + std::to_string(r.status);
      if (status == want) break;
      std::this_thread::sleep_for(20ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return status;
  }

  std::optional<Shop> shop_;
  std::map<std::string, std::int64_t> stock_before_;
  std::vector<Shop::Customer> customers_;
  std::vector<std::string> orders_;
  std::int64_t deposits_ = 0;
};

TEST_F(ShopTest, HappyPathConfirmsTakesStockAndMoneyAndShips) {
  auto c = customer(10'000);
  const auto yerba_before = available("p-2");
  auto id = order(c, items({{"p-2", 2}, {"p-5", 1}}));
  auto final_order = shop_->wait_final(c, id);
  ASSERT_EQ(final_order.json.at("status").as_string(), "CONFIRMED") << final_order.body;
  EXPECT_EQ(final_order.json.at("total").as_int64(), 2 * 899 + 1599);
  EXPECT_EQ(available("p-2"), yerba_before - 2);
  EXPECT_EQ(reservation_status(id, "COMMITTED"), "COMMITTED");  // reserved stock -> shipped
  EXPECT_EQ(shop_->balance(c), 10'000 - 3397);
  auto shipment = shop_->call("GET", shop_->url("shipping-service") + "/shipments/shp-" + id, {}, shop_->service_auth());
  EXPECT_EQ(shipment.status, 200);
  EXPECT_EQ(shipment.json.at("status").as_string(), "CREATED");
  auto list = shop_->call("GET", shop_->url("order-service") + "/orders?customer_id=" + c.id, {}, c.auth);
  ASSERT_EQ(list.status, 200);
  EXPECT_EQ(list.json.as_array().size(), 1U);
  auto metrics = shop_->call("GET", shop_->url("order-service") + "/metrics");
  EXPECT_NE(metrics.body.find("orders_confirmed_total 1"), std::string::npos);
  // The saga's data: the order as placed, and each step's answer under its own name.
  auto saga = shop_->call("GET", shop_->url("order-service") + "/sagas/" + id, {}, shop_->service_auth());
  ASSERT_EQ(saga.status, 200) << saga.body;
  const auto& data = saga.json.at("data").as_object();
  EXPECT_EQ(data.at("order_id").as_string(), id) << saga.body;
  EXPECT_EQ(data.at("items").as_array().at(0).at("price").as_int64(), 899) << saga.body;  // the order's, priced
  EXPECT_EQ(data.at("reservation").at("id").as_string(), "res-" + id) << saga.body;
  EXPECT_EQ(data.at("payment").at("id").as_string(), "pay-" + id) << saga.body;
  EXPECT_EQ(data.at("payment").at("amount").as_int64(), 3397) << saga.body;
  EXPECT_EQ(data.at("shipment").at("id").as_string(), "shp-" + id) << saga.body;
  EXPECT_FALSE(data.contains("id")) << saga.body;
}

// POST /orders answers with the order as the read model stores it (built from the request
// for a new order, read back for a retried one): the same fields as GET /orders/{id}.
TEST_F(ShopTest, PlacingAnOrderAnswersWithTheStoredOrder) {
  auto c = customer(10'000);
  auto placed = shop_->place(c, items({{"p-2", 2}, {"p-5", 1}}), "Calle Mayor 1, Madrid", "answer-key");
  ASSERT_EQ(placed.status, 202) << placed.body;
  const std::string id(placed.json.at("id").as_string());
  orders_.push_back(id);
  EXPECT_EQ(placed.json.at("status").as_string(), "PENDING");
  auto final_order = shop_->wait_final(c, id);
  ASSERT_EQ(final_order.json.at("status").as_string(), "CONFIRMED") << final_order.body;
  auto without_status = [](bj::object o) {
    o.erase("status");
    return o;
  };
  EXPECT_EQ(without_status(placed.json.as_object()), without_status(final_order.json.as_object()))
      << placed.body << " vs " << final_order.body;
  EXPECT_EQ(placed.json.at("total").as_int64(), 2 * 899 + 1599);
  // The same request again: the order as it is now.
  auto again = shop_->place(c, items({{"p-2", 2}, {"p-5", 1}}), "Calle Mayor 1, Madrid", "answer-key");
  ASSERT_EQ(again.status, 202) << again.body;
  EXPECT_EQ(again.json, final_order.json);
  auto metrics = shop_->call("GET", shop_->url("order-service") + "/metrics");
  EXPECT_NE(metrics.body.find("orders_created_total 1\n"), std::string::npos) << "a retried request creates nothing";
}

// The same shop on the servers a production deployment uses: each service on its own
// PostgreSQL schema, all of them on one RabbitMQ broker (scripts/test-servers.sh starts both).
// The services load libpq and rabbitmq-c only now (core::SharedLibrary), so this also
// proves that path in the real binaries.
class ShopOnServersTest : public ShopTest {
 protected:
  void SetUp() override {
    namespace st = mercado::storage::testing;
    const std::string amqp = st::env("MERCADO_TEST_AMQP_URL");
    ShopOptions options;
    for (const std::string s : {"user-service", "inventory-service", "payment-service", "shipping-service",
                                "order-service"}) {
      std::string why;
      auto db = st::ScratchDatabase::create(st::Backend::postgres, why);
      if (!db || amqp.empty()) {
        if (st::servers_required()) FAIL() << "PostgreSQL and RabbitMQ are required: " << why;
        GTEST_SKIP() << "needs MERCADO_TEST_POSTGRES_URL and MERCADO_TEST_AMQP_URL: " << why;
      }
      options.per_service[s] = {{"DATABASE_URL", db->url()}};
      databases_.push_back(std::move(*db));
    }
    options.all = {{"BROKER_URL", amqp}};
    shop_.emplace(std::move(options));
    stock_before_ = shop_->stock_totals();
  }
  void TearDown() override {
    ShopTest::TearDown();
    shop_.reset();  // the services stop before their schemas are dropped
  }
  std::vector<mercado::storage::testing::ScratchDatabase> databases_;
};

TEST_F(ShopOnServersTest, HappyPathAndACompensationOnPostgresqlAndRabbitmq) {
  auto c = customer(5'000);
  const auto yerba_before = available("p-2");
  auto id = order(c, items({{"p-2", 2}, {"p-5", 1}}));
  auto confirmed = shop_->wait_final(c, id);
  ASSERT_EQ(confirmed.json.at("status").as_string(), "CONFIRMED") << confirmed.body;
  EXPECT_EQ(available("p-2"), yerba_before - 2);
  EXPECT_EQ(shop_->balance(c), 5'000 - 3397);
  auto poor = order(c, items({{"p-4", 1}}));  // 45.00 > what is left
  auto cancelled = shop_->wait_final(c, poor);
  ASSERT_EQ(cancelled.json.at("status").as_string(), "CANCELLED") << cancelled.body;
  EXPECT_NE(cancelled.json.at("reason").as_string().find("insufficient-funds"), std::string::npos);
  auto ready = shop_->call("GET", shop_->url("order-service") + "/ready");
  EXPECT_EQ(ready.status, 200) << ready.body;
  // The integration events went through the broker: the user's registration reached
  // payment-service (it opened the account the deposit went to) and order-service published.
  auto metrics = shop_->call("GET", shop_->url("order-service") + "/metrics").body;
  EXPECT_NE(metrics.find("mercado_messages_published_total{transport=\"amqp\",event_type=\"OrderConfirmed\"} 1"),
            std::string::npos)
      << metrics;
}

// order-service prices an order from the catalogue and keeps a price it has just seen
// (--price-ttl-ms, 5 s by default): a second order of the same product asks nothing.
TEST_F(ShopTest, OrdersArePricedFromTheCatalogueWhichIsAskedOncePerTtl) {
  auto price_lookups = [&] {
    auto text = shop_->call("GET", shop_->url("inventory-service") + "/metrics").body;
    const std::string prefix = "http_requests_total{method=\"GET\",endpoint=\"/products/{id}\",status_code=\"200\"} ";
    auto at = text.find(prefix);
    return at == std::string::npos ? 0.0 : std::stod(text.substr(at + prefix.size()));
  };
  auto c = customer(10'000);
  const double before = price_lookups();
  auto first = order(c, items({{"p-3", 1}}));
  const double after_first = price_lookups();
  EXPECT_EQ(after_first, before + 1) << "the first order asks the catalogue";
  auto second = order(c, items({{"p-3", 2}}));
  EXPECT_EQ(price_lookups(), after_first) << "the second one uses the price it was given";
  auto one = shop_->wait_final(c, first), two = shop_->wait_final(c, second);
  ASSERT_EQ(one.json.at("status").as_string(), "CONFIRMED") << one.body;
  ASSERT_EQ(two.json.at("status").as_string(), "CONFIRMED") << two.body;
  EXPECT_EQ(two.json.at("total").as_int64(), 2 * one.json.at("total").as_int64());
}

// inventory's batch commit: one transaction; a committed reservation again is fine
// (idempotent), an unknown or released one is reported, not an error for the others.
TEST_F(ShopTest, TheBatchCommitCommitsWhatItCanAndReportsTheRest) {
  auto c = customer(1'000);
  auto ok = order(c, items({{"p-2", 1}}));
  auto poor = order(c, items({{"p-4", 1}}));  // 45.00 > what is left: released
  ASSERT_EQ(shop_->wait_final(c, ok).json.at("status").as_string(), "CONFIRMED");
  ASSERT_EQ(shop_->wait_final(c, poor).json.at("status").as_string(), "CANCELLED");
  ASSERT_EQ(reservation_status(ok, "COMMITTED"), "COMMITTED");
  ASSERT_EQ(reservation_status(poor, "RELEASED"), "RELEASED");
  const std::string url = shop_->url("inventory-service") + "/reservations/commit";
  auto body = bj::serialize(bj::object{{"ids", bj::array{"res-" + ok, "res-" + poor, "res-nobody"}}});
  auto r = shop_->call("POST", url, body, shop_->service_auth());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json.at("committed").as_array(), (bj::array{bj::value("res-" + ok)}));
  const auto& failed = r.json.at("failed").as_array();
  ASSERT_EQ(failed.size(), 2U) << r.body;
  EXPECT_EQ(failed[0].at("id").as_string(), "res-" + poor);
  EXPECT_EQ(failed[1].at("id").as_string(), "res-nobody");
  EXPECT_EQ(reservation_status(poor, "RELEASED", 0s), "RELEASED");
  auto empty = shop_->call("POST", url, R"({"ids": []})", shop_->service_auth());
  EXPECT_EQ(empty.status, 400) << empty.body;
  EXPECT_EQ(shop_->call("POST", url, body, c.auth).status, 403);  // a customer is not a service
  EXPECT_EQ(shop_->call("POST", url, body).status, 401);
}

TEST_F(ShopTest, ShortStockCancelsWithTheReasonAndChargesNothing) {
  auto c = customer(100'000);
  auto id = order(c, items({{"p-6", 50}}));  // 3 in stock
  auto final_order = shop_->wait_final(c, id);
  ASSERT_EQ(final_order.json.at("status").as_string(), "CANCELLED");
  EXPECT_NE(final_order.json.at("reason").as_string().find("insufficient-stock"), std::string::npos)
      << final_order.json.at("reason").as_string();
  EXPECT_EQ(shop_->balance(c), 100'000);
  EXPECT_EQ(available("p-6"), 3);
  auto metrics = shop_->call("GET", shop_->url("order-service") + "/metrics");
  EXPECT_NE(metrics.body.find("orders_cancelled_total{reason=\"insufficient-stock\"} 1"), std::string::npos);
}

TEST_F(ShopTest, ShortFundsCancelsAndReleasesTheStock) {
  auto c = customer(1'000);
  const auto thermos_before = available("p-4");
  auto id = order(c, items({{"p-4", 2}}));  // 90.00 > 10.00
  auto final_order = shop_->wait_final(c, id);
  ASSERT_EQ(final_order.json.at("status").as_string(), "CANCELLED");
  EXPECT_NE(final_order.json.at("reason").as_string().find("insufficient-funds"), std::string::npos);
  EXPECT_EQ(available("p-4"), thermos_before);
  EXPECT_EQ(shop_->balance(c), 1'000);
  auto reservation = shop_->call("GET", shop_->url("inventory-service") + "/reservations/res-" + id, {}, shop_->service_auth());
  EXPECT_EQ(reservation.json.at("status").as_string(), "RELEASED");
}

TEST_F(ShopTest, ShippingRefusalRefundsAndReleases) {
  auto c = customer(10'000);
  const auto before = available("p-3");
  auto id = order(c, items({{"p-3", 1}}), "1 Coral Way, Atlantis");
  auto final_order = shop_->wait_final(c, id);
  ASSERT_EQ(final_order.json.at("status").as_string(), "CANCELLED");
  EXPECT_NE(final_order.json.at("reason").as_string().find("shipping-refused"), std::string::npos);
  EXPECT_EQ(shop_->balance(c), 10'000);
  EXPECT_EQ(available("p-3"), before);
  auto payment = shop_->call("GET", shop_->url("payment-service") + "/payments/pay-" + id, {}, shop_->service_auth());
  EXPECT_EQ(payment.json.at("status").as_string(), "REFUNDED");
}

TEST_F(ShopTest, PaymentServiceDownOpensTheBreakerAndCancelsWithNoMoneyStuck) {
  auto c = customer(50'000);
  shop_->stop("payment-service");
  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(order(c, items({{"p-2", 1}})));
  for (const auto& id : ids) {
    auto final_order = shop_->wait_final(c, id);
    ASSERT_EQ(final_order.json.at("status").as_string(), "CANCELLED") << final_order.body;
    EXPECT_NE(final_order.json.at("reason").as_string().find("payment-unavailable"), std::string::npos)
        << final_order.json.at("reason").as_string();
  }
  auto metrics = shop_->call("GET", shop_->url("order-service") + "/metrics");
  EXPECT_NE(metrics.body.find("circuit_breaker_state{name=\"payment\"} 1"), std::string::npos)
      << "the payment breaker should be OPEN";
  shop_->start("payment-service");
  EXPECT_EQ(shop_->balance(c), 50'000);  // nothing was taken
}

TEST_F(ShopTest, TheSameIdempotencyKeyTwiceIsOneOrder) {
  auto c = customer(10'000);
  auto first = shop_->place(c, items({{"p-2", 1}}), "Calle Mayor 1, Madrid", "key-123");
  auto second = shop_->place(c, items({{"p-2", 1}}), "Calle Mayor 1, Madrid", "key-123");
  ASSERT_EQ(first.status, 202);
  ASSERT_EQ(second.status, 202);
  EXPECT_EQ(first.json.at("id"), second.json.at("id"));
  std::string id(first.json.at("id").as_string());
  orders_.push_back(id);
  EXPECT_EQ(shop_->wait_final(c, id).json.at("status").as_string(), "CONFIRMED");
  auto list = shop_->call("GET", shop_->url("order-service") + "/orders?customer_id=" + c.id, {}, c.auth);
  EXPECT_EQ(list.json.as_array().size(), 1U);
  EXPECT_EQ(shop_->balance(c), 10'000 - 899);  // charged once
}

// The IETF draft's rule: a key reused with a different request is an error (422), not a
// replay of the first answer -- the client would believe a second order was placed.
TEST_F(ShopTest, AnIdempotencyKeyReusedForAnotherOrderIsRefusedAndChangesNothing) {
  auto c = customer(10'000);
  auto first = shop_->place(c, items({{"p-2", 1}}), "Calle Mayor 1, Madrid", "key-456");
  ASSERT_EQ(first.status, 202) << first.body;
  std::string id(first.json.at("id").as_string());
  orders_.push_back(id);
  ASSERT_EQ(shop_->wait_final(c, id).json.at("status").as_string(), "CONFIRMED");
  const std::vector<std::pair<bj::array, std::string>> others = {
      {items({{"p-1", 1}}), "Calle Mayor 1, Madrid"},             // another product
      {items({{"p-2", 2}}), "Calle Mayor 1, Madrid"},             // another quantity
      {items({{"p-2", 1}, {"p-5", 1}}), "Calle Mayor 1, Madrid"},  // one more item
      {items({{"p-2", 1}}), "Gran Via 2, Madrid"},                // another address
  };
  for (const auto& [lines, address] : others) {
    auto again = shop_->place(c, lines, address, "key-456");
    EXPECT_EQ(again.status, 422) << again.body;
    EXPECT_EQ(again.json.at("type").as_string(), "urn:mercado:problem:idempotency-key-reused") << again.body;
  }
  // The same request again is still a replay of the first.
  auto same = shop_->place(c, items({{"p-2", 1}}), "Calle Mayor 1, Madrid", "key-456");
  EXPECT_EQ(same.status, 202) << same.body;
  EXPECT_EQ(same.json.at("id").as_string(), id);
  auto list = shop_->call("GET", shop_->url("order-service") + "/orders?customer_id=" + c.id, {}, c.auth);
  EXPECT_EQ(list.json.as_array().size(), 1U);
  EXPECT_EQ(shop_->balance(c), 10'000 - 899);
}

TEST_F(ShopTest, ADepositKeyReusedForAnotherAmountIsRefusedAndChangesNothing) {
  auto c = customer(1'000);
  const std::string url = shop_->url("payment-service") + "/accounts/" + c.id + "/deposits";
  auto first = shop_->call("POST", url, R"({"amount":700})", c.auth, "dep-1");
  ASSERT_EQ(first.status, 201) << first.body;
  deposits_ += 700;
  auto replay = shop_->call("POST", url, R"({"amount":700})", c.auth, "dep-1");
  EXPECT_EQ(replay.status, 201) << replay.body;
  EXPECT_EQ(replay.json.at("balance").as_int64(), 1'700);
  auto other = shop_->call("POST", url, R"({"amount":900})", c.auth, "dep-1");
  EXPECT_EQ(other.status, 422) << other.body;
  EXPECT_EQ(other.json.at("type").as_string(), "urn:mercado:problem:idempotency-key-reused") << other.body;
  EXPECT_EQ(shop_->balance(c), 1'700);
}

TEST_F(ShopTest, PreferencesOfAnUnknownUserAreNotFound) {
  const std::string url = shop_->url("user-service") + "/users/nobody/preferences";
  auto get = shop_->call("GET", url, {}, shop_->service_auth());
  EXPECT_EQ(get.status, 404) << get.body;
  auto put = shop_->call("PUT", url, R"({"language":"es","currency":"EUR","newsletter":true})", shop_->service_auth());
  EXPECT_EQ(put.status, 404) << put.body;
  // A user who never set them gets the defaults; after a PUT, what was set.
  auto c = customer(100);
  const std::string own = shop_->url("user-service") + "/users/" + c.id + "/preferences";
  auto defaults = shop_->call("GET", own, {}, c.auth);
  EXPECT_EQ(defaults.status, 200) << defaults.body;
  auto set = shop_->call("PUT", own, R"({"language":"es","currency":"EUR","newsletter":true})", c.auth);
  EXPECT_EQ(set.status, 200) << set.body;
  EXPECT_EQ(shop_->call("GET", own, {}, c.auth).json.at("language").as_string(), "es");
}

TEST_F(ShopTest, LoginAnswersTheUsersId) {
  bj::object reg{{"email", "login-id@example.com"}, {"password", "shop-test-1"}, {"name", "Ana"}};
  auto u = shop_->call("POST", shop_->url("user-service") + "/users", bj::serialize(reg));
  ASSERT_EQ(u.status, 201) << u.body;
  auto t = shop_->call("POST", shop_->url("user-service") + "/auth/login",
                       R"({"email":"Login-Id@example.com","password":"shop-test-1"})");
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(t.json.at("user_id"), u.json.at("id")) << t.body;
  // ... and that id is the one the token may read.
  auto me = shop_->call("GET", shop_->url("user-service") + "/users/" + std::string(t.json.at("user_id").as_string()), {},
                        "Bearer " + std::string(t.json.at("access_token").as_string()));
  EXPECT_EQ(me.status, 200) << me.body;
}

// An Idempotency-Key names one request: empty, over-long or sent twice, it is refused (400)
// before anything runs, on every kind of command that takes one.
TEST_F(ShopTest, AnIdempotencyKeySentTwiceEmptyOrTooLongIsABadRequestAndChangesNothing) {
  auto c = customer(1'000);
  const std::string deposit_url = shop_->url("payment-service") + "/accounts/" + c.id + "/deposits";
  bj::object order{{"customer_id", c.id}, {"items", items({{"p-2", 1}})}, {"address", "Calle Mayor 1, Madrid"}};
  bj::object user{{"email", "twice@example.com"}, {"password", "shop-test-1"}, {"name", "Ana"}};
  struct Command {
    std::string url, body, auth;
  };
  bj::object payment{{"order_id", "never-placed"}, {"customer_id", c.id}, {"amount", 500}};
  const std::vector<Command> commands = {
      {deposit_url, R"({"amount":700})", c.auth},
      {shop_->url("order-service") + "/orders", bj::serialize(order), c.auth},
      {shop_->url("user-service") + "/users", bj::serialize(user), ""},
      {shop_->url("payment-service") + "/payments", bj::serialize(payment), shop_->service_auth()},
  };
  const std::vector<std::vector<std::string>> bad_keys = {{"k-1", "k-2"}, {"k-1", "k-1"}, {""}, {std::string(256, 'k')}};
  for (const auto& cmd : commands) {
    for (const auto& keys : bad_keys) {
      mercado::http::ClientRequest r;
      r.method = mercado::http::Method::post;
      r.url = cmd.url;
      r.body = cmd.body;
      r.content_type = "application/json";
      if (!cmd.auth.empty()) r.headers.add("Authorization", cmd.auth);
      for (const auto& k : keys) r.headers.add("Idempotency-Key", k);
      auto res = send(std::move(r));
      EXPECT_EQ(res.status, 400) << cmd.url << " with " << keys.size() << " key(s): " << res.body;
      EXPECT_EQ(res.json.at("type").as_string(), "urn:mercado:problem:bad-request") << res.body;
    }
  }
  EXPECT_EQ(shop_->balance(c), 1'000);
  auto list = shop_->call("GET", shop_->url("order-service") + "/orders?customer_id=" + c.id, {}, c.auth);
  EXPECT_EQ(list.json.as_array().size(), 0U) << list.body;
  auto login = shop_->call("POST", shop_->url("user-service") + "/auth/login",
                           R"({"email":"twice@example.com","password":"shop-test-1"})");
  EXPECT_EQ(login.status, 401) << "no user was registered: " << login.body;
}

// A body with a key twice is refused as a whole (Boost.JSON alone would keep the last one,
// and a proxy or gateway that kept the first would have checked another request).
TEST_F(ShopTest, ABodyWithADuplicateKeyIsABadRequestAndChangesNothing) {
  auto c = customer(1'000);
  auto other = customer(1'000);
  const std::string order = R"({"customer_id":")" + c.id + R"(","items":[{"product_id":"p-2","quantity":1}],)" +
                            R"("address":"Calle Mayor 1, Madrid","customer_id":")" + other.id + R"("})";
  auto placed = shop_->call("POST", shop_->url("order-service") + "/orders", order, c.auth);
  EXPECT_EQ(placed.status, 400) << placed.body;
  EXPECT_EQ(placed.json.at("type").as_string(), "urn:mercado:problem:invalid-json") << placed.body;
  EXPECT_NE(placed.body.find("customer_id"), std::string::npos) << placed.body;
  auto deposit = shop_->call("POST", shop_->url("payment-service") + "/accounts/" + c.id + "/deposits",
                             R"({"amount":1,"amount":1000000})", c.auth);
  EXPECT_EQ(deposit.status, 400) << deposit.body;
  EXPECT_EQ(deposit.json.at("type").as_string(), "urn:mercado:problem:invalid-json") << deposit.body;
  EXPECT_EQ(shop_->balance(c), 1'000);
  EXPECT_EQ(shop_->balance(other), 1'000);
  for (const auto* who : {&c, &other}) {
    auto list = shop_->call("GET", shop_->url("order-service") + "/orders?customer_id=" + who->id, {}, who->auth);
    EXPECT_EQ(list.json.as_array().size(), 0U) << list.body;
  }
}

// Keys are kept for --dedupe-retention-hours (here 3.6 s) and then forgotten: the key
// reused for another request is refused within the window, and runs after it.
TEST_F(ShopTest, IdempotencyKeysAreForgottenAfterTheRetention) {
  shop_.reset();
  shop_.emplace(ShopOptions{.all = {{"DEDUPE_RETENTION_HOURS", "0.001"}}});
  stock_before_ = shop_->stock_totals();
  const std::string url = shop_->url("user-service") + "/users";
  const std::string ana = R"({"email":"ana.window@example.com","password":"shop-test-1","name":"Ana"})";
  const std::string eva = R"({"email":"eva.window@example.com","password":"shop-test-1","name":"Eva"})";
  auto first = shop_->call("POST", url, ana, {}, "window-key");
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(shop_->call("POST", url, ana, {}, "window-key").status, 201);  // a replay
  auto reused = shop_->call("POST", url, eva, {}, "window-key");
  EXPECT_EQ(reused.status, 422) << reused.body;
  Reply later;
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  do {
    std::this_thread::sleep_for(100ms);
    later = shop_->call("POST", url, eva, {}, "window-key");
  } while (later.status == 422 && std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(later.status, 201) << "the key was not forgotten: " << later.body;
  // The key now names the second request: it replays that one and refuses the first.
  EXPECT_EQ(shop_->call("POST", url, eva, {}, "window-key").status, 201);
  EXPECT_EQ(shop_->call("POST", url, ana, {}, "window-key").status, 422);
}

// A service's outbox rows, and how many of them the relay has not marked published yet
// (SQLite: above the stored watermark). Read through the file, as an operator would.
struct OutboxRows {
  std::int64_t rows = -1, pending = -1;
};
OutboxRows outbox_rows(const std::string& db_path) {
  namespace storage = mercado::storage;
  mercado::core::BlockingPool pool(1);
  auto db = storage::open_database("sqlite://" + db_path, pool);
  if (!db) throw std::runtime_error("cannot open " + db_path + ": " + db.error().message);
  OutboxRows out;
  auto r = (*db)->transaction_blocking([&](storage::Tx& tx) -> mercado::Result<void> {
    auto rows = tx.query_value<std::int64_t>("SELECT COUNT(*) FROM mercado_outbox");
    auto pending = tx.query_value<std::int64_t>(
        "SELECT COUNT(*) FROM mercado_outbox WHERE seq > (SELECT MAX(dispatched_through) FROM mercado_outbox_lease)");
    if (!rows) return std::unexpected(rows.error());
    if (!pending) return std::unexpected(pending.error());
    out = {rows->value_or(-1), pending->value_or(-1)};
    return {};
  }, storage::TxMode::read);
  if (!r) throw std::runtime_error("cannot count outbox rows: " + r.error().message);
  return out;
}

// Published events stay in the outbox table for --outbox-retention-hours; the relay deletes
// older ones when it looks (hourly, and on its first idle round after a start). Here
// user-service keeps them 3.6 s, the others the default week.
TEST_F(ShopTest, PublishedEventsLeaveTheOutboxAfterTheRetention) {
  shop_.reset();
  shop_.emplace(ShopOptions{.per_service = {{"user-service", {{"OUTBOX_RETENTION_HOURS", "0.001"}}}}});
  stock_before_ = shop_->stock_totals();
  const std::string users_db = shop_->data_dir() + "/user-service.db";
  const std::string orders_db = shop_->data_dir() + "/order-service.db";
  auto c = customer(5'000);  // UserRegistered, in user-service's outbox
  const std::string order_id = order(c, items({{"p-2", 1}}));
  ASSERT_FALSE(order_id.empty());
  EXPECT_EQ(shop_->wait_final(c, order_id).json.at("status").as_string(), "CONFIRMED");
  // Wait until both relays have marked what they published: only that is ever purged.
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while ((outbox_rows(users_db).pending != 0 || outbox_rows(orders_db).pending != 0) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ASSERT_EQ(outbox_rows(users_db).pending, 0);
  ASSERT_EQ(outbox_rows(orders_db).pending, 0);
  // The relay's first purge, on its first idle round after the start, came within 3.6 s of
  // the row: it was kept.
  EXPECT_GE(outbox_rows(users_db).rows, 1);
  const auto orders_kept = outbox_rows(orders_db).rows;
  EXPECT_GE(orders_kept, 2);  // OrderCreated, OrderConfirmed
  std::this_thread::sleep_for(3700ms);  // older than 3.6 s now

  for (const std::string s : {"user-service", "order-service"}) {
    shop_->stop(s);
    shop_->start(s);
  }
  while (outbox_rows(users_db).rows != 0 && std::chrono::steady_clock::now() < deadline + 30s) {
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(outbox_rows(users_db).rows, 0) << "user-service's published events outlived its 3.6 s retention";
  // order-service restarted with the default: a week (whether or not its first purge has run).
  EXPECT_EQ(outbox_rows(orders_db).rows, orders_kept) << "order-service keeps them a week";
}

// The internal commands derive their ids from the order id: a retry (the same details)
// answers what was done, and the order's id with other details is refused (409), the same
// on all three, whether or not an Idempotency-Key comes with it.
TEST_F(ShopTest, AnOrdersIdWithOtherDetailsIsAConflictOnEveryInternalCommand) {
  auto c = customer(5'000);
  const std::string order_id = "direct-order-1";
  orders_.push_back(order_id);  // its payment counts as captured money
  const auto& svc = shop_->service_auth();
  const auto p2 = available("p-2");
  struct Case {
    std::string url, body, other;
  };
  const std::vector<Case> cases = {
      {shop_->url("inventory-service") + "/reservations",
       bj::serialize(bj::object{{"order_id", order_id}, {"items", items({{"p-2", 2}, {"p-1", 1}})}}),
       bj::serialize(bj::object{{"order_id", order_id}, {"items", items({{"p-2", 1}, {"p-1", 1}})}})},
      {shop_->url("payment-service") + "/payments",
       bj::serialize(bj::object{{"order_id", order_id}, {"customer_id", c.id}, {"amount", 1'500}}),
       bj::serialize(bj::object{{"order_id", order_id}, {"customer_id", c.id}, {"amount", 1'600}})},
      {shop_->url("shipping-service") + "/shipments",
       bj::serialize(bj::object{{"order_id", order_id}, {"address", "Calle Mayor 1, Madrid"}}),
       bj::serialize(bj::object{{"order_id", order_id}, {"address", "Gran Via 2, Madrid"}})},
  };
  for (const auto& k : cases) {
    auto first = shop_->call("POST", k.url, k.body, svc);
    ASSERT_EQ(first.status, 201) << k.url << ": " << first.body;
    auto retry = shop_->call("POST", k.url, k.body, svc);
    EXPECT_EQ(retry.status, 201) << k.url << ": " << retry.body;
    EXPECT_EQ(retry.json.at("id"), first.json.at("id")) << k.url;
    auto other = shop_->call("POST", k.url, k.other, svc);
    EXPECT_EQ(other.status, 409) << k.url << ": " << other.body;
    auto keyed = shop_->call("POST", k.url, k.other, svc, "other-key");
    EXPECT_EQ(keyed.status, 409) << k.url << ": " << keyed.body;
  }
  // The same quantities in another line order (or split in two lines) are the same reservation.
  auto split = shop_->call(
      "POST", cases[0].url,
      bj::serialize(bj::object{{"order_id", order_id}, {"items", items({{"p-1", 1}, {"p-2", 1}, {"p-2", 1}})}}), svc);
  EXPECT_EQ(split.status, 201) << split.body;
  EXPECT_EQ(shop_->balance(c), 5'000 - 1'500);  // charged once
  auto metrics = shop_->call("GET", shop_->url("inventory-service") + "/metrics");
  EXPECT_NE(metrics.body.find("stock_reservations_total{outcome=\"conflict\"} 2"), std::string::npos) << metrics.body;
  EXPECT_EQ(available("p-2"), p2 - 2);  // reserved once
  // Undo it all, so that the products and the account are as they were.
  EXPECT_EQ(shop_->call("DELETE", cases[0].url + "/res-" + order_id, {}, svc).status, 200);
  EXPECT_EQ(shop_->call("POST", cases[1].url + "/pay-" + order_id + "/refund", {}, svc).status, 200);
  EXPECT_EQ(shop_->call("DELETE", cases[2].url + "/shp-" + order_id, {}, svc).status, 200);
  EXPECT_EQ(shop_->balance(c), 5'000);
}

// Payments from one account sent at the same time never take more than it holds: each one
// decides on the balance the one before it left (payment-service decides and appends in one
// write transaction; the members of a group commit run one after another).
TEST_F(ShopTest, PaymentsFromOneAccountAtTheSameTimeNeverOverdrawIt) {
  auto c = customer(1'000);
  const auto& svc = shop_->service_auth();
  const std::string account_url = shop_->url("payment-service") + "/accounts/" + c.id;
  const auto before = shop_->call("GET", account_url, {}, svc);
  ASSERT_EQ(before.status, 200) << before.body;
  constexpr int kPayments = 12;
  std::vector<std::future<Reply>> replies;
  for (int i = 0; i < kPayments; ++i) {
    const std::string order_id = "together-" + std::to_string(i) + "-" + c.id;
    orders_.push_back(order_id);  // its payment, if any, counts as captured money
    const std::string body = bj::serialize(bj::object{{"order_id", order_id}, {"customer_id", c.id}, {"amount", 300}});
    replies.push_back(std::async(std::launch::async, [this, body, &svc] {
      return shop_->call("POST", shop_->url("payment-service") + "/payments", body, svc);
    }));
  }
  int paid = 0, refused = 0;
  for (auto& f : replies) {
    const auto r = f.get();
    if (r.status == 201) {
      ++paid;
    } else {
      EXPECT_EQ(r.status, 409) << r.body;
      EXPECT_NE(r.body.find("insufficient-funds"), std::string::npos) << r.body;
      ++refused;
    }
  }
  EXPECT_EQ(paid, 3);
  EXPECT_EQ(refused, kPayments - 3);
  const auto after = shop_->call("GET", account_url, {}, svc);
  ASSERT_EQ(after.status, 200) << after.body;
  EXPECT_EQ(after.json.at("balance").as_int64(), 100);
  EXPECT_EQ(after.json.at("version").as_int64(), before.json.at("version").as_int64() + 3);
}

TEST_F(ShopTest, OrderServiceKilledMidSagaFinishesTheSagaAfterRestart) {
  auto c = customer(10'000);
  shop_->signal("shipping-service", SIGSTOP);  // the saga will hang in ship_order
  auto id = order(c, items({{"p-2", 1}}));
  // Wait until payment was taken: the saga is between process_payment and ship_order.
  ASSERT_TRUE(wait_paid(id));
  shop_->stop("order-service", /*hard=*/true);  // SIGKILL mid-saga
  shop_->signal("shipping-service", SIGCONT);
  shop_->start("order-service");
  auto final_order = shop_->wait_final(c, id);
  EXPECT_EQ(final_order.json.at("status").as_string(), "CONFIRMED") << final_order.body;
  EXPECT_EQ(shop_->balance(c), 10'000 - 899);  // charged exactly once
  EXPECT_EQ(reservation_status(id, "COMMITTED"), "COMMITTED");
}

// The reservation of a confirmed order is committed after the fact: recorded with the
// confirmation, it survives order-service being killed while inventory cannot be reached,
// and is committed once both are back.
TEST_F(ShopTest, AConfirmedOrdersReservationIsCommittedEvenAcrossACrash) {
  auto c = customer(10'000);
  shop_->signal("shipping-service", SIGSTOP);  // the saga waits in ship_order: reserved and paid
  auto id = order(c, items({{"p-2", 3}}));
  ASSERT_TRUE(wait_paid(id));
  EXPECT_EQ(reservation_status(id, "RESERVED", 0s), "RESERVED");
  shop_->stop("inventory-service");  // the committer will not get through
  shop_->signal("shipping-service", SIGCONT);
  auto final_order = shop_->wait_final(c, id);
  EXPECT_EQ(final_order.json.at("status").as_string(), "CONFIRMED") << final_order.body;
  std::this_thread::sleep_for(300ms);            // the committer tries, and backs off
  shop_->stop("order-service", /*hard=*/true);  // SIGKILL: only the database remembers
  shop_->start("inventory-service");
  EXPECT_EQ(reservation_status(id, "RESERVED", 0s), "RESERVED");
  shop_->start("order-service");
  EXPECT_EQ(reservation_status(id, "COMMITTED"), "COMMITTED");
  EXPECT_EQ(shop_->balance(c), 10'000 - 3 * 899);
}

}  // namespace
}  // namespace shop::testing

namespace shop::testing {
namespace {

TEST_F(ShopTest, BusinessMetricsCountWhatHappened) {
  auto c = customer(1'000);
  auto ok = order(c, items({{"p-2", 1}}));
  auto poor = order(c, items({{"p-4", 1}}));  // 45.00 > what is left
  EXPECT_EQ(shop_->wait_final(c, ok).json.at("status").as_string(), "CONFIRMED");
  EXPECT_EQ(shop_->wait_final(c, poor).json.at("status").as_string(), "CANCELLED");
  EXPECT_EQ(reservation_status(ok, "COMMITTED"), "COMMITTED");
  auto inv = shop_->call("GET", shop_->url("inventory-service") + "/metrics").body;
  EXPECT_NE(inv.find("stock_reservations_total{outcome=\"reserved\"} 2"), std::string::npos) << inv;
  EXPECT_NE(inv.find("stock_reservations_total{outcome=\"committed\"} 1"), std::string::npos);
  EXPECT_NE(inv.find("stock_reservations_total{outcome=\"released\"} 1"), std::string::npos);
  auto pay = shop_->call("GET", shop_->url("payment-service") + "/metrics").body;
  EXPECT_NE(pay.find("payments_total{outcome=\"completed\"} 1"), std::string::npos) << pay;
  EXPECT_NE(pay.find("payments_total{outcome=\"insufficient_funds\"} 1"), std::string::npos);
  auto ord = shop_->call("GET", shop_->url("order-service") + "/metrics").body;
  EXPECT_NE(ord.find("orders_created_total 2"), std::string::npos);
  EXPECT_NE(ord.find("saga_duration_seconds_count{type=\"order\",outcome=\"completed\"} 1"), std::string::npos) << ord;
  // The database's counters: both orders and their sagas were written.
  auto counter = [](const std::string& text, const std::string& name) {
    auto at = text.find("\n" + name + " ");
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size() + 2));
  };
  EXPECT_GE(counter(ord, "db_write_transactions_total"), 4.0) << ord;
  EXPECT_GE(counter(ord, "db_write_commits_total"), 1.0);
  EXPECT_GT(counter(ord, "db_write_seconds_total"), 0.0);
  EXPECT_GE(counter(inv, "db_write_transactions_total"), 3.0);
  EXPECT_GE(counter(ord, "db_pages_written_total"), 4.0) << "each commit writes at least a page";
}

}  // namespace
}  // namespace shop::testing
