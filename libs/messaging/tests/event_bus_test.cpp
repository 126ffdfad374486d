// The bus suite: the same tests against the SQLite transport (a scratch file) and RabbitMQ
// (the test broker, a fresh exchange per test), plus each transport's own failure tests.

#include <mercado/messaging/event_bus.hpp>

#include <gtest/gtest.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <atomic>
#include <cstdio>
#include <thread>

#include <mercado/core/process.hpp>
#include <mercado/observability/trace.hpp>

#include "bus_fixture.hpp"
#include "sqlite_wal_writes.hpp"

namespace mercado::messaging {
namespace {

using namespace testing;
using std::chrono::milliseconds;
using std::chrono::seconds;

Handler collect(Collector& c, std::function<Outcome(const Delivery&)> decide = {}) {
  return [&c, decide](const Delivery& d) -> asio::awaitable<Outcome> {
    c.add(d.envelope.id);
    co_return decide ? decide(d) : Outcome::ack();
  };
}

class BusTest : public ::testing::TestWithParam<Transport>, public BusTestBase {
 protected:
  void SetUp() override { MERCADO_BUS_OR_SKIP(place_, GetParam()); }
  void TearDown() override { close_buses(); }

  std::optional<BusPlace> place_;
};

TEST_P(BusTest, PublishConsumeRoundTrip) {
  auto bus = open_bus(*place_, "order-service");
  const std::string queue = random_name("orders-");
  Collector& got = collector();
  std::mutex m;
  std::optional<Envelope> seen;
  int attempt = 0;
  obs::TraceContext consumer_trace;
  auto closer = close_buses_on_exit();  // the handler captures the locals above
  subscribe(*bus, {.queue = queue,
                   .event_types = {"OrderCreated"},
                   .handler = [&](const Delivery& d) -> asio::awaitable<Outcome> {
                     {
                       std::lock_guard lock(m);
                       seen = d.envelope;
                       attempt = d.attempt;
                       consumer_trace = d.trace;
                     }
                     got.add(d.envelope.id);
                     co_return Outcome::ack();
                   }});
  const std::string parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  auto sent = run(bus->publish("OrderCreated", {{"order_id", "o-1"}, {"total", 1999}}, {{"traceparent", parent}}));
  ASSERT_TRUE(sent) << sent.error().message << " " << sent.error().internal;
  ASSERT_TRUE(got.wait_total(1));
  std::lock_guard lock(m);
  ASSERT_TRUE(seen);
  EXPECT_EQ(seen->id, sent->id);
  EXPECT_EQ(seen->event_type, "OrderCreated");
  EXPECT_EQ(seen->source, "order-service");
  EXPECT_EQ(seen->data.at("total").as_int64(), 1999);
  EXPECT_EQ(seen->traceparent, parent);
  EXPECT_FALSE(seen->timestamp.empty());
  EXPECT_EQ(attempt, 1);
  // The handler runs in a consumer span of the producer's trace.
  EXPECT_EQ(consumer_trace.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_NE(consumer_trace.span_id_hex(), "b7ad6b7169203331");
}

TEST_P(BusTest, RoutesByEventTypeAndTopicPattern) {
  auto bus = open_bus(*place_);
  Collector& all_orders = collector();
  Collector& created_only = collector();
  subscribe(*bus, {.queue = random_name("all-"), .event_types = {"order.*"}, .handler = collect(all_orders)});
  subscribe(*bus, {.queue = random_name("created-"), .event_types = {"order.created"}, .handler = collect(created_only)});
  auto created = run(bus->publish("order.created", {{"n", 1}}));
  auto cancelled = run(bus->publish("order.cancelled", {{"n", 2}}));
  auto unrelated = run(bus->publish("payment.completed", {{"n", 3}}));  // no queue: dropped
  ASSERT_TRUE(created && cancelled && unrelated);
  ASSERT_TRUE(all_orders.wait_total(2));
  ASSERT_TRUE(created_only.wait_total(1));
  // A sentinel published after everything else shows nothing more was on its way.
  auto sentinel = run(bus->publish("order.created", {{"n", 4}}));
  ASSERT_TRUE(sentinel);
  ASSERT_TRUE(all_orders.wait_total(3));
  ASSERT_TRUE(created_only.wait_total(2));
  EXPECT_EQ(all_orders.counts(), (std::map<std::string, int>{{created->id, 1}, {cancelled->id, 1}, {sentinel->id, 1}}));
  EXPECT_EQ(created_only.counts(), (std::map<std::string, int>{{created->id, 1}, {sentinel->id, 1}}));
}

TEST_P(BusTest, QueuesKeepMessagesWhileNoConsumerRunsAndAckedOnesAreGone) {
  auto bus = open_bus(*place_);
  const std::string queue = random_name("durable-");
  Collector& first = collector();
  auto sub = subscribe(*bus, {.queue = queue, .event_types = {"Stock"}, .handler = collect(first)});
  auto m1 = run(bus->publish("Stock", {{"n", 1}}));
  ASSERT_TRUE(m1);
  ASSERT_TRUE(first.wait_total(1));
  run(sub->stop());
  auto m2 = run(bus->publish("Stock", {{"n", 2}}));
  auto m3 = run(bus->publish("Stock", {{"n", 3}}));
  ASSERT_TRUE(m2 && m3);

  // A consumer started later (another process, or this one after a restart).
  auto later = open_bus(*place_);
  Collector& second = collector();
  subscribe(*later, {.queue = queue, .event_types = {"Stock"}, .handler = collect(second)});
  ASSERT_TRUE(second.wait_total(2));
  auto m4 = run(bus->publish("Stock", {{"n", 4}}));
  ASSERT_TRUE(m4);
  ASSERT_TRUE(second.wait_total(3));
  EXPECT_EQ(second.counts(), (std::map<std::string, int>{{m2->id, 1}, {m3->id, 1}, {m4->id, 1}}));
}

TEST_P(BusTest, ADeletedQueueLosesItsMessagesAndBindings) {
  auto bus = open_bus(*place_);
  const std::string queue = random_name("deleted-");
  Collector& first = collector();
  auto sub = subscribe(*bus, {.queue = queue, .event_types = {"Gone"}, .handler = collect(first)});
  ASSERT_TRUE(run(bus->publish("Gone", {{"n", 1}})));
  ASSERT_TRUE(first.wait_total(1));
  run(sub->stop());
  ASSERT_TRUE(run(bus->publish("Gone", {{"n", 2}})));  // queued: nobody consumes now
  ASSERT_TRUE(run(bus->delete_queue(queue)));
  ASSERT_TRUE(run(bus->delete_queue(queue)));  // deleting it again is fine
  // The same name, bound to something else: neither the old messages nor the old binding.
  Collector& second = collector();
  subscribe(*bus, {.queue = queue, .event_types = {"Other"}, .handler = collect(second)});
  ASSERT_TRUE(run(bus->publish("Gone", {{"n", 3}})));
  auto other = run(bus->publish("Other", {{"n", 4}}));
  ASSERT_TRUE(other);
  ASSERT_TRUE(second.wait_total(1));
  ASSERT_FALSE(second.wait_total(2, milliseconds(500)));
  EXPECT_EQ(second.counts(), (std::map<std::string, int>{{other->id, 1}}));
}

TEST_P(BusTest, CompetingConsumersEachGetAMessageExactlyOnce) {
  constexpr int kMessages = 200;
  const std::string queue = random_name("workers-");
  auto producer = open_bus(*place_);
  // Two consumers of one queue, each with its own bus (as two processes would have).
  Collector& a = collector();
  Collector& b = collector();
  Collector& all = collector();
  auto consumer_a = open_bus(*place_);
  auto consumer_b = open_bus(*place_);
  // Each job takes 2 ms (without blocking the thread), so that one consumer cannot drain
  // the whole backlog before the other one is scheduled on a loaded machine (seen under
  // ASan with the shop tests running alongside).
  auto ack_into = [&all](Collector& mine) {
    return [&all, &mine](const Delivery& d) -> asio::awaitable<Outcome> {
      asio::steady_timer work(co_await asio::this_coro::executor, milliseconds(2));
      co_await work.async_wait(asio::use_awaitable);
      mine.add(d.envelope.id);
      all.add(d.envelope.id);
      co_return Outcome::ack();
    };
  };
  subscribe(*consumer_a, {.queue = queue, .event_types = {"Job"}, .handler = ack_into(a), .concurrency = 2, .prefetch = 4});
  subscribe(*consumer_b, {.queue = queue, .event_types = {"Job"}, .handler = ack_into(b), .concurrency = 2, .prefetch = 4});
  // A backlog for both to compete for, published in a few batches.
  for (int batch = 0; batch < 4; ++batch) {
    std::vector<Message> messages;
    for (int i = 0; i < kMessages / 4; ++i) {
      messages.push_back(to_message(make_envelope("Job", {{"i", batch * 100 + i}}, {}, "test")));
    }
    ASSERT_TRUE(run(producer->publish_batch(std::move(messages))));
  }
  ASSERT_TRUE(all.wait_total(kMessages)) << all.total();
  auto sentinel = run(producer->publish("Job", {{"i", -1}}));
  ASSERT_TRUE(sentinel);
  ASSERT_TRUE(all.wait_distinct(kMessages + 1));
  auto counts = all.counts();
  EXPECT_EQ(counts.size(), static_cast<std::size_t>(kMessages + 1));
  for (const auto& [id, n] : counts) EXPECT_EQ(n, 1) << id << " delivered " << n << " times";
  EXPECT_GT(a.total(), 0U);
  EXPECT_GT(b.total(), 0U);
  EXPECT_EQ(a.total() + b.total(), static_cast<std::size_t>(kMessages + 1));
}

TEST_P(BusTest, DeadLetterGoesToTheDeadLetterQueueWithTheReason) {
  auto bus = open_bus(*place_);
  const std::string queue = random_name("dlq-");
  Collector& got = collector();
  auto sub = subscribe(*bus, {.queue = queue, .event_types = {"Order"}, .handler = collect(got, [](const Delivery& d) {
                     if (d.envelope.data.at("lines").as_array().empty()) return Outcome::dead_letter("order has no lines");
                     return Outcome::ack();
                   })});
  auto bad = run(bus->publish("Order", {{"lines", boost::json::array{}}}));
  auto good = run(bus->publish("Order", {{"lines", boost::json::array{1}}}));
  ASSERT_TRUE(bad && good);
  ASSERT_TRUE(got.wait_total(2));
  // stop() returns once every handled message is settled (the dead letter is stored).
  run(sub->stop());
  auto taken = run(bus->take_dead_letters(queue, 10));
  ASSERT_TRUE(taken) << taken.error().message << " " << taken.error().internal;
  auto letters = *taken;
  ASSERT_EQ(letters.size(), 1U);
  EXPECT_EQ(letters[0].reason, "order has no lines");
  EXPECT_EQ(letters[0].message_id, bad->id);
  EXPECT_EQ(letters[0].event_type, "Order");
  EXPECT_EQ(letters[0].queue, queue);
  EXPECT_EQ(letters[0].deliveries, 1);
  auto body = decode_envelope(letters[0].body);
  ASSERT_TRUE(body);
  EXPECT_EQ(body->id, bad->id);
  // Taken means removed.
  auto again = run(bus->take_dead_letters(queue, 10));
  ASSERT_TRUE(again);
  EXPECT_TRUE(again->empty());
  EXPECT_EQ(got.counts().at(good->id), 1);
}

TEST_P(BusTest, RetryRedeliversAfterTheDelayAndCountsAttempts) {
  auto bus = open_bus(*place_);
  std::mutex m;
  std::vector<int> attempts;
  Collector& done = collector();
  auto closer = close_buses_on_exit();  // the handler captures the locals above
  subscribe(*bus, {.queue = random_name("retry-"),
                   .event_types = {"Flaky"},
                   .handler = [&](const Delivery& d) -> asio::awaitable<Outcome> {
                     {
                       std::lock_guard lock(m);
                       attempts.push_back(d.attempt);
                     }
                     if (d.attempt < 3) co_return Outcome::retry("downstream timed out", milliseconds(50));
                     done.add(d.envelope.id);
                     co_return Outcome::ack();
                   },
                   .max_deliveries = 5});
  auto sent = run(bus->publish("Flaky", {{"x", 1}}));
  ASSERT_TRUE(sent);
  ASSERT_TRUE(done.wait_total(1));
  std::lock_guard lock(m);
  EXPECT_EQ(attempts, (std::vector<int>{1, 2, 3}));
}

TEST_P(BusTest, RetriesRunOutIntoTheDeadLetterQueue) {
  auto bus = open_bus(*place_);
  const std::string queue = random_name("exhaust-");
  Collector& tries = collector();
  auto sub = subscribe(*bus, {.queue = queue,
                   .event_types = {"Doomed"},
                   .handler = collect(tries, [](const Delivery&) { return Outcome::retry("still failing", milliseconds(20)); }),
                   .max_deliveries = 3});
  auto sent = run(bus->publish("Doomed", {{"x", 1}}));
  ASSERT_TRUE(sent);
  ASSERT_TRUE(tries.wait_total(3));
  run(sub->stop());
  auto letters = run(bus->take_dead_letters(queue, 10)).value();
  ASSERT_EQ(letters.size(), 1U);
  EXPECT_EQ(letters[0].message_id, sent->id);
  EXPECT_EQ(letters[0].deliveries, 3);
  EXPECT_EQ(letters[0].reason, "gave up after 3 deliveries: still failing");
  EXPECT_EQ(tries.total(), 3U);
}

// The consumer's lag histogram starts at the envelope's timestamp (when the event was made).
TEST_P(BusTest, DeliveryLagIsMeasuredFromTheEnvelopesTimestamp) {
  auto bus = open_bus(*place_);
  const std::string queue = random_name("lag-");
  Collector& got = collector();
  auto sub = subscribe(*bus, {.queue = queue, .event_types = {"Order.Created"}, .handler = collect(got)});
  Envelope old = make_envelope("Order.Created", {{"n", 1}}, {}, "test");
  old.timestamp = format_timestamp(std::chrono::system_clock::now() - std::chrono::seconds(3));
  std::vector<Message> batch{to_message(old)};
  ASSERT_TRUE(run(bus->publish_batch(batch)));
  ASSERT_TRUE(got.wait_total(1));
  run(sub->stop());
  const std::string series = "mercado_message_delivery_lag_seconds_bucket{queue=\"" + queue + "\",le=\"";
  EXPECT_EQ(metric_value(metrics_, series + "2.5\"}"), 0);
  EXPECT_EQ(metric_value(metrics_, series + "5\"}"), 1);
  EXPECT_GE(metric_value(metrics_, "mercado_message_delivery_lag_seconds_sum{queue=\"" + queue + "\"}"), 3.0);
}

// Two-phase publishing (what the outbox relay uses): a deferred publish is delivered like
// any other, and make_durable then succeeds (SQLite: an unsynced commit, then a
// sync of the bus's log; RabbitMQ: a confirmed publish, nothing left to do).
TEST_P(BusTest, ADeferredPublishIsDeliveredAndThenMadeDurable) {
  auto bus = open_bus(*place_);
  const std::string queue = random_name("deferred-");
  Collector& got = collector();
  auto sub = subscribe(*bus, {.queue = queue, .event_types = {"Order.Created"}, .handler = collect(got)});
  std::vector<Message> batch;
  for (int i = 0; i < 3; ++i) batch.push_back(to_message(make_envelope("Order.Created", {{"n", i}}, {}, "test")));
  const auto before = storage::detail::wal_writes_stats();
  ASSERT_TRUE(run(bus->publish_batch_deferred(batch)));
  ASSERT_TRUE(got.wait_total(3));
  const auto published = storage::detail::wal_writes_stats();
  auto durable = run(bus->make_durable());
  ASSERT_TRUE(durable) << durable.error().internal;
  const auto synced = storage::detail::wal_writes_stats();
  ASSERT_TRUE(run(bus->make_durable()));  // nothing written since: nothing to sync
  const auto again = storage::detail::wal_writes_stats();
  run(sub->stop());
  if (GetParam() == Transport::sqlite) {
    EXPECT_EQ(published.log_syncs, before.log_syncs) << "the deferred publish synced";
    EXPECT_EQ(synced.log_syncs, published.log_syncs + 1);
    EXPECT_EQ(again.log_syncs, synced.log_syncs);
  }
  for (const auto& m : batch) EXPECT_EQ(got.counts()[m.id], 1) << m.id;
}

TEST_P(BusTest, UnparseableAndUnknownMessagesAreDeadLetteredAndTheConsumerGoesOn) {
  auto bus = open_bus(*place_);
  const std::string queue = random_name("mixed-");
  HandlerMap handlers;
  Collector& created = collector();
  handlers.on("Order.Created", collect(created));
  auto sub = subscribe(*bus, {.queue = queue, .event_types = {"Order.#"}, .handler = handlers.handler()});
  // Raw garbage straight onto the transport, then a well-formed message nobody handles.
  std::vector<Message> raw{{"garbage-1", "Order.Garbage", "", "this is { not json"}};
  ASSERT_TRUE(run(bus->publish_batch(raw)));
  auto unknown = run(bus->publish("Order.Exploded", {{"boom", true}}));
  auto fine = run(bus->publish("Order.Created", {{"ok", true}}));
  ASSERT_TRUE(unknown && fine);
  ASSERT_TRUE(created.wait_total(1));
  EXPECT_EQ(created.counts().count(fine->id), 1U);

  // The consumer went on past both; later messages are still consumed.
  auto after = run(bus->publish("Order.Created", {{"ok", 2}}));
  ASSERT_TRUE(after);
  ASSERT_TRUE(created.wait_total(2));
  run(sub->stop());
  auto letters = run(bus->take_dead_letters(queue, 10)).value();
  ASSERT_EQ(letters.size(), 2U);
  std::map<std::string, std::string> reasons;
  for (const auto& l : letters) reasons[l.event_type] = l.reason;
  EXPECT_TRUE(reasons["Order.Garbage"].starts_with("unparseable message: message is not JSON")) << reasons["Order.Garbage"];
  EXPECT_EQ(reasons["Order.Exploded"], "no handler for event type 'Order.Exploded'");
  EXPECT_EQ(metric_value(metrics_, "mercado_messages_consumed_total{queue=\"" + queue + "\",outcome=\"dead_letter\"}"), 2);
  EXPECT_EQ(metric_value(metrics_, "mercado_messages_consumed_total{queue=\"" + queue + "\",outcome=\"ack\"}"), 2);
}

TEST_P(BusTest, AThrowingHandlerIsRetriedNotFatal) {
  auto bus = open_bus(*place_);
  Collector& ok = collector();
  std::atomic<int> calls{0};
  auto closer = close_buses_on_exit();  // the handler captures the locals above
  subscribe(*bus, {.queue = random_name("throw-"),
                   .event_types = {"Bug"},
                   .handler = [&](const Delivery& d) -> asio::awaitable<Outcome> {
                     if (calls++ == 0) throw std::runtime_error("null customer");
                     ok.add(d.envelope.id);
                     co_return Outcome::ack();
                   },
                   .retry_delay = milliseconds(20)});
  ASSERT_TRUE(run(bus->publish("Bug", {{"x", 1}})));
  ASSERT_TRUE(ok.wait_total(1));
  EXPECT_EQ(calls.load(), 2);
}

// The broker goes away in the middle of a stream of publishes and consumes: every message
// whose publish succeeded is consumed (at least once) after the transport reconnects.
// RabbitMQ: the node is SIGKILLed (scripts/test-servers.sh stop-rabbitmq) while messages are
// in flight, publishing goes on against the dead broker while it is started again
// (start-rabbitmq), and those publishes complete after the reconnect. SQLite: the "broker"
// is the file and the processes using it: every bus is closed and replaced mid-stream.
TEST_P(BusTest, BrokerRestartMidStreamLosesNothing) {
  const std::string script = env("MERCADO_TEST_SERVERS_SCRIPT");
  if (GetParam() == Transport::amqp && script.empty()) {
    if (servers_required()) FAIL() << "MERCADO_TEST_SERVERS_SCRIPT is not set";
    GTEST_SKIP() << "needs scripts/test-servers.sh to restart the broker";
  }
  constexpr int kMessages = 120;
  const std::string queue = random_name("restart-");
  Collector& got = collector();
  auto producer = open_bus(*place_);
  auto consumer = open_bus(*place_);
  auto options = SubscribeOptions{.queue = queue, .event_types = {"Tick"}, .handler = collect(got),
                                  .concurrency = 2, .visibility_timeout = seconds(2)};
  auto sub = subscribe(*consumer, options);
  std::set<std::string> confirmed;
  std::thread restarter;
  // A broker that does not come back would make every later publish wait its whole
  // publish timeout (60 s each): give up after a bounded time and say why.
  const auto publishing_deadline = std::chrono::steady_clock::now() + seconds(240);
  for (int i = 0; i < kMessages; ++i) {
    if (std::chrono::steady_clock::now() > publishing_deadline) {
      ADD_FAILURE() << "publishing did not recover from the broker restart; " << confirmed.size() << " of " << i
                    << " publishes confirmed";
      break;
    }
    if (i == kMessages / 3) {
      if (GetParam() == Transport::amqp) {
        ASSERT_EQ(std::system((script + " stop-rabbitmq >/dev/null 2>&1").c_str()), 0);
        restarter = std::thread([script] {
          int rc = std::system((script + " start-rabbitmq >/dev/null 2>&1").c_str());
          EXPECT_EQ(rc, 0);
        });
      } else {
        run(consumer->close());
        consumer = open_bus(*place_);
        subscribe(*consumer, options);
        run(producer->close());
        producer = open_bus(*place_);
      }
    }
    auto sent = run(producer->publish("Tick", {{"i", i}}));
    if (sent) confirmed.insert(sent->id);
  }
  if (restarter.joinable()) restarter.join();
  // Publishes wait through the outage (publish_timeout 60 s), so all of them succeed.
  EXPECT_EQ(confirmed.size(), static_cast<std::size_t>(kMessages));
  auto deadline = std::chrono::steady_clock::now() + seconds(90);
  std::size_t missing = confirmed.size();
  while (std::chrono::steady_clock::now() < deadline) {
    auto counts = got.counts();
    missing = 0;
    for (const auto& id : confirmed) missing += counts.count(id) ? 0 : 1;
    if (missing == 0) break;
    got.wait_total(got.total() + 1, seconds(5));  // the next delivery (bounded)
  }
  EXPECT_EQ(missing, 0U) << "confirmed messages never consumed";
  if (GetParam() == Transport::amqp) {
    // Publishes made while the broker was dead completed on a new connection, and the
    // consumer came back too.
    EXPECT_GE(metric_value(metrics_, "mercado_bus_reconnects_total{connection=\"publisher\"}"), 1);
    EXPECT_GE(metric_value(metrics_, "mercado_bus_reconnects_total{connection=\"consumer " + queue + "\"}"), 1);
  }
}

INSTANTIATE_TEST_SUITE_P(Transports, BusTest, ::testing::Values(Transport::sqlite, Transport::amqp),
                         [](const auto& p) { return to_string(p.param); });

// Transport-specific behaviour.

class SqliteBusTest : public ::testing::Test, public BusTestBase {
 protected:
  void SetUp() override { MERCADO_BUS_OR_SKIP(place_, Transport::sqlite); }
  void TearDown() override { close_buses(); }
  std::optional<BusPlace> place_;
};

// A consumer that takes a message and then hangs (or dies) does not keep it: after the
// visibility timeout another consumer gets it, and the first one's late ack changes nothing.
TEST_F(SqliteBusTest, AnUnsettledMessageIsRedeliveredAfterTheVisibilityTimeout) {
  auto producer = open_bus(*place_);
  auto hung_bus = open_bus(*place_);
  auto healthy_bus = open_bus(*place_);
  const std::string queue = random_name("vis-");
  Collector& hung_took = collector();
  Collector& healthy_took = collector();
  std::promise<void> release;
  auto released = release.get_future().share();
  auto options = SubscribeOptions{.queue = queue, .event_types = {"Job"}, .visibility_timeout = milliseconds(300)};
  options.handler = [&, released](const Delivery& d) -> asio::awaitable<Outcome> {
    hung_took.add(d.envelope.id);
    // Hang (without blocking the io thread) until the test lets go.
    auto ex = co_await asio::this_coro::executor;
    asio::steady_timer t(ex);
    while (released.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      t.expires_after(milliseconds(10));
      co_await t.async_wait(asio::use_awaitable);
    }
    co_return Outcome::ack();
  };
  subscribe(*hung_bus, options);
  auto sent = run(producer->publish("Job", {{"x", 1}}));
  ASSERT_TRUE(sent);
  ASSERT_TRUE(hung_took.wait_total(1));

  std::atomic<int> healthy_attempt{0};
  auto closer = close_buses_on_exit();  // the handlers capture the locals above
  options.handler = [&](const Delivery& d) -> asio::awaitable<Outcome> {
    healthy_attempt = d.attempt;
    healthy_took.add(d.envelope.id);
    co_return Outcome::ack();
  };
  subscribe(*healthy_bus, options);
  ASSERT_TRUE(healthy_took.wait_total(1));  // after the 300 ms visibility timeout
  EXPECT_EQ(healthy_attempt.load(), 2);
  release.set_value();
  run(hung_bus->close());  // its stale ack is ignored (the delivery count moved on)

  // Nothing left: a sentinel is the next and only message the healthy consumer sees.
  auto sentinel = run(producer->publish("Job", {{"x", 2}}));
  ASSERT_TRUE(sentinel);
  ASSERT_TRUE(healthy_took.wait_total(2));
  EXPECT_EQ(healthy_took.counts(), (std::map<std::string, int>{{sent->id, 1}, {sentinel->id, 1}}));
  EXPECT_EQ(hung_took.total(), 1U);
}

// Messages published by another process wake this one's consumer through inotify: the
// consumer does not poll while it waits (its receive count stays proportional to the work).
TEST_F(SqliteBusTest, AnotherProcessesPublishesWakeTheConsumerWithoutPolling) {
  constexpr int kMessages = 50;
  auto bus = open_bus(*place_);
  const std::string queue = random_name("xproc-");
  Collector& got = collector();
  Collector& nothing = collector();
  subscribe(*bus, {.queue = queue, .event_types = {"Remote"}, .handler = collect(got)});
  // A bystander queue in the same process: the peer's publishes must not wake it.
  const std::string bystander = random_name("bystander-");
  subscribe(*bus, {.queue = bystander, .event_types = {"NobodyPublishesThis"}, .handler = collect(nothing)});
  auto before = metric_value(metrics_, "mercado_bus_receive_attempts_total{queue=\"" + queue + "\"}");
  auto bystander_before = metric_value(metrics_, "mercado_bus_receive_attempts_total{queue=\"" + bystander + "\"}");
  auto peer = core::Process::spawn({.path = MESSAGING_TEST_PEER,
                                    .args = {"publish", place_->url, "Remote", std::to_string(kMessages)}});
  ASSERT_TRUE(peer) << peer.error().message;
  ASSERT_TRUE(got.wait_total(kMessages));
  auto rc = peer->wait_for(seconds(30));
  ASSERT_TRUE(rc);
  EXPECT_EQ(*rc, 0);
  auto attempts = metric_value(metrics_, "mercado_bus_receive_attempts_total{queue=\"" + queue + "\"}") - before;
  // One attempt per wake-up; a polling consumer would have made thousands while the peer
  // process started.
  EXPECT_LE(attempts, 3.0 * kMessages + 10) << attempts;
  EXPECT_GE(attempts, 1.0);
  // Wake-ups are per queue: the bystander looked at most once more (its idle poll).
  auto bystander_attempts =
      metric_value(metrics_, "mercado_bus_receive_attempts_total{queue=\"" + bystander + "\"}") - bystander_before;
  EXPECT_LE(bystander_attempts, 2.0) << bystander_attempts;
  EXPECT_EQ(nothing.total(), 0U);
}

class AmqpBusTest : public ::testing::Test, public BusTestBase {};

TEST_F(AmqpBusTest, AnUnreachableBrokerFailsPublishAndSubscribeAfterTheTimeout) {
  BusPlace place{Transport::amqp, "amqp://guest:guest@127.0.0.1:1/%2f", "events", nullptr};
  auto options = bus_options(place);
  options.publish_timeout = milliseconds(300);
  auto bus = open_event_bus(place.url, options);
  ASSERT_TRUE(bus);
  buses_.push_back(*bus);
  EXPECT_FALSE((*bus)->healthy());
  auto sent = run((*bus)->publish("X", {{"x", 1}}));
  ASSERT_FALSE(sent);
  EXPECT_EQ(sent.error().code, Errc::unavailable);
  Collector& never = collector();
  auto sub = run((*bus)->subscribe({.queue = "q", .event_types = {"X"}, .handler = collect(never)}));
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error().code, Errc::unavailable);
  close_buses();
}

TEST_F(AmqpBusTest, RejectsUrlsItCannotUse) {
  BusOptions o;
  o.executor = executor();
  o.pool = &pool_;
  EXPECT_EQ(open_event_bus("amqps://h/v", o).error().code, Errc::invalid_argument);
  EXPECT_EQ(open_event_bus("kafka://h", o).error().code, Errc::invalid_argument);
  BusOptions no_pool;
  no_pool.executor = executor();
  EXPECT_EQ(open_event_bus("sqlite:///tmp/x.db", no_pool).error().code, Errc::invalid_argument);
}

}  // namespace
}  // namespace mercado::messaging
