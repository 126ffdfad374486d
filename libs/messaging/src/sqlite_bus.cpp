// The SQLite transport: a durable bus in one database file shared by the processes of one
// machine (NServiceBus's "database as queue"; docs/messaging.md has the design).
//
// Tables: bus_queues, bus_bindings (queue, topic pattern), bus_messages (one row per queue
// copy, with visible_at and a delivery count), bus_dead_letters. A consumer takes a batch by
// pushing visible_at forward by the visibility timeout and incrementing deliveries in one
// write transaction (SQLite serializes writers, so no two consumers take the same row); the
// delivery count is its receipt: settling (ack = delete, retry = move visible_at, dead letter
// = move to bus_dead_letters) only touches the row if the count still matches, so a consumer
// whose lease expired cannot settle someone else's delivery. Claims and settlements commit
// without waiting for the disk (TxMode::write_unsynced): a process crash loses none of them,
// a power loss may lose the last ones, and a lost claim or ack only means the message is
// delivered again -- which at-least-once delivery allows and consumers deduplicate. Publishes
// stay synced: the outbox marks its rows dispatched once the publish has returned.
//
// Wake-ups: after each commit that makes messages of a queue visible, the writer writes one
// byte to that queue's file, "<file>-notify.d/<queue>"; a process watches (inotify) the files
// of the queues it consumes, so idle consumers sleep in epoll until their queue has work (or
// a delayed message falls due), never polling tightly, and a publish wakes only the
// processes that consume what it published.

#include <fcntl.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <unordered_map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/as_tuple.hpp>

#include <mercado/core/notifier.hpp>
#include <mercado/messaging/topic.hpp>
#include <mercado/observability/log.hpp>
#include <mercado/storage/database.hpp>
#include <mercado/storage/migrations.hpp>

#include "concurrently.hpp"
#include "dispatcher.hpp"
#include "transports.hpp"

namespace mercado::messaging::detail {
namespace {

namespace asio = boost::asio;
using storage::Row;
using storage::Tx;
using storage::TxMode;

const storage::Migration kBusSchema[] = {
    {1, "bus",
     "CREATE TABLE bus_queues (name TEXT PRIMARY KEY, created_at INTEGER NOT NULL);"
     "CREATE TABLE bus_bindings (queue TEXT NOT NULL REFERENCES bus_queues (name) ON DELETE CASCADE,"
     " pattern TEXT NOT NULL, PRIMARY KEY (queue, pattern));"
     "CREATE TABLE bus_meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
     "INSERT INTO bus_meta (key, value) VALUES ('bindings', 0);"
     "CREATE TABLE bus_messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL,"
     " message_id TEXT NOT NULL, event_type TEXT NOT NULL, body TEXT NOT NULL, enqueued_at INTEGER NOT NULL,"
     " visible_at INTEGER NOT NULL, deliveries INTEGER NOT NULL DEFAULT 0);"
     "CREATE INDEX bus_messages_ready ON bus_messages (queue, visible_at, seq);"
     "CREATE TABLE bus_dead_letters (seq INTEGER PRIMARY KEY AUTOINCREMENT, queue TEXT NOT NULL,"
     " message_id TEXT NOT NULL, event_type TEXT NOT NULL, body TEXT NOT NULL, reason TEXT NOT NULL,"
     " deliveries INTEGER NOT NULL, dead_at INTEGER NOT NULL);"
     "CREATE INDEX bus_dead_letters_queue ON bus_dead_letters (queue, seq);"},
};

std::int64_t to_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

// What every part of the bus shares; subscriptions keep it alive.
struct Core {
  std::shared_ptr<storage::Database> db;
  BusOptions options;
  std::string notify_dir;
  int inotify_fd = -1;  // owned by the Watcher's stream
  std::mutex notify_mutex;
  std::unordered_map<std::string, int> notify_fds;  // queue -> its notify file, for writing
  // Per queue: what this process's consumers of the queue wait on, and the inotify watch
  // descriptor of its file.
  std::unordered_map<std::string, std::shared_ptr<core::Notifier>> notifiers;  // guarded by notify_mutex
  std::unordered_map<int, std::shared_ptr<core::Notifier>> watched;              // guarded by notify_mutex

  std::shared_ptr<core::Notifier> notifier(const std::string& queue) {
    std::lock_guard lock(notify_mutex);
    auto& n = notifiers[queue];
    if (!n) n = std::make_shared<core::Notifier>();
    return n;
  }

  // From the watcher: the queue file behind watch descriptor `wd` was written.
  void wake_watched(int wd) {
    std::shared_ptr<core::Notifier> n;
    {
      std::lock_guard lock(notify_mutex);
      if (auto it = watched.find(wd); it != watched.end()) n = it->second;
    }
    if (n) n->notify_all();
  }
  obs::CounterFamily* published = nullptr;

  // Bindings as last read, with the version they were read at. Guarded by mutex.
  std::mutex mutex;
  std::int64_t bindings_version = -1;
  std::vector<std::pair<std::string, std::string>> bindings;  // (queue, pattern)
  std::unordered_map<std::string, std::vector<std::string>> routes;  // event type -> queues

  ~Core() {
    for (auto& [queue, fd] : notify_fds) ::close(fd);
  }

  std::int64_t now_ms() const { return to_ms(options.clock->wall_now()); }

  // A queue's notify file: its name with anything but [A-Za-z0-9._-] percent-encoded.
  std::string notify_path(std::string_view queue) const {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string name;
    for (unsigned char c : queue) {
      if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
        name += static_cast<char>(c);
      } else {
        name += '%';
        name += kHex[c >> 4];
        name += kHex[c & 15];
      }
    }
    if (name.empty() || name == "." || name == "..") name = "%" + name;
    return notify_dir + "/" + name;
  }

  // Tells the consumers of these queues, in every process, that messages became visible.
  void signal(const std::vector<std::string>& queues) {
    {
      std::lock_guard lock(notify_mutex);
      for (const auto& q : queues) {
        auto it = notify_fds.find(q);
        if (it == notify_fds.end()) {
          int fd = ::open(notify_path(q).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
          if (fd < 0) continue;  // consumers still find the messages on their idle poll
          it = notify_fds.emplace(q, fd).first;
        }
        // One byte at offset 0: the file never grows; the write is what inotify reports.
        [[maybe_unused]] auto n = ::pwrite(it->second, "1", 1, 0);
        // This process's consumers of the queue (their own watch would wake them too, a
        // little later).
        if (auto local = notifiers.find(q); local != notifiers.end()) local->second->notify_all();
      }
    }
  }

  // Subscribing: this process wants to hear about `queue`.
  Result<void> watch_queue(const std::string& queue) {
    const std::string path = notify_path(queue);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return fail(Errc::unavailable, "cannot create " + path + ": " + std::strerror(errno));
    ::close(fd);
    int wd = ::inotify_add_watch(inotify_fd, path.c_str(), IN_MODIFY);
    if (wd < 0) return fail(Errc::unavailable, "inotify on " + path + ": " + std::strerror(errno));
    auto n = notifier(queue);
    std::lock_guard lock(notify_mutex);
    watched[wd] = std::move(n);
    return {};
  }

  // Inside a write transaction (which holds the write lock, so bindings cannot change).
  Result<const std::vector<std::string>*> route(Tx& tx, const std::string& event_type) {
    auto version = tx.query_value<std::int64_t>("SELECT value FROM bus_meta WHERE key = 'bindings'");
    if (!version) return std::unexpected(version.error());
    std::lock_guard lock(mutex);
    if (version->value_or(0) != bindings_version) {
      auto rows = tx.query("SELECT queue, pattern FROM bus_bindings");
      if (!rows) return std::unexpected(rows.error());
      bindings.clear();
      for (const Row& r : *rows) bindings.emplace_back(r.get<std::string>(0), r.get<std::string>(1));
      routes.clear();
      bindings_version = version->value_or(0);
    }
    auto it = routes.find(event_type);
    if (it == routes.end()) {
      std::vector<std::string> queues;
      for (const auto& [queue, pattern] : bindings) {
        if (topic_matches(pattern, event_type) && std::find(queues.begin(), queues.end(), queue) == queues.end()) {
          queues.push_back(queue);
        }
      }
      it = routes.emplace(event_type, std::move(queues)).first;
    }
    return &it->second;
  }

  // From the cached routes only: does some message of the batch go to a queue? (False may
  // just mean "not cached yet"; the write transaction decides with current bindings.)
  bool bound_by_cache(const std::vector<Message>& messages) {
    std::lock_guard lock(mutex);
    for (const Message& m : messages) {
      if (auto it = routes.find(m.event_type); it != routes.end() && !it->second.empty()) return true;
    }
    return false;
  }

  // Inside a write transaction: one row per bound queue and message; `touched` collects
  // the queues that received rows.
  Result<void> insert_messages(Tx& tx, const std::vector<Message>& messages, std::vector<std::string>& touched) {
    std::int64_t now = now_ms();
    touched.clear();
    for (const Message& m : messages) {
      auto queues = route(tx, m.event_type);
      if (!queues) return std::unexpected(queues.error());
      for (const std::string& q : **queues) {
        if (std::find(touched.begin(), touched.end(), q) == touched.end()) touched.push_back(q);
        auto i = tx.exec(
            "INSERT INTO bus_messages (queue, message_id, event_type, body, enqueued_at, visible_at)"
            " VALUES ($1, $2, $3, $4, $5, $5)",
            q, m.id, m.event_type, m.body, now);
        if (!i) return std::unexpected(i.error());
      }
    }
    return {};
  }
};

struct Taken {
  std::int64_t seq;
  int deliveries;
  std::string body;
};

struct Batch {
  std::vector<Taken> messages;
  std::optional<std::int64_t> next_due_ms;  // when nothing was ready: the next visible_at
};

struct Settlement {
  std::int64_t seq;
  int deliveries;
  Outcome outcome;
  std::chrono::milliseconds delay{0};
  bool release = false;  // give back untouched: visible now, this delivery not counted
};

class SqliteSubscription final : public Subscription, public std::enable_shared_from_this<SqliteSubscription> {
 public:
  SqliteSubscription(std::shared_ptr<Core> core, SubscribeOptions options)
      : core_(std::move(core)),
        dispatcher_(std::move(options), "sqlite", *core_->options.metrics),
        changed_(core_->notifier(dispatcher_.options().queue)) {
    attempts_ = &core_->options.metrics
                     ->counter("mercado_bus_receive_attempts_total",
                               "SQLite transport: times a consumer looked for messages (one per wake-up)", {"queue"})
                     .with({dispatcher_.options().queue});
  }

  const std::string& queue() const noexcept override { return dispatcher_.options().queue; }

  void start() {
    auto ex = dispatcher_.options().executor ? dispatcher_.options().executor : core_->options.executor;
    asio::co_spawn(ex, [self = shared_from_this()]() -> asio::awaitable<void> { co_await self->loop(); },
                   asio::detached);
  }

  asio::awaitable<void> stop() override {
    stopping_ = true;
    changed_->notify_all();
    while (true) {
      auto seen = finished_notifier_.generation();
      if (finished_) break;
      co_await finished_notifier_.wait(seen, std::chrono::hours(1));
    }
  }

 private:
  asio::awaitable<void> loop() {
    const auto& o = dispatcher_.options();
    std::chrono::milliseconds backoff{100};
    while (!stopping_) {
      auto seen = changed_->generation();
      attempts_->inc();
      auto batch = co_await core_->options.pool->run([this] { return receive(); });
      if (stopping_ && batch && !batch->messages.empty()) {
        // Taken while stopping: give them back at once rather than after the visibility timeout.
        std::vector<Settlement> back;
        for (const auto& t : batch->messages) {
          back.push_back({t.seq, t.deliveries, Outcome::retry("consumer stopping"), {}, /*release=*/true});
        }
        co_await core_->options.pool->run([this, &back] { return settle(back); });
        break;
      }
      if (!batch) {
        log::warn("sqlite bus: receive failed", {{"queue", o.queue}, {"error", batch.error().internal}});
        co_await changed_->wait(seen, backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
        continue;
      }
      backoff = std::chrono::milliseconds(100);
      if (batch->messages.empty()) {
        auto wait = core_->options.idle_poll;
        if (batch->next_due_ms) {
          auto due = std::chrono::milliseconds(std::max<std::int64_t>(*batch->next_due_ms - core_->now_ms(), 1));
          wait = std::min(wait, due);
        }
        co_await changed_->wait(seen, wait);
        continue;
      }
      std::vector<Settlement> settlements(batch->messages.size());
      co_await for_each_concurrently(batch->messages.size(), o.concurrency,
                                     [&](std::size_t i) -> asio::awaitable<void> {
                                       const Taken& t = batch->messages[i];
                                       auto d = co_await dispatcher_.dispatch(t.body, t.deliveries);
                                       settlements[i] = {t.seq, t.deliveries, std::move(d.outcome), {}};
                                       settlements[i].delay = dispatcher_.retry_delay(settlements[i].outcome);
                                     });
      auto settled = co_await core_->options.pool->run([this, &settlements] { return settle(settlements); });
      if (!settled) {
        // The messages stay taken and come back after the visibility timeout (at-least-once).
        log::warn("sqlite bus: settle failed", {{"queue", o.queue}, {"error", settled.error().internal}});
      }
    }
    finished_ = true;
    finished_notifier_.notify_all();
  }

  // On a pool worker: takes up to prefetch visible messages of the queue.
  Result<Batch> receive() {
    const auto& o = dispatcher_.options();
    std::int64_t now = core_->now_ms();
    auto due = core_->db->transaction_blocking([&](Tx& tx) {
      return tx.query("SELECT MIN(visible_at) FROM bus_messages WHERE queue = $1", o.queue);
    }, TxMode::read);
    if (!due) return std::unexpected(due.error());
    Batch batch;
    if (due->empty() || due->front().is_null(0)) return batch;
    std::int64_t next = due->front().get<std::int64_t>(0);
    if (next > now) {
      batch.next_due_ms = next;
      return batch;
    }
    std::vector<Outcome> limit_reached;  // recorded once the transaction has committed
    auto taken = core_->db->transaction_blocking([&](Tx& tx) -> Result<std::vector<Taken>> {
      auto rows = tx.query(
          "UPDATE bus_messages SET visible_at = $2, deliveries = deliveries + 1 WHERE seq IN"
          " (SELECT seq FROM bus_messages WHERE queue = $1 AND visible_at <= $3 ORDER BY visible_at, seq LIMIT $4)"
          " RETURNING seq, deliveries, body",
          o.queue, now + o.visibility_timeout.count(), now, static_cast<std::int64_t>(dispatcher_.prefetch()));
      if (!rows) return std::unexpected(rows.error());
      std::vector<Taken> out;
      for (const Row& r : *rows) {
        Taken t{r.get<std::int64_t>(0), r.get<int>(1), r.get<std::string>(2)};
        if (t.deliveries > o.max_deliveries) {
          // Taken this often without a settlement: its consumers keep dying on it.
          Outcome dead = dispatcher_.limit_outcome(t.deliveries - 1);
          if (auto m = move_to_dead_letters(tx, t.seq, t.deliveries, dead.reason, now); !m) {
            return std::unexpected(m.error());
          }
          limit_reached.push_back(std::move(dead));
          continue;
        }
        out.push_back(std::move(t));
      }
      std::sort(out.begin(), out.end(), [](const Taken& a, const Taken& b) { return a.seq < b.seq; });
      return out;
    }, TxMode::write_unsynced);  // a lost claim is a redelivery (see the file comment)
    if (!taken) return std::unexpected(taken.error());
    for (const auto& dead : limit_reached) dispatcher_.record(dead, "", "");
    batch.messages = std::move(*taken);
    return batch;
  }

  Result<void> move_to_dead_letters(Tx& tx, std::int64_t seq, int deliveries, const std::string& reason,
                                    std::int64_t now) {
    auto i = tx.exec(
        "INSERT INTO bus_dead_letters (queue, message_id, event_type, body, reason, deliveries, dead_at)"
        " SELECT queue, message_id, event_type, body, $3, deliveries, $4 FROM bus_messages"
        " WHERE seq = $1 AND deliveries = $2",
        seq, deliveries, reason, now);
    if (!i) return std::unexpected(i.error());
    auto d = tx.exec("DELETE FROM bus_messages WHERE seq = $1 AND deliveries = $2", seq, deliveries);
    if (!d) return std::unexpected(d.error());
    return {};
  }

  // On a pool worker: applies the outcomes of a batch in one transaction.
  Result<void> settle(const std::vector<Settlement>& settlements) {
    bool visible_again = false;
    auto r = core_->db->transaction_blocking([&](Tx& tx) -> Result<void> {
      std::int64_t now = core_->now_ms();
      for (const Settlement& s : settlements) {
        Result<std::int64_t> r2 = 0;
        switch (s.outcome.disposition) {
          case Disposition::ack:
            r2 = tx.exec("DELETE FROM bus_messages WHERE seq = $1 AND deliveries = $2", s.seq, s.deliveries);
            break;
          case Disposition::retry:
            r2 = tx.exec(s.release ? "UPDATE bus_messages SET visible_at = $3, deliveries = deliveries - 1"
                                     " WHERE seq = $1 AND deliveries = $2"
                                   : "UPDATE bus_messages SET visible_at = $3 WHERE seq = $1 AND deliveries = $2",
                         s.seq, s.deliveries, now + s.delay.count());
            visible_again = visible_again || s.delay.count() == 0;
            break;
          case Disposition::dead_letter:
            if (auto m = move_to_dead_letters(tx, s.seq, s.deliveries, s.outcome.reason, now); !m) {
              return std::unexpected(m.error());
            }
            break;
        }
        if (!r2) return std::unexpected(r2.error());
      }
      return {};
    }, TxMode::write_unsynced);  // a lost settlement is a redelivery (see the file comment)
    if (r && visible_again) core_->signal({dispatcher_.options().queue});
    return r;
  }

  std::shared_ptr<Core> core_;
  Dispatcher dispatcher_;
  std::shared_ptr<core::Notifier> changed_;  // this queue's wake-ups
  obs::Counter* attempts_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> finished_{false};
  core::Notifier finished_notifier_;
};

// Reads inotify events for the notify file and wakes the consumers of this process.
struct Watcher {
  explicit Watcher(asio::any_io_executor ex) : stream(std::move(ex)) {}
  asio::posix::stream_descriptor stream;
};

class SqliteBus final : public EventBus {
 public:
  SqliteBus(std::shared_ptr<Core> core, std::shared_ptr<Watcher> watcher)
      : EventBus(core->options.source, *core->options.clock), core_(std::move(core)), watcher_(std::move(watcher)) {}
  ~SqliteBus() override { close_watcher(); }

  std::string_view transport() const noexcept override { return "sqlite"; }
  bool healthy() const noexcept override { return !closed_; }

  asio::awaitable<Result<void>> publish_batch(std::vector<Message> messages) override {
    return insert(std::move(messages), TxMode::write);
  }

  // Committed without a sync, on the calling thread (the bus's database runs unsynced writes
  // inline): consumers are woken as soon as the rows are in the shared file, and the caller
  // (the outbox relay) syncs the log once for all it published before it marks them.
  asio::awaitable<Result<void>> publish_batch_deferred(std::vector<Message> messages) override {
    return insert(std::move(messages), TxMode::write_unsynced);
  }

  // Syncs only when a deferred publish has written since the last sync (a service whose
  // events nobody is bound to writes nothing, and so syncs nothing).
  asio::awaitable<Result<void>> make_durable() override {
    if (closed_) co_return fail(Errc::unavailable, "event bus closed");
    const std::uint64_t wanted = deferred_writes_.load();
    if (wanted == synced_writes_.load()) co_return Result<void>{};
    auto r = co_await core_->db->sync_log();
    if (!r) co_return r;
    std::uint64_t synced = synced_writes_.load();
    while (synced < wanted && !synced_writes_.compare_exchange_weak(synced, wanted)) {
    }
    co_return Result<void>{};
  }

 private:
  asio::awaitable<Result<void>> insert(std::vector<Message> messages, TxMode mode) {
    if (closed_) co_return fail(Errc::unavailable, "event bus closed");
    if (messages.empty()) co_return Result<void>{};
    auto core = core_;
    // Messages no queue is bound to are dropped (as by an AMQP topic exchange): unless the
    // cached routes already show a queue, find out with a read, so that publishing them
    // takes no write lock on the shared file.
    Result<bool> bound = core->bound_by_cache(messages);
    if (!*bound) {
      bound = co_await core->db->transaction(
          [&core, &messages](Tx& tx) -> Result<bool> {
            for (const Message& m : messages) {
              auto queues = core->route(tx, m.event_type);
              if (!queues) return std::unexpected(queues.error());
              if (!(*queues)->empty()) return true;
            }
            return false;
          },
          TxMode::read);
    }
    if (!bound) co_return std::unexpected(bound.error());
    if (!*bound) {
      for (const Message& m : messages) core->published->with({"sqlite", m.event_type}).inc();
      co_return Result<void>{};
    }
    // Concurrent publishers share commits (the bus database has group commit on).
    std::vector<std::string> touched;
    auto r = co_await core->db->transaction(
        [&core, &messages, &touched](Tx& tx) { return core->insert_messages(tx, messages, touched); }, mode);
    // Counted before this returns, so a make_durable() called after it syncs.
    if (mode == TxMode::write_unsynced) ++deferred_writes_;
    if (r) {
      for (const Message& m : messages) core->published->with({"sqlite", m.event_type}).inc();
      if (!touched.empty()) core->signal(touched);
    }
    co_return r;
  }

 public:
  asio::awaitable<Result<std::shared_ptr<Subscription>>> subscribe(SubscribeOptions options) override {
    if (auto v = Dispatcher::validate(options); !v) co_return std::unexpected(v.error());
    if (closed_) co_return fail(Errc::unavailable, "event bus closed");
    auto core = core_;
    auto declared = co_await core->options.pool->run([&core, &options] {
      return core->db->transaction_blocking([&](Tx& tx) -> Result<void> {
        auto q = tx.exec("INSERT INTO bus_queues (name, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                         options.queue, core->now_ms());
        if (!q) return std::unexpected(q.error());
        std::int64_t added = 0;
        for (const auto& pattern : options.event_types) {
          auto b = tx.exec("INSERT INTO bus_bindings (queue, pattern) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                           options.queue, pattern);
          if (!b) return std::unexpected(b.error());
          added += *b;
        }
        if (added > 0) {
          auto v = tx.exec("UPDATE bus_meta SET value = value + 1 WHERE key = 'bindings'");
          if (!v) return std::unexpected(v.error());
        }
        return {};
      });
    });
    if (!declared) co_return std::unexpected(declared.error());
    if (auto w = core->watch_queue(options.queue); !w) co_return std::unexpected(w.error());
    auto sub = std::make_shared<SqliteSubscription>(core, std::move(options));
    {
      std::lock_guard lock(mutex_);
      subscriptions_.push_back(sub);
    }
    sub->start();
    co_return std::shared_ptr<Subscription>(sub);
  }

  asio::awaitable<Result<std::vector<DeadLetter>>> take_dead_letters(std::string queue, std::size_t max) override {
    auto core = core_;
    co_return co_await core->options.pool->run([&core, &queue, max] {  // coro-capture-ok: max is a size
      return core->db->transaction_blocking([&](Tx& tx) -> Result<std::vector<DeadLetter>> {
        auto rows = tx.query(
            "DELETE FROM bus_dead_letters WHERE seq IN"
            " (SELECT seq FROM bus_dead_letters WHERE queue = $1 ORDER BY seq LIMIT $2)"
            " RETURNING seq, queue, message_id, event_type, body, reason, deliveries",
            queue, static_cast<std::int64_t>(max));
        if (!rows) return std::unexpected(rows.error());
        std::vector<std::pair<std::int64_t, DeadLetter>> out;
        for (const Row& r : *rows) {
          out.push_back({r.get<std::int64_t>(0),
                         DeadLetter{r.get<std::string>(1), r.get<std::string>(2), r.get<std::string>(3),
                                    r.get<std::string>(4), r.get<std::string>(5), r.get<int>(6)}});
        }
        std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        std::vector<DeadLetter> letters;
        for (auto& [seq, l] : out) letters.push_back(std::move(l));
        return letters;
      });
    });
  }

  asio::awaitable<Result<void>> delete_queue(std::string queue) override {
    auto core = core_;
    co_return co_await core->options.pool->run([&core, &queue] {
      return core->db->transaction_blocking([&](Tx& tx) -> Result<void> {
        for (const char* sql : {"DELETE FROM bus_messages WHERE queue = $1", "DELETE FROM bus_dead_letters WHERE queue = $1",
                                "DELETE FROM bus_bindings WHERE queue = $1", "DELETE FROM bus_queues WHERE name = $1"}) {
          if (auto r = tx.exec(sql, queue); !r) return std::unexpected(r.error());
        }
        // Publishers reload their routes.
        if (auto v = tx.exec("UPDATE bus_meta SET value = value + 1 WHERE key = 'bindings'"); !v) {
          return std::unexpected(v.error());
        }
        return {};
      });
    });
  }

  asio::awaitable<void> close() override {
    closed_ = true;
    std::vector<std::shared_ptr<SqliteSubscription>> subs;
    {
      std::lock_guard lock(mutex_);
      subs.swap(subscriptions_);
    }
    for (auto& s : subs) co_await s->stop();
    close_watcher();
  }

 private:
  void close_watcher() {
    if (!watcher_) return;
    // The stream is used only on the bus executor.
    asio::post(watcher_->stream.get_executor(), [w = watcher_] {
      boost::system::error_code ec;
      w->stream.close(ec);
    });
    watcher_.reset();
  }

  std::shared_ptr<Core> core_;
  std::shared_ptr<Watcher> watcher_;
  std::atomic<bool> closed_{false};
  std::atomic<std::uint64_t> deferred_writes_{0};  // deferred publishes that wrote
  std::atomic<std::uint64_t> synced_writes_{0};    // of those, how many a sync covered
  std::mutex mutex_;
  std::vector<std::shared_ptr<SqliteSubscription>> subscriptions_;
};

asio::awaitable<void> watch(std::shared_ptr<Watcher> w, std::weak_ptr<Core> weak_core) {
  char buf[4096];
  while (true) {
    auto [ec, n] = co_await w->stream.async_read_some(asio::buffer(buf), asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;  // closed
    auto core = weak_core.lock();
    if (!core) co_return;
    for (std::size_t at = 0; at + sizeof(inotify_event) <= n;) {
      // Fields copied out: a coroutine frame does not keep a buffer's alignas (UBSan saw it).
      int wd = 0;
      std::uint32_t len = 0;
      std::memcpy(&wd, buf + at + offsetof(inotify_event, wd), sizeof wd);
      std::memcpy(&len, buf + at + offsetof(inotify_event, len), sizeof len);
      core->wake_watched(wd);
      at += sizeof(inotify_event) + len;
    }
  }
}

}  // namespace

Result<std::shared_ptr<EventBus>> open_sqlite_bus(const storage::DatabaseUrl& url, BusOptions options) {
  auto db = storage::open_database("sqlite://" + url.path + (url.query.contains("synchronous")
                                                                 ? "?synchronous=" + url.query.at("synchronous")
                                                                 : std::string()),
                                   *options.pool,
                                   {.max_connections = 4, .cache_kib = 256, .group_commit = true,
                                    .inline_reads = true, .inline_unsynced_writes = true});
  if (!db) return std::unexpected(db.error());
  if (auto m = storage::migrate_blocking(**db, "mercado_bus", kBusSchema); !m) return std::unexpected(m.error());

  auto core = std::make_shared<Core>();
  core->db = std::move(*db);
  core->options = std::move(options);
  core->published = &core->options.metrics->counter(
      "mercado_messages_published_total", "Messages accepted by the transport, by transport and event type",
      {"transport", "event_type"});
  core->notify_dir = url.path + "-notify.d";
  std::error_code dir_error;
  std::filesystem::create_directories(core->notify_dir, dir_error);
  if (dir_error) return fail(Errc::unavailable, "cannot create " + core->notify_dir + ": " + dir_error.message());
  int ino = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (ino < 0) return fail(Errc::unavailable, std::string("inotify_init1: ") + std::strerror(errno));
  core->inotify_fd = ino;
  auto watcher = std::make_shared<Watcher>(core->options.executor);
  watcher->stream.assign(ino);
  asio::co_spawn(core->options.executor, watch(watcher, std::weak_ptr<Core>(core)), asio::detached);
  return std::shared_ptr<EventBus>(std::make_shared<SqliteBus>(std::move(core), std::move(watcher)));
}

}  // namespace mercado::messaging::detail
