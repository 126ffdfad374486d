#include "loadgen.hpp"

#include <sys/resource.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <random>

#include <mercado/auth/jwt.hpp>
#include <mercado/auth/service_token.hpp>
#include <mercado/core/blocking_pool.hpp>
#include <mercado/core/io_runtime.hpp>
#include <mercado/http/client.hpp>
#include <mercado/messaging/envelope.hpp>
#include <mercado/messaging/event_bus.hpp>
#include <mercado/observability/log.hpp>

namespace mercado::cli {

namespace asio = boost::asio;
namespace bj = boost::json;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

struct Completion {
  bool confirmed = false;
  Clock::time_point at;
  double delivery_ms = -1;  // from the event's creation (its envelope timestamp) to its delivery here
};

// Milliseconds from an envelope timestamp to now; -1 if it does not parse.
double ms_since(const std::string& rfc3339) {
  auto at = messaging::parse_timestamp(rfc3339);
  if (!at) return -1;
  return std::chrono::duration<double, std::milli>(std::chrono::system_clock::now() - *at).count();
}

// CPU seconds (user + system) this process has used so far.
double self_cpu_seconds() {
  rusage u{};
  if (::getrusage(RUSAGE_SELF, &u) != 0) return 0;
  auto secs = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return secs(u.ru_utime) + secs(u.ru_stime);
}

// Order outcomes seen on the bus, by order id (an outcome may arrive before its waiter).
// Each waiter sleeps on a timer of its own, and an outcome wakes only the client waiting for
// that order (a shared notifier woke all N clients per outcome: N wake-ups, N timers re-armed).
class Outcomes {
 public:
  void record(const std::string& id, bool confirmed, double delivery_ms) {
    std::shared_ptr<asio::steady_timer> waiter;
    {
      std::lock_guard lock(mutex_);
      done_[id] = {confirmed, Clock::now(), delivery_ms};
      if (auto it = waiters_.find(id); it != waiters_.end()) {
        waiter = std::move(it->second);
        waiters_.erase(it);
      }
    }
    // On the waiter's own io thread (a timer is not thread-safe); the shared pointer keeps
    // the timer alive should the waiter have timed out meanwhile.
    if (waiter) asio::post(waiter->get_executor(), [waiter] { waiter->cancel(); });
  }
  asio::awaitable<std::optional<Completion>> wait(const std::string& id, std::chrono::milliseconds timeout) {
    auto timer = std::make_shared<asio::steady_timer>(co_await asio::this_coro::executor, timeout);
    if (auto c = take(id, timer)) co_return c;
    co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));  // cancelled by record(), or the timeout
    co_return take(id, nullptr);
  }

 private:
  // The outcome of `id` if it arrived; otherwise registers `waiter` (or, when null, forgets
  // any waiter of `id`: it gave up).
  std::optional<Completion> take(const std::string& id, std::shared_ptr<asio::steady_timer> waiter) {
    std::lock_guard lock(mutex_);
    if (auto it = done_.find(id); it != done_.end()) {
      auto c = it->second;
      done_.erase(it);
      return c;
    }
    if (waiter) {
      waiters_[id] = std::move(waiter);
    } else {
      waiters_.erase(id);
    }
    return std::nullopt;
  }

  std::mutex mutex_;
  std::map<std::string, Completion> done_;
  std::map<std::string, std::shared_ptr<asio::steady_timer>> waiters_;
};

struct Stats {
  std::mutex mutex;
  std::vector<double> latencies_ms;  // confirmed orders inside the measured window
  std::vector<double> delivery_ms;   // their OrderConfirmed events: created -> delivered
  std::uint64_t confirmed = 0, cancelled = 0, errors = 0, timeouts = 0;
};

http::ClientRequest request(http::Method m, std::string url, std::string body, std::string auth) {
  http::ClientRequest r;
  r.method = m;
  r.url = std::move(url);
  r.body = std::move(body);
  if (!r.body.empty()) r.content_type = "application/json";
  if (!auth.empty()) r.headers.add("Authorization", std::move(auth));
  r.deadline = Clock::now() + 30s;
  return r;
}

struct Customer {
  std::string id;
  std::string auth;
};

asio::awaitable<std::optional<Customer>> make_customer(http::Client& client, const LaunchOptions& shop,
                                                        const std::string& service_auth, unsigned n) {
  std::random_device rd;
  const std::string email = "load-" + std::to_string(n) + "-" + std::to_string(rd()) + "@example.com";
  bj::object reg;
  reg["email"] = email;
  reg["password"] = "loadgen-pass-1";
  reg["name"] = "Load " + std::to_string(n);
  auto u = co_await client.send(request(http::Method::post, url_of(shop, "user-service") + "/users", bj::serialize(reg), ""));
  if (!u || u->status != 201) co_return std::nullopt;
  bj::object login;
  login["email"] = email;
  login["password"] = "loadgen-pass-1";
  auto t = co_await client.send(request(http::Method::post, url_of(shop, "user-service") + "/auth/login", bj::serialize(login), ""));
  if (!t || t->status != 200) co_return std::nullopt;
  Customer c{std::string(bj::parse(u->body).at("id").as_string()),
             "Bearer " + std::string(bj::parse(t->body).at("access_token").as_string())};
  bj::object dep;
  dep["amount"] = std::int64_t{1'000'000'000};
  auto d = co_await client.send(request(http::Method::post, url_of(shop, "payment-service") + "/accounts/" + c.id + "/deposits",
                                        bj::serialize(dep), service_auth));
  if (!d || d->status != 201) co_return std::nullopt;
  co_return c;
}

// A sample of /metrics' process gauges (seconds of CPU, bytes resident); -1 when unreadable.
double metric(const std::string& body, std::string_view name) {
  const std::string key = "\n" + std::string(name) + " ";
  auto pos = body.find(key);
  return pos == std::string::npos ? -1.0 : std::stod(body.substr(pos + key.size()));
}

asio::awaitable<std::vector<double>> scrape_all(http::Client& client, const LaunchOptions& shop, std::string_view name) {
  std::vector<double> out;
  for (const auto& s : shop_services(shop)) {
    auto m = co_await client.send(request(http::Method::get, url_of(shop, s.name) + "/metrics", "", ""));
    out.push_back(m && m->ok() ? metric(m->body, name) : -1.0);
  }
  co_return out;
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

}  // namespace

int run_loadgen(const LaunchOptions& shop, const LoadOptions& load) {
  log::init({.service = "mercado-loadgen", .level = log::Level::warn});
  auto secret = auth::load_secret((fs::path(shop.data_dir) / "jwt.secret").string(), "");
  if (!secret) {
    std::fprintf(stderr, "mercado loadgen: %s\n", secret.error().message.c_str());
    return 1;
  }
  auth::JwtIssuer issuer(*secret, "mercado", std::chrono::hours(1));
  auth::ServiceToken token(issuer, "mercado-loadgen");
  const std::string service_auth = token.authorization();

  core::IoRuntime rt(load.io_threads);
  core::BlockingPool pool(2);
  http::Client client({.connect_timeout = 2s, .request_timeout = 30s, .max_idle_per_origin = 512});
  Outcomes outcomes;
  Stats stats;
  auto bus = messaging::open_event_bus("sqlite://" + (fs::path(shop.data_dir) / "bus.db").string(),
                                       {.source = "mercado-loadgen", .executor = rt.context(0).get_executor(), .pool = &pool});
  if (!bus) {
    std::fprintf(stderr, "mercado loadgen: cannot open the bus: %s\n", bus.error().message.c_str());
    return 1;
  }
  rt.start();
  const std::string queue = "loadgen-" + std::to_string(::getpid());
  auto subscribed = std::make_shared<std::promise<bool>>();
  auto subscribed_future = subscribed->get_future();
  std::shared_ptr<messaging::Subscription> subscription;
  messaging::SubscribeOptions sub;  // built here: GCC 12 rejects braced lists inside coroutines
  sub.queue = queue;
  sub.event_types = {"OrderConfirmed", "OrderCancelled"};
  sub.handler = [&outcomes](const messaging::Delivery& d) -> asio::awaitable<messaging::Outcome> {
    const auto* o = d.envelope.data.if_object();
    if (o != nullptr && o->contains("order_id")) {
      outcomes.record(std::string(o->at("order_id").as_string()), d.envelope.event_type == "OrderConfirmed",
                      ms_since(d.envelope.timestamp));
    }
    co_return messaging::Outcome::ack();
  };
  sub.concurrency = 4;
  sub.prefetch = 256;
  asio::co_spawn(rt.context(0), [&, subscribed]() -> asio::awaitable<void> {
    auto s = co_await (*bus)->subscribe(sub);
    if (s) subscription = *s;
    subscribed->set_value(s.has_value());
  }, asio::detached);
  if (!subscribed_future.get()) {
    std::fprintf(stderr, "mercado loadgen: cannot subscribe to the bus\n");
    return 1;
  }

  std::printf("loadgen: creating %u customers...\n", load.clients);
  std::fflush(stdout);
  std::vector<Customer> customers(load.clients);
  {
    std::atomic<unsigned> ready{0}, failed{0};
    auto all = std::make_shared<std::promise<void>>();
    auto all_future = all->get_future();
    for (unsigned i = 0; i < load.clients; ++i) {
      asio::co_spawn(rt.next(), [&, i, all]() -> asio::awaitable<void> {
        auto c = co_await make_customer(client, shop, service_auth, i);
        if (c) customers[i] = *c; else ++failed;
        if (++ready == load.clients) all->set_value();
      }, asio::detached);
    }
    all_future.wait();
    if (failed > 0) {
      std::fprintf(stderr, "mercado loadgen: %u customers could not be created\n", failed.load());
      return 1;
    }
  }

  const auto start = Clock::now();
  const auto measure_from = start + load.warmup;
  const auto end = measure_from + load.duration;
  std::printf("loadgen: %u clients, %llds warm-up, %llds measured...\n", load.clients,
              static_cast<long long>(load.warmup.count()), static_cast<long long>(load.duration.count()));
  std::fflush(stdout);
  // Each service's CPU seconds over exactly the measured window, and this process's own (it
  // shares the machine with the services).
  std::vector<double> cpu_before, cpu_after;
  double self_before = 0, self_after = 0;
  auto sampled = std::make_shared<std::promise<void>>();
  auto sampled_future = sampled->get_future();
  asio::co_spawn(rt.context(0), [&, sampled]() -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_at(measure_from);
    co_await timer.async_wait(asio::use_awaitable);
    self_before = self_cpu_seconds();
    cpu_before = co_await scrape_all(client, shop, "process_cpu_seconds_total");
    timer.expires_at(end);
    co_await timer.async_wait(asio::use_awaitable);
    self_after = self_cpu_seconds();
    cpu_after = co_await scrape_all(client, shop, "process_cpu_seconds_total");
    sampled->set_value();
  }, asio::detached);
  std::atomic<unsigned> finished{0};
  auto all_done = std::make_shared<std::promise<void>>();
  auto all_done_future = all_done->get_future();
  for (unsigned i = 0; i < load.clients; ++i) {
    asio::co_spawn(rt.next(), [&, i, all_done]() -> asio::awaitable<void> {
      const Customer& c = customers[i];
      const std::string order_url = url_of(shop, "order-service") + "/orders";
      bj::object body;
      body["customer_id"] = c.id;
      bj::array lines;
      bj::object line;
      line["product_id"] = "p-2";
      line["quantity"] = 1;
      lines.push_back(std::move(line));
      body["items"] = std::move(lines);
      body["address"] = "Calle Mayor 1, Madrid";
      const std::string json = bj::serialize(body);
      while (Clock::now() < end) {
        const auto t0 = Clock::now();
        auto r = co_await client.send(request(http::Method::post, order_url, json, c.auth));
        if (!r || r->status != 202) {
          std::lock_guard lock(stats.mutex);
          ++stats.errors;
          continue;
        }
        const std::string id(bj::parse(r->body).at("id").as_string());
        auto done = co_await outcomes.wait(id, 30s);
        std::lock_guard lock(stats.mutex);
        if (!done) {
          ++stats.timeouts;
        } else if (t0 >= measure_from && done->at <= end) {
          if (done->confirmed) {
            ++stats.confirmed;
            stats.latencies_ms.push_back(std::chrono::duration<double, std::milli>(done->at - t0).count());
            if (done->delivery_ms >= 0) stats.delivery_ms.push_back(done->delivery_ms);
          } else {
            ++stats.cancelled;
          }
        }
      }
      if (++finished == load.clients) all_done->set_value();
    }, asio::detached);
  }
  all_done_future.wait();

  // Each service's resident memory, as it reports it on /metrics.
  std::printf("\nresults (%u clients, %llds measured)\n", load.clients, static_cast<long long>(load.duration.count()));
  {
    std::lock_guard lock(stats.mutex);
    const double secs = static_cast<double>(load.duration.count());
    std::printf("  confirmed orders/s : %.0f  (%llu confirmed, %llu cancelled, %llu errors, %llu timeouts)\n",
                static_cast<double>(stats.confirmed) / secs, static_cast<unsigned long long>(stats.confirmed),
                static_cast<unsigned long long>(stats.cancelled), static_cast<unsigned long long>(stats.errors),
                static_cast<unsigned long long>(stats.timeouts));
    auto v = stats.latencies_ms;
    std::sort(v.begin(), v.end());
    const double p50 = percentile(v, 0.50), p99 = percentile(v, 0.99), max = v.empty() ? 0.0 : v.back();
    std::printf("  latency POST->confirmed: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", p50, p99, max);
    // The last leg of that: the completion's commit, the outbox relay and the bus.
    auto d = stats.delivery_ms;
    std::sort(d.begin(), d.end());
    std::printf("    of which OrderConfirmed created->delivered: p50 %.1f ms, p99 %.1f ms\n", percentile(d, 0.50),
                percentile(d, 0.99));
  }
  sampled_future.wait();
  auto rss_done = std::make_shared<std::promise<void>>();
  auto rss_future = rss_done->get_future();
  asio::co_spawn(rt.context(0), [&, rss_done]() -> asio::awaitable<void> {
    auto rss = co_await scrape_all(client, shop, "process_resident_memory_bytes");
    const auto services = shop_services(shop);
    double total_ms = 0;
    std::uint64_t confirmed = 0;
    {
      std::lock_guard lock(stats.mutex);
      confirmed = std::max<std::uint64_t>(stats.confirmed + stats.cancelled, 1);
    }
    for (std::size_t i = 0; i < services.size(); ++i) {
      const double cpu_ms = cpu_before[i] < 0 || cpu_after[i] < 0 ? 0.0
                                                                  : (cpu_after[i] - cpu_before[i]) * 1000.0;
      total_ms += cpu_ms;
      std::printf("  %-18s RSS %.1f MiB, CPU %.2f ms/order\n", services[i].name.c_str(), rss[i] / (1024.0 * 1024.0),
                  cpu_ms / static_cast<double>(confirmed));
    }
    std::printf("  all services       CPU %.2f ms/order (%.2f cores busy)\n", total_ms / static_cast<double>(confirmed),
                total_ms / 1000.0 / static_cast<double>(load.duration.count()));
    const double self_ms = (self_after - self_before) * 1000.0;
    std::printf("  load generator     CPU %.2f ms/order (%.2f cores busy)\n", self_ms / static_cast<double>(confirmed),
                self_ms / 1000.0 / static_cast<double>(load.duration.count()));
    if (subscription) co_await subscription->stop();
    // This run's queue goes with it: a bound queue left behind would receive a copy of
    // every later OrderConfirmed forever.
    if (auto d = co_await (*bus)->delete_queue(queue); !d) {
      std::fprintf(stderr, "mercado loadgen: could not delete the bus queue %s: %s\n", queue.c_str(),
                   d.error().message.c_str());
    }
    co_await (*bus)->close();
    rss_done->set_value();
  }, asio::detached);
  rss_future.wait();
  rt.stop();
  rt.join();
  return 0;
}

}  // namespace mercado::cli
