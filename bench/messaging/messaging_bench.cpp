// Messaging throughput and latency, end to end, each transport against its raw baseline
// measured in the same run.
//
//   messaging_bench [--messages N] [--amqp URL] [--postgres URL] [--synchronous full|normal]
//                   [--producers P] [--consumers C] [--dir DIR]
//
// End to end ("e2e"): P producer coroutines each commit a state change plus an outbox event
// in one transaction of the producer's database; the outbox relay publishes them through the
// bus; a subscription with C concurrent handlers commits each message's effect together with
// its inbox record in the consumer's database. Latency: from the start of the producer's
// transaction to the commit of the consumer's transaction. Throughput: N / (last consumer
// commit - first producer start).
//
// Raw baselines:
//   sqlite raw   the plain SQLite loop a queue table costs: INSERT a row (commit), DELETE it
//                (commit), one after the other, same file settings as the bus (WAL, the
//                chosen synchronous mode)
//   amqp raw     rabbitmq-c only: a publisher with confirms (persistent messages, a durable
//                queue) and a consumer with manual acks on its own connection and thread;
//                "confirm each" waits for every confirm, "window 64" keeps 64 in flight
//
// Service databases: SQLite files (same synchronous mode) unless --postgres is given, then
// also PostgreSQL schemas for the AMQP run.

#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_future.hpp>
#include <boost/json.hpp>

#include <CLI/CLI.hpp>

#include <libpq-fe.h>

#include <mercado/core/blocking_pool.hpp>
#include <mercado/core/io_runtime.hpp>
#include <mercado/messaging/event_bus.hpp>
#include <mercado/messaging/inbox.hpp>
#include <mercado/messaging/outbox.hpp>
#include <mercado/observability/log.hpp>
#include <mercado/storage/database.hpp>
#include <mercado/storage/migrations.hpp>

namespace asio = boost::asio;
using namespace mercado;
using Clock = std::chrono::steady_clock;

namespace {

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

struct Stats {
  std::string name;
  std::size_t messages = 0;
  double seconds = 0;
  std::vector<double> latencies_ms;
  double produced_seconds = 0;  // e2e: when the last producer transaction committed

  double rate() const { return seconds > 0 ? static_cast<double>(messages) / seconds : 0; }
  double percentile(double p) {
    if (latencies_ms.empty()) return 0;
    std::sort(latencies_ms.begin(), latencies_ms.end());
    auto i = static_cast<std::size_t>(p * static_cast<double>(latencies_ms.size() - 1));
    return latencies_ms[i];
  }
  void print() {
    double p50 = percentile(0.50), p99 = percentile(0.99);
    std::printf("%-44s %8zu msgs %9.0f msg/s   p50 %8.2f ms   p99 %8.2f ms", name.c_str(), messages, rate(), p50,
                p99);
    if (produced_seconds > 0) std::printf("   (producers done after %.2f s of %.2f s)", produced_seconds, seconds);
    std::printf("\n");
    std::fflush(stdout);
  }
};

void check_sqlite(int rc, sqlite3* db, const char* what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::fprintf(stderr, "%s: %s\n", what, sqlite3_errmsg(db));
    std::exit(1);
  }
}

// ---- raw SQLite: INSERT (commit) + DELETE (commit) per message ----
Stats raw_sqlite(const std::string& path, const std::string& synchronous, std::size_t n) {
  sqlite3* db = nullptr;
  check_sqlite(sqlite3_open(path.c_str(), &db), db, "open");
  check_sqlite(sqlite3_exec(db, ("PRAGMA journal_mode=WAL; PRAGMA synchronous=" + synchronous +
                                 "; CREATE TABLE q (id INTEGER PRIMARY KEY, body TEXT NOT NULL, t INTEGER NOT NULL)")
                                    .c_str(),
                                nullptr, nullptr, nullptr),
               db, "setup");
  sqlite3_stmt* ins = nullptr;
  sqlite3_stmt* del = nullptr;
  check_sqlite(sqlite3_prepare_v2(db, "INSERT INTO q (body, t) VALUES (?1, ?2)", -1, &ins, nullptr), db, "prepare");
  check_sqlite(sqlite3_prepare_v2(db, "DELETE FROM q WHERE id = ?1", -1, &del, nullptr), db, "prepare");
  std::string body(300, 'x');  // about the size of an envelope
  Stats s{"sqlite raw (insert+delete, synchronous=" + synchronous + ")", n, 0, {}};
  auto start = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    auto t0 = Clock::now();
    sqlite3_bind_text(ins, 1, body.data(), static_cast<int>(body.size()), SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, now_ns());
    check_sqlite(sqlite3_step(ins), db, "insert");
    sqlite3_reset(ins);
    sqlite3_bind_int64(del, 1, sqlite3_last_insert_rowid(db));
    check_sqlite(sqlite3_step(del), db, "delete");
    sqlite3_reset(del);
    s.latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  sqlite3_finalize(ins);
  sqlite3_finalize(del);
  sqlite3_close(db);
  return s;
}

// ---- raw AMQP: rabbitmq-c publish with confirms + consume with acks ----
struct AmqpTarget {
  std::string host, user, password, vhost;
  int port = 5672;
};

AmqpTarget parse_amqp(const std::string& url) {
  std::string buf = url;
  amqp_connection_info info{};
  if (amqp_parse_url(buf.data(), &info) != AMQP_STATUS_OK) {
    std::fprintf(stderr, "bad AMQP URL\n");
    std::exit(2);
  }
  return {info.host, info.user, info.password, info.vhost, info.port};
}

void die_reply(amqp_rpc_reply_t r, const char* what) {
  if (r.reply_type == AMQP_RESPONSE_NORMAL) return;
  std::fprintf(stderr, "%s failed (reply type %d)\n", what, r.reply_type);
  std::exit(1);
}

amqp_connection_state_t amqp_open(const AmqpTarget& t) {
  amqp_connection_state_t c = amqp_new_connection();
  amqp_socket_t* s = amqp_tcp_socket_new(c);
  if (amqp_socket_open(s, t.host.c_str(), t.port) != AMQP_STATUS_OK) {
    std::fprintf(stderr, "cannot connect to RabbitMQ\n");
    std::exit(1);
  }
  die_reply(amqp_login(c, t.vhost.c_str(), 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, t.user.c_str(), t.password.c_str()),
            "login");
  amqp_channel_open(c, 1);
  die_reply(amqp_get_rpc_reply(c), "channel.open");
  return c;
}

Stats raw_amqp(const AmqpTarget& t, std::size_t n, std::size_t window) {
  std::string queue = "bench-raw-" + std::to_string(now_ns());
  amqp_connection_state_t pub = amqp_open(t);
  amqp_queue_declare(pub, 1, amqp_cstring_bytes(queue.c_str()), 0, 1, 0, 0, amqp_empty_table);
  die_reply(amqp_get_rpc_reply(pub), "queue.declare");
  amqp_confirm_select(pub, 1);
  die_reply(amqp_get_rpc_reply(pub), "confirm.select");

  Stats s{"amqp raw (rabbitmq-c, " + (window == 1 ? std::string("confirm each") : "window " + std::to_string(window)) +
              ")",
          n, 0, {}};
  s.latencies_ms.reserve(n);
  std::atomic<std::int64_t> last_consumed{0};
  std::thread consumer([&] {
    amqp_connection_state_t c = amqp_open(t);
    amqp_basic_qos(c, 1, 0, 64, 0);
    amqp_basic_consume(c, 1, amqp_cstring_bytes(queue.c_str()), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    die_reply(amqp_get_rpc_reply(c), "basic.consume");
    for (std::size_t got = 0; got < n; ++got) {
      amqp_envelope_t env;
      amqp_maybe_release_buffers(c);
      die_reply(amqp_consume_message(c, &env, nullptr, 0), "consume");
      std::int64_t sent = 0;
      std::memcpy(&sent, env.message.body.bytes, sizeof sent);
      std::int64_t now = now_ns();
      s.latencies_ms.push_back(static_cast<double>(now - sent) / 1e6);
      amqp_basic_ack(c, 1, env.delivery_tag, 0);
      amqp_destroy_envelope(&env);
      last_consumed = now;
    }
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
  });

  std::string body(300, 'x');
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
  props.delivery_mode = 2;
  props.content_type = amqp_cstring_bytes("application/json");
  std::int64_t start = now_ns();
  std::size_t published = 0, confirmed = 0;
  while (confirmed < n) {
    while (published < n && published - confirmed < window) {
      std::int64_t t0 = now_ns();
      std::memcpy(body.data(), &t0, sizeof t0);
      if (amqp_basic_publish(pub, 1, amqp_empty_bytes, amqp_cstring_bytes(queue.c_str()), 0, 0, &props,
                             amqp_bytes_t{body.size(), body.data()}) != AMQP_STATUS_OK) {
        std::fprintf(stderr, "publish failed\n");
        std::exit(1);
      }
      ++published;
    }
    amqp_frame_t f;
    if (amqp_simple_wait_frame(pub, &f) != AMQP_STATUS_OK) {
      std::fprintf(stderr, "confirm wait failed\n");
      std::exit(1);
    }
    if (f.frame_type == AMQP_FRAME_METHOD && f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
      auto* a = static_cast<amqp_basic_ack_t*>(f.payload.method.decoded);
      confirmed = a->multiple ? static_cast<std::size_t>(a->delivery_tag) : confirmed + 1;
    }
  }
  consumer.join();
  s.seconds = static_cast<double>(last_consumed.load() - start) / 1e9;
  amqp_queue_delete(pub, 1, amqp_cstring_bytes(queue.c_str()), 0, 0);
  amqp_connection_close(pub, AMQP_REPLY_SUCCESS);
  amqp_destroy_connection(pub);
  return s;
}

// ---- end to end through Mercado ----
const storage::Migration kProducerSchema[] = {
    {1, "orders", "CREATE TABLE bench_orders (id TEXT PRIMARY KEY, n BIGINT NOT NULL)"}};
const storage::Migration kConsumerSchema[] = {
    {1, "effects", "CREATE TABLE bench_effects (id TEXT PRIMARY KEY, n BIGINT NOT NULL)"}};

struct E2eConfig {
  std::string name;
  std::string bus_url;
  std::string exchange = "events";
  std::string producer_db;
  std::string consumer_db;
  std::size_t messages = 2000;
  std::size_t producers = 4;
  std::size_t consumers = 4;
  std::size_t db_connections = 4;
  bool group_commit = true;  // service databases share commits between concurrent transactions
  bool ping_pong = false;    // one message at a time: the next is produced once the last was consumed
};

std::shared_ptr<storage::Database> open_db(const std::string& url, core::BlockingPool& pool, std::size_t conns,
                                           bool group_commit) {
  auto db = storage::open_database(url, pool, {.max_connections = conns, .group_commit = group_commit});
  if (!db) {
    std::fprintf(stderr, "open %s: %s %s\n", url.c_str(), db.error().message.c_str(), db.error().internal.c_str());
    std::exit(1);
  }
  return *db;
}

template <class T>
T must(Result<T> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "%s: %s %s\n", what, r.error().message.c_str(), r.error().internal.c_str());
    std::exit(1);
  }
  if constexpr (!std::is_void_v<T>) return std::move(*r);
}

asio::awaitable<void> produce(std::shared_ptr<storage::Database> db, const messaging::Outbox& outbox, std::size_t first,
                              std::size_t count) {
  for (std::size_t i = first; i < first + count; ++i) {
    std::int64_t t0 = now_ns();
    auto r = co_await db->transaction([&](storage::Tx& tx) -> Result<void> {
      std::string id = "o-" + std::to_string(i);
      if (auto x = tx.exec("INSERT INTO bench_orders (id, n) VALUES ($1, $2)", id, static_cast<std::int64_t>(i)); !x) {
        return std::unexpected(x.error());
      }
      auto e = outbox.add(tx, "BenchOrderPlaced", {{"id", id}, {"t", t0}});
      if (!e) return std::unexpected(e.error());
      return {};
    });
    must(std::move(r), "producer transaction");
  }
}

Stats e2e(const E2eConfig& cfg, core::IoRuntime& io, core::BlockingPool& pool) {
  auto producer_db = open_db(cfg.producer_db, pool, cfg.db_connections, cfg.group_commit);
  auto consumer_db = open_db(cfg.consumer_db, pool, cfg.db_connections, cfg.group_commit);
  must(storage::migrate_blocking(*producer_db, "mercado_outbox", messaging::Outbox::migrations()), "migrate");
  must(storage::migrate_blocking(*producer_db, "bench", kProducerSchema), "migrate");
  must(storage::migrate_blocking(*consumer_db, "mercado_inbox", messaging::Inbox::migrations()), "migrate");
  must(storage::migrate_blocking(*consumer_db, "bench", kConsumerSchema), "migrate");

  obs::Registry metrics;
  messaging::BusOptions bo;
  bo.source = "bench";
  bo.executor = io.context(0).get_executor();
  bo.pool = &pool;
  bo.metrics = &metrics;
  bo.exchange = cfg.exchange;
  auto producer_bus = must(messaging::open_event_bus(cfg.bus_url, bo), "open bus");
  auto consumer_bus = must(messaging::open_event_bus(cfg.bus_url, bo), "open bus");

  Stats s{cfg.name, cfg.messages, 0, {}};
  s.latencies_ms.reserve(cfg.messages);
  std::mutex m;
  std::condition_variable cv;
  std::size_t done = 0;
  std::int64_t last_commit = 0;

  auto apply = [&](storage::Tx& tx, const messaging::Delivery& d) -> Result<void> {
    std::string id(d.envelope.data.at("id").as_string());
    std::int64_t t0 = d.envelope.data.at("t").as_int64();
    auto x = tx.exec("INSERT INTO bench_effects (id, n) VALUES ($1, $2)", id, t0);
    if (!x) return std::unexpected(x.error());
    tx.on_commit([&, t0] {
      std::int64_t now = now_ns();
      std::lock_guard lock(m);
      s.latencies_ms.push_back(static_cast<double>(now - t0) / 1e6);
      last_commit = std::max(last_commit, now);
      ++done;
      cv.notify_all();
    });
    return {};
  };
  std::string queue = "bench-" + std::to_string(now_ns());
  auto sub = must(asio::co_spawn(io.context(0),
                                 consumer_bus->subscribe({.queue = queue,
                                                          .event_types = {"BenchOrderPlaced"},
                                                          .handler = messaging::idempotent(
                                                              consumer_db, messaging::Inbox(queue), apply, metrics),
                                                          .concurrency = cfg.consumers,
                                                          .prefetch = 4 * cfg.consumers}),
                                 asio::use_future)
                      .get(),
                  "subscribe");
  messaging::Outbox outbox("bench");
  auto relay = messaging::OutboxRelay::start(producer_db, producer_bus, outbox, io.context(0).get_executor(),
                                             {.metrics = &metrics});

  std::int64_t start = now_ns();
  if (cfg.ping_pong) {
    for (std::size_t i = 0; i < cfg.messages; ++i) {
      asio::co_spawn(io.context(0), produce(producer_db, outbox, i, 1), asio::use_future).get();
      std::unique_lock lock(m);
      cv.wait_for(lock, std::chrono::seconds(30), [&] { return done > i; });
    }
  } else {
    std::size_t per = cfg.messages / cfg.producers;
    std::vector<std::future<void>> producers;
    for (std::size_t p = 0; p < cfg.producers; ++p) {
      std::size_t count = p + 1 == cfg.producers ? cfg.messages - per * p : per;
      producers.push_back(asio::co_spawn(io.context(0), produce(producer_db, outbox, p * per, count), asio::use_future));
    }
    for (auto& f : producers) f.get();
  }
  std::int64_t produced = now_ns();
  {
    std::unique_lock lock(m);
    if (!cv.wait_for(lock, std::chrono::minutes(10), [&] { return done >= cfg.messages; })) {
      std::fprintf(stderr, "%s: only %zu of %zu messages arrived\n", cfg.name.c_str(), done, cfg.messages);
      std::exit(1);
    }
  }
  s.seconds = static_cast<double>(last_commit - start) / 1e9;
  s.produced_seconds = static_cast<double>(produced - start) / 1e9;
  asio::co_spawn(io.context(0), relay->stop(), asio::use_future).get();
  asio::co_spawn(io.context(0), sub->stop(), asio::use_future).get();
  asio::co_spawn(io.context(0), consumer_bus->close(), asio::use_future).get();
  asio::co_spawn(io.context(0), producer_bus->close(), asio::use_future).get();
  return s;
}

// A fresh schema on the PostgreSQL server, selected through the URL's search_path.
std::string pg_schema_url(const std::string& admin, const std::string& name) {
  PGconn* c = PQconnectdb(admin.c_str());
  PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
  PQclear(PQexec(c, ("DROP SCHEMA IF EXISTS " + name + " CASCADE; CREATE SCHEMA " + name).c_str()));
  PQfinish(c);
  return admin + (admin.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + name;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app("Mercado messaging benchmark: e2e outbox -> bus -> inbox vs raw baselines");
  std::size_t messages = 2000;
  std::string amqp_url = std::getenv("MERCADO_TEST_AMQP_URL") ? std::getenv("MERCADO_TEST_AMQP_URL") : "";
  std::string pg_url = std::getenv("MERCADO_TEST_POSTGRES_URL") ? std::getenv("MERCADO_TEST_POSTGRES_URL") : "";
  std::string synchronous = "full";
  std::size_t producers = 4, consumers = 4;
  std::string dir;
  std::vector<std::string> runs = {"sqlite", "amqp", "amqp-postgres"};
  app.add_option("--runs", runs, "which runs: sqlite, amqp, amqp-postgres (each with its raw baseline)")
      ->delimiter(',');
  app.add_option("--messages", messages, "messages per run");
  app.add_option("--amqp", amqp_url, "RabbitMQ URL (default $MERCADO_TEST_AMQP_URL; empty: skip AMQP)");
  app.add_option("--postgres", pg_url, "PostgreSQL URL for service databases (default $MERCADO_TEST_POSTGRES_URL)");
  app.add_option("--synchronous", synchronous, "SQLite synchronous mode for the bus, service files and baseline")
      ->check(CLI::IsMember({"full", "normal"}));
  app.add_option("--producers", producers, "concurrent producer coroutines");
  app.add_option("--consumers", consumers, "concurrent handlers of the subscription");
  app.add_option("--dir", dir, "directory for SQLite files (default: a new temporary directory)");
  CLI11_PARSE(app, argc, argv);

  log::init({.service = "messaging-bench", .level = log::Level::warn});
  bool own_dir = dir.empty();
  if (own_dir) {
    std::string templ = (std::filesystem::temp_directory_path() / "mercado-msg-bench-XXXXXX").string();
    dir = ::mkdtemp(templ.data());
  }
  core::IoRuntime io(1);
  io.start();
  core::BlockingPool pool(16);
  std::string q = "?synchronous=" + synchronous;
  std::printf("messaging_bench: %zu messages, %zu producers, %zu consumer handlers, SQLite synchronous=%s, %u cores\n",
              messages, producers, consumers, synchronous.c_str(), std::thread::hardware_concurrency());

  auto wanted = [&](const char* r) { return std::find(runs.begin(), runs.end(), r) != runs.end(); };
  const std::size_t probes = std::min<std::size_t>(messages, 300);
  auto ratio = [](const char* what, const Stats& e2e, const Stats& raw) {
    std::printf("  %-42s %.2f  (goal >= 0.5: %s)\n", what, e2e.rate() / raw.rate(),
                e2e.rate() >= 0.5 * raw.rate() ? "met" : "MISSED");
  };

  if (wanted("sqlite")) {
    Stats raw = raw_sqlite(dir + "/raw.db", synchronous, messages);
    raw.print();
    E2eConfig c{.name = "sqlite e2e throughput",
                .bus_url = "sqlite://" + dir + "/bus.db" + q,
                .producer_db = "sqlite://" + dir + "/producer.db" + q,
                .consumer_db = "sqlite://" + dir + "/consumer.db" + q,
                .messages = messages,
                .producers = producers,
                .consumers = consumers};
    Stats e = e2e(c, io, pool);
    e.print();
    c.name = "sqlite e2e latency (one at a time)";
    c.messages = probes;
    c.ping_pong = true;
    c.bus_url = "sqlite://" + dir + "/bus2.db" + q;
    c.producer_db = "sqlite://" + dir + "/producer2.db" + q;
    c.consumer_db = "sqlite://" + dir + "/consumer2.db" + q;
    Stats l = e2e(c, io, pool);
    l.print();
    ratio("sqlite e2e msg/s / raw insert+delete msg/s", e, raw);
  }

  if (!amqp_url.empty() && (wanted("amqp") || wanted("amqp-postgres"))) {
    AmqpTarget target = parse_amqp(amqp_url);
    Stats each = raw_amqp(target, std::min<std::size_t>(messages, 2000), 1);
    each.print();
    Stats window = raw_amqp(target, messages, 64);
    window.print();
    std::string exchange = "bench-" + std::to_string(now_ns());
    if (wanted("amqp")) {
      E2eConfig c{.name = "amqp e2e throughput (SQLite service dbs)",
                  .bus_url = amqp_url,
                  .exchange = exchange,
                  .producer_db = "sqlite://" + dir + "/producer-a.db" + q,
                  .consumer_db = "sqlite://" + dir + "/consumer-a.db" + q,
                  .messages = messages,
                  .producers = producers,
                  .consumers = consumers};
      Stats e = e2e(c, io, pool);
      e.print();
      c.name = "amqp e2e latency (one at a time)";
      c.messages = probes;
      c.ping_pong = true;
      c.producer_db = "sqlite://" + dir + "/producer-b.db" + q;
      c.consumer_db = "sqlite://" + dir + "/consumer-b.db" + q;
      Stats l = e2e(c, io, pool);
      l.print();
      ratio("amqp e2e / raw window 64", e, window);
      ratio("amqp e2e / raw confirm each", e, each);
    }
    if (!pg_url.empty() && wanted("amqp-postgres")) {
      for (bool grouped : {false, true}) {
        std::string tag = grouped ? "g" : "n";
        Stats e = e2e({.name = std::string("amqp e2e throughput (PostgreSQL dbs") + (grouped ? ", group commit)" : ")"),
                       .bus_url = amqp_url,
                       .exchange = exchange,
                       .producer_db = pg_schema_url(pg_url, "bench_producer_" + tag),
                       .consumer_db = pg_schema_url(pg_url, "bench_consumer_" + tag),
                       .messages = messages,
                       .producers = producers,
                       .consumers = consumers,
                       .db_connections = 16,
                       .group_commit = grouped},
                      io, pool);
        e.print();
        ratio("amqp+postgres e2e / raw window 64", e, window);
      }
    }
  }
  io.stop();
  io.join();
  if (own_dir) std::filesystem::remove_all(dir);
  return 0;
}
