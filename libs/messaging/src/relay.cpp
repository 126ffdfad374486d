#include <mercado/messaging/outbox.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <set>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <mercado/core/uuid.hpp>
#include <mercado/observability/log.hpp>

#include "outbox_handoff.hpp"

namespace mercado::messaging {

namespace asio = boost::asio;
using storage::Row;
using storage::Tx;
using storage::TxMode;

struct OutboxRelay::State {
  std::shared_ptr<storage::Database> db;
  std::shared_ptr<Publisher> publisher;
  std::shared_ptr<core::Notifier> committed;
  std::shared_ptr<detail::OutboxHandoff> handoff;  // SQLite: rows committed by this process
  RelayOptions options;
  obs::Counter* published_total = nullptr;
  obs::Counter* failures_total = nullptr;
  obs::Counter* purged_total = nullptr;
  obs::Histogram* dispatch_lag = nullptr;

  // The lease, as this process last knew it: the round and the marker both renew it.
  std::atomic<bool> leader{false};
  std::atomic<std::int64_t> lease_until_ms{0};
  std::int64_t last_purge_ms = 0;  // the loop's (or run_once's) coroutine only
  // SQLite: every row up to here was published by this relay (and is marked, in flight, or
  // was given to the marker). A round reads only the rows after it, instead of reading the
  // rows in flight again and skipping them (with marks gathered for mark_delay, a busy
  // service's every round re-read dozens of rows, bodies included). Sound because SQLite
  // commits one writer at a time: a row with a lower seq is never committed after one with a
  // higher seq was read. PostgreSQL assigns seqs at insert and commits in any order, so there
  // the relay keeps reading from the start. Back to 0 when the lease was lost or a mark
  // failed (its rows are pending again): the round then reads after the stored watermark
  // (see `watermarked`). Loop's (or run_once's) coroutine only.
  std::int64_t published_through = 0;
  bool purge_unfinished = false;   // the last purge stopped at its per-round budget (same)
  std::int64_t last_read_ms = 0;   // when a round last read the table (same)
  bool read_to_end = false;        // and that read returned fewer rows than its limit (same)

  // The loop publishes; a second coroutine, the marker, marks what it published. A batch is
  // published as soon as it is committed, never behind the previous batch's mark (a write
  // that waits its turn in the database's commit queue); the marker marks everything that
  // accumulated meanwhile in one transaction.
  std::mutex mark_mutex;
  std::vector<std::int64_t> to_mark;  // published, waiting for the marker (guarded)
  bool mark_failed = false;          // guarded: a mark failed since the loop last looked
  std::set<std::int64_t> in_flight;  // published, not yet known marked: to_mark and the mark running (guarded)
  bool loop_ended = false;           // guarded: the marker drains to_mark and ends
  core::Notifier mark_wanted;        // loop -> marker
  core::Notifier mark_finished;      // marker -> loop (room in in_flight, or the marker ended)
  std::atomic<bool> marker_ended{false};

  std::atomic<std::uint64_t> published{0};
  std::atomic<bool> started{false};
  std::atomic<bool> stopping{false};
  std::atomic<bool> finished{false};
  core::Notifier stop_requested;
  core::Notifier finished_notifier;

  std::int64_t now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(options.clock->wall_now().time_since_epoch()).count();
  }

  // A list of row numbers as one parameter, for PostgreSQL's per-row marks: an array literal
  // for = ANY($1::bigint[]).
  static std::string id_list(const std::vector<std::int64_t>& seqs) {
    std::string s(1, '{');
    for (std::size_t i = 0; i < seqs.size(); ++i) {
      if (i) s.push_back(',');
      s += std::to_string(seqs[i]);
    }
    s.push_back('}');
    return s;
  }

  // SQLite marks with a watermark: mercado_outbox_lease.dispatched_through, every row up to
  // it dispatched. The loop publishes rows in seq order, each batch after the rows below it
  // were published (rows commit in seq order there, see published_through), and the marker
  // makes everything published durable before it marks; so when the marker marks a set of
  // published rows, every row up to the highest of them has been published and is durable.
  // One row's column per mark instead of every row's dispatched_at and the pending index.
  // (So a row whose own mark failed is covered by a later, higher mark once a later
  // make_durable succeeded: Publisher's contract is that it covers every message accepted
  // before it, which the per-row marks already relied on for rows published before a failed
  // make_durable and marked after a later one.) The watermark never goes down (MAX), and
  // rows are purged only below it; seqs are AUTOINCREMENT, never reused, even when the
  // purge empties the table. PostgreSQL commits rows out of seq order: it marks each row
  // (dispatched_at).
  bool watermarked() const { return db->dialect() == storage::Dialect::sqlite; }

  // Rows to publish, in seq order.
  struct Pending {
    std::vector<std::int64_t> seqs;
    std::vector<std::int64_t> created_ms;
    std::vector<Message> messages;
  };

  // SQLite: the rows to publish next without reading the table, from what this process's
  // commits handed over (Outbox::add), or nullopt when the round must read the table. They
  // are trusted only when they continue the published rows without a gap: the relay has
  // published every row up to published_through (reset to 0 when the lease was lost or a
  // mark failed, and then the round reads), SQLite assigns seqs in commit order and reuses
  // none a rollback gave back (AUTOINCREMENT's counter rolls back with the insert), and a
  // hook runs only after its commit. So rows published_through + 1, + 2, ... handed over are
  // exactly the next rows of the table. A gap is a row whose hook has not run yet, or one
  // that another process (or a dropped handoff) wrote: the round reads the table. None handed
  // over: the loop reads the table only if its last read was not limited by the batch size
  // (so it saw every row committed before it: later ones were handed over, or their hooks
  // flagged a lost handoff) and was less than poll_interval ago (so another process's rows
  // are found as often as before); run_once always reads.
  std::optional<Pending> take_handed(bool pipelined, const std::vector<std::int64_t>& skip) {
    if (!watermarked() || published_through == 0 || !handoff->enabled()) return std::nullopt;
    bool lost = false;
    auto rows = handoff->take(lost);
    std::erase_if(rows, [&](const detail::HandedRow& r) { return r.seq <= published_through; });
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; });
    if (lost || (!rows.empty() && (rows.front().seq != published_through + 1 ||
                                   (!skip.empty() && skip.back() >= rows.front().seq)))) {
      handoff->give_back(std::move(rows));
      return std::nullopt;
    }
    if (rows.empty()) {
      if (pipelined && read_to_end && now_ms() - last_read_ms < options.poll_interval.count()) return Pending{};
      return std::nullopt;
    }
    Pending p;
    std::size_t n = 0;
    while (n < rows.size() && n < options.batch_size && rows[n].seq == published_through + 1 + static_cast<std::int64_t>(n)) {
      p.seqs.push_back(rows[n].seq);
      p.created_ms.push_back(rows[n].created_ms);
      p.messages.push_back(std::move(rows[n].message));
      ++n;
    }
    rows.erase(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(n));
    handoff->give_back(std::move(rows));
    return p;
  }

  std::size_t in_flight_count() {
    std::lock_guard lock(mark_mutex);
    return in_flight.size();
  }

  // One round: take or keep the lease, publish up to batch_size pending events. `pipelined`
  // (the loop): the batch is handed to the marker. Otherwise (run_once, no marker running)
  // it is marked before the round returns.
  asio::awaitable<Result<std::size_t>> round(bool pipelined) {
    const std::int64_t lease_ms = options.lease.count();
    std::int64_t now = now_ms();
    if (!leader || lease_until_ms - now < lease_ms / 2) {
      if (!leader) published_through = 0;  // another relay may have published meanwhile
      auto took = co_await db->transaction([&](Tx& tx) {
        return tx.exec(
            "UPDATE mercado_outbox_lease SET owner = $1, expires_at = $2"
            " WHERE name = 'relay' AND (owner = $1 OR expires_at < $3)",
            options.relay_id, now + lease_ms, now);
      }, TxMode::write, storage::Rerun::allowed);
      if (!took) co_return std::unexpected(took.error());
      leader = *took == 1;
      if (!leader) co_return std::size_t{0};
      lease_until_ms = now + lease_ms;
    }

    // Pending rows, skipping those published and not yet marked. The set is copied before the
    // read begins: a row the marker marks after the copy is in the copy, and a mark committed
    // before it is seen by the read.
    std::vector<std::int64_t> skip;
    {
      std::lock_guard lock(mark_mutex);
      skip.assign(in_flight.begin(), in_flight.end());
      if (mark_failed) published_through = 0;
      mark_failed = false;
    }
    const bool after_watermark = watermarked();
    const std::int64_t after = after_watermark ? published_through : 0;
    Result<Pending> pending = Pending{};
    if (auto handed = take_handed(pipelined, skip)) {
      *pending = std::move(*handed);
    } else {
      last_read_ms = now;
      read_to_end = false;
      pending = co_await db->transaction([&](Tx& tx) -> Result<Pending> {
        // After the watermark, the rows in flight are not read at all (their seqs are below
        // it), except after a reset: then rows still in flight may lie above the new
        // watermark, and the limit leaves room for them.
        auto rows = tx.query(
            after_watermark
                ? "SELECT seq, message_id, event_type, traceparent, body, created_at FROM mercado_outbox"
                  " WHERE seq > MAX($2, COALESCE((SELECT dispatched_through FROM mercado_outbox_lease"
                  " WHERE name = 'relay'), 0)) ORDER BY seq LIMIT $1"
                : "SELECT seq, message_id, event_type, traceparent, body, created_at FROM mercado_outbox"
                  " WHERE dispatched_at IS NULL AND seq > $2 ORDER BY seq LIMIT $1",
            static_cast<std::int64_t>(options.batch_size + skip.size()), after);
        if (!rows) return std::unexpected(rows.error());
        read_to_end = rows->size() < options.batch_size + skip.size();
        Pending p;
        for (const Row& r : *rows) {
          auto seq = r.get<std::int64_t>(0);
          if (std::binary_search(skip.begin(), skip.end(), seq)) continue;
          if (p.seqs.size() == options.batch_size) break;
          p.seqs.push_back(seq);
          p.created_ms.push_back(r.get<std::int64_t>(5));
          p.messages.push_back({r.get<std::string>(1), r.get<std::string>(2), r.get<std::string>(3), r.get<std::string>(4)});
        }
        return p;
      }, TxMode::read);
    }
    if (!pending) co_return std::unexpected(pending.error());
    if (pending->seqs.empty()) {
      if (skip.empty()) co_await purge();
      co_return std::size_t{0};
    }

    // If a mark fails (or the process dies first), its events stay pending and are published
    // again later: at-least-once. The loop publishes without waiting for the transport's
    // durability; the marker makes everything published so far durable, then marks it.
    const std::size_t n = pending->seqs.size();
    // (No co_await inside ?: operands: GCC 12 miscompiles them.)
    Result<void> sent;
    if (pipelined) {
      sent = co_await publisher->publish_batch_deferred(std::move(pending->messages));
    } else {
      sent = co_await publisher->publish_batch(std::move(pending->messages));
    }
    if (!sent) co_return std::unexpected(sent.error());
    if (after_watermark) published_through = std::max(published_through, pending->seqs.back());
    const std::int64_t sent_ms = now_ms();
    for (auto c : pending->created_ms) {
      dispatch_lag->observe(static_cast<double>(std::max<std::int64_t>(0, sent_ms - c)) / 1000.0);
    }
    if (pipelined) {
      {
        std::lock_guard lock(mark_mutex);
        in_flight.insert(pending->seqs.begin(), pending->seqs.end());
        to_mark.insert(to_mark.end(), pending->seqs.begin(), pending->seqs.end());
      }
      mark_wanted.notify_all();
      co_return n;
    }
    auto marked = co_await mark(std::move(pending->seqs));
    if (!marked) {
      published_through = 0;  // pending again: published again
      co_return std::unexpected(marked.error());
    }
    co_return n;
  }

  // The loop's companion: marks what the loop published, all that accumulated in one
  // transaction, until the loop has ended and nothing is left.
  asio::awaitable<void> marker() {
    for (;;) {
      auto seen = mark_wanted.generation();
      std::vector<std::int64_t> seqs;
      bool ended = false;
      {
        std::lock_guard lock(mark_mutex);
        seqs.swap(to_mark);
        ended = loop_ended;
      }
      if (seqs.empty()) {
        if (ended) break;
        co_await mark_wanted.wait(seen, std::chrono::hours(1));
        continue;
      }
      co_await gather(seqs);
      std::sort(seqs.begin(), seqs.end());
      // Durable first: a row marked dispatched is never published again, so its message must
      // survive a power loss by then. One sync covers every batch published before it.
      auto m = co_await publisher->make_durable();
      if (m) m = co_await mark(seqs);
      if (!m) {
        // Not marked: the rows are pending again and the loop publishes them again.
        failures_total->inc();
        log::warn("outbox relay: mark failed, the events will be published again",
                  {{"error", m.error().message}, {"detail", m.error().internal}, {"events", seqs.size()}});
      }
      {
        std::lock_guard lock(mark_mutex);
        if (!m) mark_failed = true;  // the loop reads from the start again
        for (auto q : seqs) in_flight.erase(q);
      }
      mark_finished.notify_all();
    }
    marker_ended = true;
    mark_finished.notify_all();
  }

  // Lets more published rows join `seqs` for up to mark_delay (see RelayOptions).
  asio::awaitable<void> gather(std::vector<std::int64_t>& seqs) {
    const auto until = std::chrono::steady_clock::now() + options.mark_delay;
    for (;;) {
      const auto seen = mark_wanted.generation();
      {
        std::lock_guard lock(mark_mutex);
        seqs.insert(seqs.end(), to_mark.begin(), to_mark.end());
        to_mark.clear();
        if (loop_ended || seqs.size() >= 2 * options.batch_size) co_return;
      }
      const auto now = std::chrono::steady_clock::now();
      if (now >= until) co_return;
      co_await mark_wanted.wait(seen, std::chrono::duration_cast<std::chrono::milliseconds>(until - now) +
                                          std::chrono::milliseconds(1));
    }
  }

  // Marks published rows dispatched (`seqs` sorted; SQLite: raises the watermark to the
  // last). The lease is renewed in the same transaction when less than half of it is left (a
  // slow publish must not lose it); otherwise (PostgreSQL) the lease row is left alone, so
  // that a mark dirties the outbox's pages only, not the lease's too.
  asio::awaitable<Result<void>> mark(std::vector<std::int64_t> seqs) {
    const std::int64_t lease_ms = options.lease.count();
    const bool by_watermark = watermarked();
    const std::int64_t through = seqs.empty() ? 0 : seqs.back();
    std::string list = by_watermark ? std::string() : id_list(seqs);
    // Set by the transaction when it renewed the lease (or found it taken), and applied once
    // it has committed. The function may run more than once (storage::Rerun): it resets them.
    std::optional<bool> renewed;
    std::int64_t renewed_until = 0;
    auto marked = co_await db->transaction([&](Tx& tx) -> Result<void> {
      renewed.reset();
      std::int64_t t = now_ms();
      auto m = by_watermark
                   ? tx.exec("UPDATE mercado_outbox_lease SET dispatched_through = MAX(dispatched_through, $1)"
                             " WHERE name = 'relay'",
                             through)
                   : tx.exec("UPDATE mercado_outbox SET dispatched_at = $2 WHERE seq = ANY(CAST($1 AS BIGINT[]))"
                             " AND dispatched_at IS NULL",
                             list, t);
      if (!m) return std::unexpected(m.error());
      if (lease_until_ms - t >= lease_ms / 2) return {};
      auto l = tx.exec("UPDATE mercado_outbox_lease SET expires_at = $2 WHERE name = 'relay' AND owner = $1",
                       options.relay_id, t + lease_ms);
      if (!l) return std::unexpected(l.error());
      renewed = *l == 1;
      renewed_until = t + lease_ms;
      return {};
    }, TxMode::write, storage::Rerun::allowed);
    if (!marked) co_return std::unexpected(marked.error());
    if (renewed) {
      leader = *renewed;
      if (*renewed) lease_until_ms = renewed_until;
    }
    published += seqs.size();
    published_total->inc(seqs.size());
    co_return Result<void>{};
  }

  asio::awaitable<void> purge() {
    if (options.retention <= std::chrono::milliseconds::zero()) co_return;  // kept for ever
    std::int64_t now = now_ms();
    constexpr std::int64_t kEvery = 60 * 60 * 1000;
    if (!purge_unfinished && now - last_purge_ms < kEvery) co_return;
    if (!purge_unfinished) last_purge_ms = now;
    purge_unfinished = false;
    std::int64_t cutoff =
        last_purge_ms - std::chrono::duration_cast<std::chrono::milliseconds>(options.retention).count();
    // Rows are written in `seq` order, so the ones older than the cutoff come first. Each
    // transaction takes the `purge_batch` oldest dispatched rows and deletes those older than
    // the cutoff; a batch with a younger row (or a short one) was the last. So a backlog of
    // hours of rows never holds the service's writer in one long transaction: other commits
    // take their turns between batches. No index on a timestamp to maintain. At most
    // kBatchesPerRound per idle round: the relay publishes nothing while it purges, so a
    // large backlog is worked off over the next idle rounds instead of in one go.
    constexpr int kBatchesPerRound = 4;
    const auto batch = static_cast<std::int64_t>(std::max<std::size_t>(options.purge_batch, 1));
    for (int round = 0; !stopping; ++round) {
      if (round == kBatchesPerRound) {
        purge_unfinished = true;
        break;
      }
      auto r = co_await db->transaction([&](Tx& tx) {
        return tx.exec(
            watermarked()
                ? "DELETE FROM mercado_outbox WHERE created_at < $1 AND seq IN (SELECT seq FROM mercado_outbox"
                  " WHERE seq <= (SELECT dispatched_through FROM mercado_outbox_lease WHERE name = 'relay')"
                  " ORDER BY seq LIMIT $2)"
                : "DELETE FROM mercado_outbox WHERE created_at < $1 AND seq IN (SELECT seq FROM mercado_outbox"
                  " WHERE dispatched_at IS NOT NULL ORDER BY seq LIMIT $2)",
            cutoff, batch);
      }, TxMode::write, storage::Rerun::allowed);
      if (!r) {
        log::warn("outbox: purge failed", {{"error", r.error().internal}});
        break;
      }
      purged_total->inc(static_cast<std::uint64_t>(*r));
      if (*r < batch) break;
    }
  }

  asio::awaitable<void> loop() {
    // Published and unmarked events the loop lets pile up before it waits for the marker.
    const std::size_t max_in_flight = 4 * options.batch_size;
    auto backoff = options.retry_min;
    while (!stopping) {
      auto seen = committed->generation();
      if (auto marks_seen = mark_finished.generation(); in_flight_count() >= max_in_flight) {
        co_await mark_finished.wait(marks_seen, options.poll_interval);
        continue;
      }
      auto r = co_await round(true);
      if (!r) {
        failures_total->inc();
        log::warn("outbox relay: round failed, will retry",
                  {{"error", r.error().message}, {"detail", r.error().internal}, {"backoff_ms", backoff.count()}});
        auto stop_seen = stop_requested.generation();
        if (!stopping) co_await stop_requested.wait(stop_seen, backoff);
        backoff = std::min(backoff * 2, options.retry_max);
        continue;
      }
      backoff = options.retry_min;
      if (*r == options.batch_size) continue;  // more may be pending
      co_await committed->wait(seen, options.poll_interval);
    }
    // Let the marker finish what was published, then hand the lease over at once instead of
    // making another relay wait for it to expire.
    {
      std::lock_guard lock(mark_mutex);
      loop_ended = true;
    }
    mark_wanted.notify_all();
    while (true) {
      auto seen = mark_finished.generation();
      if (marker_ended) break;
      co_await mark_finished.wait(seen, std::chrono::hours(1));
    }
    if (leader) {
      (void)co_await db->transaction([&](Tx& tx) {
        return tx.exec("UPDATE mercado_outbox_lease SET expires_at = 0 WHERE name = 'relay' AND owner = $1",
                       options.relay_id);
      });
      leader = false;
    }
    finished = true;
    finished_notifier.notify_all();
  }
};

OutboxRelay::OutboxRelay(std::shared_ptr<State> state) : state_(std::move(state)) {}
OutboxRelay::~OutboxRelay() = default;

std::shared_ptr<OutboxRelay> OutboxRelay::create(std::shared_ptr<storage::Database> db,
                                                 std::shared_ptr<Publisher> publisher, const Outbox& outbox,
                                                 RelayOptions options) {
  auto s = std::make_shared<State>();
  s->db = std::move(db);
  s->publisher = std::move(publisher);
  s->committed = outbox.committed();
  s->handoff = outbox.handoff();
  if (options.relay_id.empty()) options.relay_id = core::new_uuid();
  if (options.batch_size == 0) options.batch_size = 1;
  s->options = std::move(options);
  if (s->db->dialect() == storage::Dialect::sqlite) s->handoff->enable(2 * s->options.batch_size);
  s->published_total = &s->options.metrics->counter("mercado_outbox_published_total",
                                                    "Outbox events published and marked dispatched").get();
  s->failures_total = &s->options.metrics->counter("mercado_outbox_relay_failures_total",
                                                   "Outbox relay rounds that failed (retried)").get();
  s->purged_total = &s->options.metrics->counter("mercado_outbox_purged_total",
                                                 "Dispatched outbox rows deleted after the retention").get();
  s->dispatch_lag = &s->options.metrics
                         ->histogram("mercado_outbox_dispatch_lag_seconds",
                                     "From an outbox row's insert to the bus accepting it (commit, relay, publish)",
                                     {}, obs::lag_seconds_buckets())
                         .get();
  return std::shared_ptr<OutboxRelay>(new OutboxRelay(std::move(s)));
}

std::shared_ptr<OutboxRelay> OutboxRelay::start(std::shared_ptr<storage::Database> db,
                                                std::shared_ptr<Publisher> publisher, const Outbox& outbox,
                                                asio::any_io_executor executor, RelayOptions options) {
  auto relay = create(std::move(db), std::move(publisher), outbox, std::move(options));
  relay->start(std::move(executor));
  return relay;
}

void OutboxRelay::start(asio::any_io_executor executor) {
  if (state_->started.exchange(true)) throw std::logic_error("OutboxRelay::start called twice");
  asio::co_spawn(executor, [s = state_]() -> asio::awaitable<void> { co_await s->marker(); }, asio::detached);
  asio::co_spawn(std::move(executor), [s = state_]() -> asio::awaitable<void> { co_await s->loop(); },
                 asio::detached);
}

asio::awaitable<void> OutboxRelay::stop() {
  auto s = state_;
  s->stopping = true;
  s->stop_requested.notify_all();
  s->committed->notify_all();
  if (!s->started) co_return;
  while (true) {
    auto seen = s->finished_notifier.generation();
    if (s->finished) break;
    co_await s->finished_notifier.wait(seen, std::chrono::hours(1));
  }
}

asio::awaitable<Result<std::size_t>> OutboxRelay::run_once() {
  auto s = state_;
  co_return co_await s->round(false);
}

std::uint64_t OutboxRelay::published() const noexcept { return state_->published.load(); }

}  // namespace mercado::messaging
