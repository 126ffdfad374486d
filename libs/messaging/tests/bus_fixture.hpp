#pragma once
// Test support for the messaging suites: an io thread, a blocking pool, scratch buses of
// either transport, and thread-safe collectors that wait (bounded) for real deliveries.

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_future.hpp>

#include <mercado/core/blocking_pool.hpp>
#include <mercado/core/io_runtime.hpp>
#include <mercado/messaging/event_bus.hpp>
#include <mercado/observability/metrics.hpp>

#include "scratch_database.hpp"

namespace mercado::messaging::testing {

namespace asio = boost::asio;
using storage::testing::env;
using storage::testing::ScratchDir;
using storage::testing::servers_required;

enum class Transport { sqlite, amqp };
inline std::string to_string(Transport t) { return t == Transport::amqp ? "amqp" : "sqlite"; }

inline std::string random_name(const std::string& prefix) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return prefix + std::to_string(rng() % 1000000000000ULL);
}

// Where a test's bus lives: a fresh SQLite file, or the test RabbitMQ with a fresh exchange
// (so that tests never see each other's messages).
struct BusPlace {
  Transport transport = Transport::sqlite;
  std::string url;
  std::string exchange = "events";
  std::shared_ptr<ScratchDir> dir;

  // nullopt (and why) when the transport's server is not configured.
  static std::optional<BusPlace> create(Transport t, std::string& why_not) {
    BusPlace p;
    p.transport = t;
    if (t == Transport::sqlite) {
      p.dir = std::make_shared<ScratchDir>();
      p.url = "sqlite://" + p.dir->path() + "/bus.db";
      return p;
    }
    p.url = env("MERCADO_TEST_AMQP_URL");
    if (p.url.empty()) {
      why_not = "MERCADO_TEST_AMQP_URL is not set (eval \"$(scripts/test-servers.sh start)\")";
      return std::nullopt;
    }
    p.exchange = random_name("test-events-");
    return p;
  }
};

#define MERCADO_BUS_OR_SKIP(var, transport)                                       \
  do {                                                                            \
    std::string why_not_;                                                         \
    var = ::mercado::messaging::testing::BusPlace::create(transport, why_not_);   \
    if (!var) {                                                                   \
      if (::mercado::storage::testing::servers_required()) FAIL() << why_not_;    \
      GTEST_SKIP() << why_not_;                                                   \
    }                                                                             \
  } while (0)

// Collects deliveries from handlers on any thread; waits for counts with a bounded timeout
// (waiting for real deliveries, never a fixed sleep).
class Collector {
 public:
  void add(const std::string& key) {
    // Notify under the lock: a waiter that sees the count may destroy the collector at once.
    std::lock_guard lock(mutex_);
    ++counts_[key];
    ++total_;
    order_.push_back(key);
    cv_.notify_all();
  }
  // True once `pred` holds, false after `timeout`.
  bool wait(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return pred(); });
  }
  bool wait_total(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    return wait([&] { return total_ >= n; }, timeout);
  }
  bool wait_distinct(std::size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    return wait([&] { return counts_.size() >= n; }, timeout);
  }
  std::size_t total() const {
    std::lock_guard lock(mutex_);
    return total_;
  }
  std::map<std::string, int> counts() const {
    std::lock_guard lock(mutex_);
    return counts_;
  }
  std::vector<std::string> order() const {
    std::lock_guard lock(mutex_);
    return order_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, int> counts_;
  std::vector<std::string> order_;
  std::size_t total_ = 0;
};

class BusTestBase {
 protected:
  BusTestBase() { io_.start(); }
  ~BusTestBase() {
    io_.stop();
    io_.join();
  }

  asio::any_io_executor executor() { return io_.context(0).get_executor(); }

  // Runs a coroutine on the io thread and waits for its result.
  template <class T>
  T run(asio::awaitable<T> a) {
    return asio::co_spawn(io_.context(0), std::move(a), asio::use_future).get();
  }

  BusOptions bus_options(const BusPlace& place, std::string source = "test-service") {
    BusOptions o;
    o.source = std::move(source);
    o.executor = executor();
    o.pool = &pool_;
    o.metrics = &metrics_;
    o.exchange = place.exchange;
    o.publish_timeout = std::chrono::seconds(60);
    o.reconnect_max = std::chrono::milliseconds(1000);
    o.heartbeat = std::chrono::seconds(5);
    return o;
  }

  std::shared_ptr<EventBus> open_bus(const BusPlace& place, std::string source = "test-service") {
    auto bus = open_event_bus(place.url, bus_options(place, std::move(source)));
    if (!bus) throw std::runtime_error("open_event_bus: " + bus.error().message + " " + bus.error().internal);
    buses_.push_back(*bus);
    return *bus;
  }

  std::shared_ptr<Subscription> subscribe(EventBus& bus, SubscribeOptions options) {
    auto sub = run(bus.subscribe(std::move(options)));
    if (!sub) throw std::runtime_error("subscribe: " + sub.error().message + " " + sub.error().internal);
    return *sub;
  }

  // A collector that outlives every subscription of the test: the buses are closed in
  // TearDown, after the test body's locals are gone, and a late (duplicate) delivery must
  // not reach a destroyed collector.
  Collector& collector() { return collectors_.emplace_back(); }

  // Closes the buses when it goes out of scope: declare it after the locals that a handler
  // captures by reference, so that no delivery can reach them once they are gone.
  struct ClosesBuses {
    BusTestBase* base;
    ~ClosesBuses() { base->close_buses(); }
  };
  [[nodiscard]] ClosesBuses close_buses_on_exit() { return ClosesBuses{this}; }

  // Closes every bus opened by open_bus (their subscriptions first). Call at the end of
  // each test, before the io thread stops.
  void close_buses() {
    for (auto& b : buses_) run(b->close());
    buses_.clear();
  }

  core::IoRuntime io_{1};
  core::BlockingPool pool_{6};
  obs::Registry metrics_;
  std::deque<Collector> collectors_;  // destroyed after buses_ (members go in reverse order)
  std::vector<std::shared_ptr<EventBus>> buses_;
};

// The value of a counter child in the exposition text ("name{labels} value"), 0 if absent.
inline double metric_value(const obs::Registry& r, const std::string& series) {
  std::string text = r.expose();
  auto pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) return 0;
  return std::strtod(text.c_str() + pos + series.size() + 2, nullptr);
}

}  // namespace mercado::messaging::testing
