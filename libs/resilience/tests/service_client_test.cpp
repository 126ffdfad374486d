// End to end: ServiceClient -> http::Client -> a real, flaky http::Server on 127.0.0.1:0.
#include <mercado/resilience/service_client.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "test_env.hpp"
#include "test_support.hpp"

namespace mercado::resilience {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using http::testing::TestServer;
using testing::TestEnv;

// A downstream whose health the test switches; it counts what reaches its handlers.
struct FlakyDownstream {
  std::atomic<bool> healthy{true};
  std::atomic<int> fail_next{0};  // answer 503 to this many requests, then follow `healthy`
  std::atomic<int> handled{0};
  std::mutex mutex;
  std::vector<std::string> budgets;          // X-Request-Timeout-Ms as received
  std::vector<std::string> idempotency_keys;

  void routes(http::Server& s) {
    auto handler = [this](http::Request& req) -> asio::awaitable<http::Response> {
      handled.fetch_add(1);
      {
        std::lock_guard lock(mutex);
        budgets.emplace_back(req.header(http::kDeadlineHeader).value_or(""));
        idempotency_keys.emplace_back(req.header("Idempotency-Key").value_or(""));
      }
      bool fail = !healthy.load();
      for (int n = fail_next.load(); n > 0;) {
        if (fail_next.compare_exchange_weak(n, n - 1)) {
          fail = true;
          break;
        }
      }
      if (fail) co_return http::Response::text(503, "unavailable");
      co_return http::Response::json(200, R"({"sku":")" + req.param("sku").value_or("") + R"(","stock":7})");
    };
    s.router().get("/stock/{sku}", handler);
    s.router().post("/reservations/{sku}", handler);
  }
};

CallResult run(std::function<asio::awaitable<CallResult>()> make) { return http::testing::run<CallResult>(std::move(make)); }

// Waits until the server has seen every client connection close (each run() closes its
// pooled connections), so that no connection closes while the server shuts down: the
// server's shutdown() races with a concurrent close (see the report for libs/http).
void quiesce(TestServer& server) {
  while (server.server().stats().open != 0) std::this_thread::yield();
}

TEST(ServiceClientEndToEnd, TheBreakerOpensNoSocketIsOpenedWhileOpenAndItClosesAfterRecovery) {
  TestEnv t;
  FlakyDownstream down;
  TestServer server([&](http::Server& s) { down.routes(s); });
  http::Client client;
  PipelineConfig policies;
  policies.circuit_breaker = CircuitBreakerConfig::consecutive(3, 30s, 2);
  policies.retry.max_attempts = 1;
  ServiceClient inventory(client, {.name = "inventory", .base_url = server.url(), .policies = policies}, t.env());
  std::vector<std::pair<CircuitState, CircuitState>> transitions;
  inventory.circuit_breaker()->add_listener([&](const StateTransition& tr) { transitions.emplace_back(tr.from, tr.to); });
  auto get = [&] { return run([&]() -> asio::awaitable<CallResult> { co_return co_await inventory.get("/stock/apple"); }); };

  // 1. Healthy.
  auto ok = get();
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->status, 200);
  EXPECT_EQ(ok->body, R"({"sku":"apple","stock":7})");

  // 2. The downstream fails: three 503s open the breaker.
  down.healthy = false;
  for (int i = 0; i < 3; ++i) {
    auto r = get();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503);
  }
  ASSERT_EQ(inventory.circuit_breaker()->state(), CircuitState::open);
  EXPECT_EQ(down.handled.load(), 4);

  // 3. While OPEN: fast failures, and nothing reaches the network.
  const auto before = client.stats();
  const auto accepted_before = server.server().stats().accepted;
  for (int i = 0; i < 10; ++i) {
    auto r = get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, CallErrc::not_permitted);
  }
  EXPECT_EQ(client.stats().requests, before.requests);
  EXPECT_EQ(client.stats().connections_opened, before.connections_opened);
  EXPECT_EQ(server.server().stats().accepted, accepted_before);
  EXPECT_EQ(down.handled.load(), 4);

  // 4. The downstream recovers; after the wait, two trial successes close the breaker.
  down.healthy = true;
  t.clock.advance(30s);
  for (int i = 0; i < 2; ++i) {
    auto r = get();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(inventory.circuit_breaker()->state(), CircuitState::closed);
  EXPECT_TRUE(get());
  EXPECT_EQ(down.handled.load(), 7);

  // 5. What the metrics and listeners saw is exactly that.
  using S = CircuitState;
  EXPECT_EQ(transitions, (std::vector<std::pair<S, S>>{{S::closed, S::open}, {S::open, S::half_open}, {S::half_open, S::closed}}));
  EXPECT_EQ(t.calls("inventory", "success"), 4U);
  EXPECT_EQ(t.calls("inventory", "failure"), 3U);
  EXPECT_EQ(t.calls("inventory", "not_permitted"), 10U);
  EXPECT_EQ(t.calls("inventory", "ignored"), 0U);
  EXPECT_EQ(t.state_gauge("inventory"), 0.0);
  EXPECT_EQ(t.counter("retry_attempts_total", "inventory"), 0U);
  EXPECT_EQ(t.counter("bulkhead_rejected_total", "inventory"), 0U);
  const std::string text = t.registry.expose();
  EXPECT_NE(text.find(R"(circuit_breaker_calls_total{name="inventory",outcome="not_permitted"} 10)"), std::string::npos);
  quiesce(server);
}

TEST(ServiceClientEndToEnd, AFailureInHalfOpenReopensWithoutTouchingTheNetworkAgain) {
  TestEnv t;
  FlakyDownstream down;
  TestServer server([&](http::Server& s) { down.routes(s); });
  http::Client client;
  PipelineConfig policies;
  policies.circuit_breaker = CircuitBreakerConfig::consecutive(2, 10s, 1);
  policies.retry.max_attempts = 1;
  ServiceClient inventory(client, {.name = "inventory", .base_url = server.url(), .policies = policies}, t.env());
  auto get = [&] { return run([&]() -> asio::awaitable<CallResult> { co_return co_await inventory.get("/stock/pear"); }); };
  down.healthy = false;
  get();
  get();
  ASSERT_EQ(inventory.circuit_breaker()->state(), CircuitState::open);
  t.clock.advance(10s);
  EXPECT_EQ(get()->status, 503);  // the one trial call
  EXPECT_EQ(inventory.circuit_breaker()->state(), CircuitState::open);
  EXPECT_EQ(get().error().code, CallErrc::not_permitted);
  EXPECT_EQ(down.handled.load(), 3);
  quiesce(server);
}

TEST(ServiceClientEndToEnd, RetriesAnIdempotentGetAgainstAFlakyServer) {
  TestEnv t;
  FlakyDownstream down;
  down.fail_next = 2;
  TestServer server([&](http::Server& s) { down.routes(s); });
  http::Client client;
  PipelineConfig policies;
  policies.retry = {.max_attempts = 3, .backoff = {.initial = 50ms, .multiplier = 2, .jitter = 0.5, .max = 1s}};
  ServiceClient inventory(client, {.name = "inventory", .base_url = server.url(), .policies = policies}, t.env());
  auto r = run([&]() -> asio::awaitable<CallResult> { co_return co_await inventory.get("/stock/fig"); });
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(down.handled.load(), 3);
  EXPECT_EQ(t.counter("retry_attempts_total", "inventory"), 2U);
  EXPECT_EQ(t.calls("inventory", "failure"), 2U);
  EXPECT_EQ(t.calls("inventory", "success"), 1U);
  const auto delays = t.sleeper.delays();
  ASSERT_EQ(delays.size(), 2U);
  EXPECT_GE(delays[0], 25ms);
  EXPECT_LE(delays[0], 75ms);
  EXPECT_GE(delays[1], 50ms);
  EXPECT_LE(delays[1], 150ms);
  quiesce(server);
}

TEST(ServiceClientEndToEnd, APostIsRetriedOnlyWithAnIdempotencyKey) {
  TestEnv t;
  FlakyDownstream down;
  TestServer server([&](http::Server& s) { down.routes(s); });
  http::Client client;
  ServiceClient inventory(client, {.name = "inventory", .base_url = server.url()}, t.env());

  down.fail_next = 1;
  auto plain = run([&]() -> asio::awaitable<CallResult> { co_return co_await inventory.post_json("/reservations/kiwi", "{}"); });
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 503);  // may have been processed: not replayed
  EXPECT_EQ(down.handled.load(), 1);

  down.fail_next = 1;
  auto keyed = run([&]() -> asio::awaitable<CallResult> {
    co_return co_await inventory.post_json("/reservations/kiwi", "{}", {}, "order-42-kiwi");
  });
  ASSERT_TRUE(keyed);
  EXPECT_EQ(keyed->status, 200);
  EXPECT_EQ(down.handled.load(), 3);
  std::lock_guard lock(down.mutex);
  EXPECT_EQ(down.idempotency_keys, (std::vector<std::string>{"", "order-42-kiwi", "order-42-kiwi"}));
  quiesce(server);
}

TEST(ServiceClientEndToEnd, TheInboundDeadlineTravelsDownstream) {
  TestEnv t;
  FlakyDownstream down;
  TestServer server([&](http::Server& s) { down.routes(s); });
  http::Client client;
  PipelineConfig policies;
  policies.attempt_timeout = 5s;
  ServiceClient inventory(client, {.name = "inventory", .base_url = server.url(), .policies = policies}, t.env());
  // The inbound request this call serves has 800 ms left.
  const CallContext inbound{.parent = nullptr, .deadline = std::chrono::steady_clock::now() + 800ms};
  ASSERT_TRUE(run([&]() -> asio::awaitable<CallResult> { co_return co_await inventory.get("/stock/a", inbound); }));
  // Without one, the attempt timeout is the cap.
  ServiceClient short_attempts(client, {.name = "short", .base_url = server.url(),
                                        .policies = {.attempt_timeout = 300ms}}, t.env());
  ASSERT_TRUE(run([&]() -> asio::awaitable<CallResult> { co_return co_await short_attempts.get("/stock/b"); }));
  std::lock_guard lock(down.mutex);
  ASSERT_EQ(down.budgets.size(), 2U);
  const long first = std::stol(down.budgets[0]);
  const long second = std::stol(down.budgets[1]);
  EXPECT_GT(first, 0);
  EXPECT_LE(first, 800);
  EXPECT_GT(second, 0);
  EXPECT_LE(second, 300);
  quiesce(server);
}

TEST(ServiceClientEndToEnd, ARefusedConnectionIsAFailureAndSafeToRetryEvenForAPost) {
  std::uint16_t port = 0;
  {
    asio::io_context ctx;
    asio::ip::tcp::acceptor a(ctx, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }  // closed: nothing listens there now
  TestEnv t;
  http::Client client;
  PipelineConfig policies;
  policies.retry.max_attempts = 2;
  ServiceClient gone(client, {.name = "gone", .base_url = "http://127.0.0.1:" + std::to_string(port), .policies = policies},
                     t.env());
  auto r = run([&]() -> asio::awaitable<CallResult> { co_return co_await gone.post_json("/x", "{}"); });
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, CallErrc::downstream);
  EXPECT_EQ(r.error().downstream.code, http::ClientErrc::refused);
  EXPECT_EQ(r.error().attempts, 2U);
  EXPECT_EQ(t.calls("gone", "failure"), 2U);
  EXPECT_EQ(t.counter("retry_attempts_total", "gone"), 1U);
}

TEST(ServiceClientEndToEnd, InvalidOptionsThrow) {
  TestEnv t;
  http::Client client;
  EXPECT_THROW(ServiceClient(client, {.name = "", .base_url = "http://x"}, t.env()), std::invalid_argument);
  EXPECT_THROW(ServiceClient(client, {.name = "x", .base_url = "https://x"}, t.env()), std::invalid_argument);
}

}  // namespace
}  // namespace mercado::resilience
