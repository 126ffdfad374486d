#include <mercado/saga/saga.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/json.hpp>

#include <map>
#include <mutex>
#include <set>

#include <mercado/core/notifier.hpp>
#include <mercado/observability/log.hpp>

namespace mercado::saga {

namespace asio = boost::asio;
namespace json = boost::json;

std::string_view to_string(Status s) noexcept {
  switch (s) {
    case Status::running: return "running";
    case Status::compensating: return "compensating";
    case Status::completed: return "completed";
    case Status::compensated: return "compensated";
  }
  return "running";
}

std::optional<Status> parse_status(std::string_view s) noexcept {
  if (s == "running") return Status::running;
  if (s == "compensating") return Status::compensating;
  if (s == "completed") return Status::completed;
  if (s == "compensated") return Status::compensated;
  return std::nullopt;
}

std::span<const storage::Migration> Orchestrator::migrations() {
  static const storage::Migration kMigrations[] = {
      {.version = 1,
       .name = "saga instances and history",
       .postgres_sql = R"(
CREATE TABLE saga_instances (
  saga_id TEXT PRIMARY KEY, saga_type TEXT NOT NULL, status TEXT NOT NULL, step INTEGER NOT NULL,
  data TEXT NOT NULL, failure TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0,
  trace TEXT NOT NULL DEFAULT '', owner TEXT NOT NULL DEFAULT '', lease_until BIGINT NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX saga_instances_status ON saga_instances (status);
CREATE TABLE saga_history (
  id BIGSERIAL PRIMARY KEY, saga_id TEXT NOT NULL, at BIGINT NOT NULL, event TEXT NOT NULL,
  step TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX saga_history_saga ON saga_history (saga_id, id);)",
       .sqlite_sql = R"(
CREATE TABLE saga_instances (
  saga_id TEXT PRIMARY KEY, saga_type TEXT NOT NULL, status TEXT NOT NULL, step INTEGER NOT NULL,
  data TEXT NOT NULL, failure TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0,
  trace TEXT NOT NULL DEFAULT '', owner TEXT NOT NULL DEFAULT '', lease_until INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX saga_instances_status ON saga_instances (status);
CREATE TABLE saga_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT, saga_id TEXT NOT NULL, at INTEGER NOT NULL, event TEXT NOT NULL,
  step TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX saga_history_saga ON saga_history (saga_id, id);)"},
  };
  return kMigrations;
}

namespace {

constexpr std::string_view kStateColumns =
    "saga_id, saga_type, status, step, data, failure, attempts, created_at, updated_at, trace";

struct Loaded {
  State state;
  std::string trace;
};

Loaded from_row(const storage::Row& r) {
  Loaded l;
  l.state.id = r.get<std::string>(0);
  l.state.type = r.get<std::string>(1);
  l.state.status = parse_status(r.get<std::string>(2)).value_or(Status::running);
  l.state.step = r.get<int>(3);
  boost::system::error_code ec;
  auto data = json::parse(r.get<std::string>(4), ec);
  if (!ec && data.is_object()) l.state.data = std::move(data.as_object());
  l.state.failure = r.get<std::string>(5);
  l.state.attempts = r.get<int>(6);
  l.state.created_ms = r.get<std::int64_t>(7);
  l.state.updated_ms = r.get<std::int64_t>(8);
  l.trace = r.get<std::string>(9);
  l.state.traceparent = l.trace;
  return l;
}

}  // namespace

struct Orchestrator::Impl : std::enable_shared_from_this<Orchestrator::Impl> {
  std::shared_ptr<storage::Database> db;
  asio::any_io_executor executor;
  OrchestratorOptions opts;
  std::map<std::string, Definition, std::less<>> definitions;
  std::mutex mutex;
  std::set<std::string> driving;  // sagas with a driver coroutine in this process
  std::set<std::string> stuck;
  // ForwardCheckpoint::deferred: a saga's progress since its stored row, for get(). Only what
  // changed: the data's new members are the steps' outputs (copying the whole state at every
  // step cost more than the rest of a step's bookkeeping).
  struct Live {
    int base_step = 0;  // the stored row's step: what the outputs and history follow
    Status status = Status::running;
    int step = 0;
    int attempts = 0;
    std::int64_t updated_ms = 0;
    std::vector<HistoryEntry> history;  // the deferred forward successes
    boost::json::object outputs;        // members the steps set in the data since
  };
  std::map<std::string, Live, std::less<>> live;
  // Sagas created here and committed, with their lease's end: the first driver takes the
  // state from here instead of reading back the row that was just written.
  std::map<std::string, std::pair<Loaded, std::int64_t>, std::less<>> handover;
  std::vector<std::function<void(const State&)>> finished_callbacks;
  core::Notifier finished;
  core::Notifier stopping;
  core::Notifier driver_ended;
  std::atomic<bool> stopped{false};

  obs::CounterFamily* started_total;
  obs::CounterFamily* finished_total;
  obs::HistogramFamily* duration;
  obs::GaugeFamily* active_gauge;
  obs::GaugeFamily* stuck_gauge;
  obs::CounterFamily* step_calls;
  obs::HistogramFamily* step_duration;

  Impl(std::shared_ptr<storage::Database> d, asio::any_io_executor ex, OrchestratorOptions o)
      : db(std::move(d)), executor(std::move(ex)), opts(std::move(o)) {
    auto& reg = *opts.metrics;
    started_total = &reg.counter("saga_started_total", "Sagas started", {"type"});
    finished_total = &reg.counter("saga_finished_total", "Sagas that reached a terminal state", {"type", "outcome"});
    static const double kBounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
    duration = &reg.histogram("saga_duration_seconds", "Time from saga start to its terminal state",
                              {"type", "outcome"}, kBounds);
    active_gauge = &reg.gauge("saga_active", "Sagas being driven by this instance", {"type"});
    stuck_gauge = &reg.gauge("saga_stuck", "Sagas whose compensation keeps failing", {"type"});
    step_calls = &reg.counter("saga_step_calls_total", "Saga step and compensation calls", {"type", "step", "outcome"});
    step_duration = &reg.histogram("saga_step_duration_seconds", "Duration of saga step and compensation calls",
                                   {"type", "step"}, kBounds);
  }

  std::int64_t now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(opts.clock->wall_now().time_since_epoch()).count();
  }

  void boundary(std::string_view what) {
    if (opts.on_boundary) opts.on_boundary(what);
  }

  // Applies a transition if we still hold the lease (one write transaction, which the
  // database may group with other sagas' transitions). False when another instance took
  // the saga over (the caller stops driving it).
  Result<bool> persist_in(storage::Tx& tx, const State& s, std::span<const HistoryEntry> earlier,
                          std::string_view event, std::string_view step, std::string_view detail,
                          std::string_view then_event, bool* completion_refused) {
    const auto now = now_ms();
    auto n = tx.exec(
        "UPDATE saga_instances SET status = $1, step = $2, data = $3, failure = $4, attempts = $5, "
        "updated_at = $6, lease_until = $7 WHERE saga_id = $8 AND owner = $9",
        to_string(s.status), s.step, json::serialize(s.data), s.failure, s.attempts, now,
        now + opts.lease.count(), s.id, opts.owner);
    if (!n) return fail(std::move(n.error()));
    if (*n == 0) return false;
    if (s.status == Status::completed) {
      if (auto def = definitions.find(s.type); def != definitions.end() && def->second.on_completed) {
        if (auto c = def->second.on_completed(tx, s); !c) {
          Error e = std::move(c.error());
          e.type = e.type.empty() ? "completion-hook" : e.type;
          if (completion_refused != nullptr) *completion_refused = true;
          return fail(std::move(e));
        }
      }
    }
    // The history rows in one statement: the deferred forward successes in their order,
    // this transition, and (a step's outcome that also ends the saga) the end.
    std::vector<storage::Param> rows;
    rows.reserve(5 * (earlier.size() + 2));
    auto row = [&](std::int64_t at, std::string_view ev, std::string_view st, std::string_view de) {
      rows.insert(rows.end(), {storage::Param(std::string_view(s.id)), storage::Param(at), storage::Param(ev),
                               storage::Param(st), storage::Param(de)});
    };
    for (const auto& e : earlier) row(e.at_ms, e.event, e.step, e.detail);
    row(now, event, step, detail);
    if (!then_event.empty()) row(now, then_event, "", then_event == "compensated" ? std::string_view(s.failure) : "");
    std::string sql = "INSERT INTO saga_history (saga_id, at, event, step, detail) VALUES ";
    for (std::size_t i = 0; i < rows.size(); i += 5) {
      sql += i == 0 ? "(" : ", (";
      for (std::size_t k = 1; k <= 5; ++k) sql += "$" + std::to_string(i + k) + (k < 5 ? ", " : ")");
    }
    auto h = tx.exec_params(sql, rows);
    if (!h) return fail(std::move(h.error()));
    return true;
  }

  Result<std::optional<Loaded>> load(storage::Tx& tx, std::string_view id) {
    auto rows = tx.query("SELECT " + std::string(kStateColumns) + " FROM saga_instances WHERE saga_id = $1", id);
    if (!rows) return fail(std::move(rows.error()));
    if (rows->empty()) return std::optional<Loaded>();
    return std::optional<Loaded>(from_row((*rows)[0]));
  }

  // An unfinished saga whose lease this instance already holds (it created the saga, or
  // claimed it, moments ago): a read, no write. nullopt otherwise (then claim_in decides).
  Result<std::optional<Loaded>> held_in(storage::Tx& tx, const std::string& id) {
    auto lease = tx.query("SELECT owner, lease_until FROM saga_instances WHERE saga_id = $1 "
                          "AND status IN ('running', 'compensating')", id);
    if (!lease) return fail(std::move(lease.error()));
    if (lease->empty()) return std::optional<Loaded>();
    const auto& row = (*lease)[0];
    // A margin so that the lease cannot run out before the first transition renews it.
    if (row.get<std::string>(0) != opts.owner || row.get<std::int64_t>(1) < now_ms() + opts.lease.count() / 2) {
      return std::optional<Loaded>();
    }
    return load(tx, id);
  }

  // Takes the lease on an unfinished saga. nullopt: finished, missing, or someone else's.
  Result<std::optional<Loaded>> claim_in(storage::Tx& tx, const std::string& id) {
    const auto now = now_ms();
    {
      auto n = tx.exec(
          "UPDATE saga_instances SET owner = $1, lease_until = $2 WHERE saga_id = $3 "
          "AND status IN ('running', 'compensating') AND (owner = $1 OR lease_until < $4)",
          opts.owner, now + opts.lease.count(), id, now);
      if (!n) return fail(std::move(n.error()));
      if (*n == 0) return std::optional<Loaded>();
      return load(tx, id);
    }
  }

  bool try_mark_driving(const std::string& id) {
    std::lock_guard lock(mutex);
    return driving.insert(id).second;
  }

  void launch(const std::string& id) {
    if (stopped || !try_mark_driving(id)) return;
    asio::co_spawn(executor, drive(shared_from_this(), id), asio::detached);
  }

  asio::awaitable<void> pause(std::chrono::milliseconds d) {
    co_await stopping.wait(stopping.generation(), d);
  }

  void set_stuck(const State& s, bool is_stuck) {
    std::lock_guard lock(mutex);
    if (is_stuck && stuck.insert(s.id).second) stuck_gauge->with({s.type}).inc();
    if (!is_stuck && stuck.erase(s.id) > 0) stuck_gauge->with({s.type}).dec();
  }

  // After the commit that created a saga here (see create_in).
  void offer(Loaded l, std::int64_t lease_until) {
    const auto keep_after = now_ms() + opts.lease.count() / 2;
    std::lock_guard lock(mutex);
    // Entries nobody launched (create_in without launch) go once they are no use.
    std::erase_if(handover, [&](const auto& kv) { return kv.second.second < keep_after; });
    std::string id = l.state.id;
    handover.insert_or_assign(std::move(id), std::pair{std::move(l), lease_until});
  }

  // The state handed over by this process's create_in, when its lease still has the
  // margin held_in() asks for.
  std::optional<Loaded> take_handover(const std::string& id) {
    std::lock_guard lock(mutex);
    auto it = handover.find(id);
    if (it == handover.end()) return std::nullopt;
    auto [l, lease_until] = std::move(it->second);
    handover.erase(it);
    if (lease_until < now_ms() + opts.lease.count() / 2) return std::nullopt;
    return std::move(l);
  }

  static asio::awaitable<void> drive(std::shared_ptr<Impl> self, std::string id) {
    auto& me = *self;
    std::string type;
    try {
      Result<std::optional<Loaded>> claimed = me.take_handover(id);
      if (!*claimed) {
        claimed = co_await me.db->transaction([&](storage::Tx& tx) { return me.held_in(tx, id); },
                                              storage::TxMode::read);
      }
      if (claimed && !*claimed) {
        claimed = co_await me.db->transaction([&](storage::Tx& tx) { return me.claim_in(tx, id); });
      }
      if (claimed && *claimed) {
        type = (*claimed)->state.type;
        me.active_gauge->with({type}).inc();
        co_await me.run_saga(std::move((*claimed)->state), (*claimed)->trace);
        me.active_gauge->with({type}).dec();
      } else if (!claimed) {
        log::error("saga claim failed", {{"saga_id", id}, {"error", claimed.error().message}});
      }
    } catch (const std::exception& e) {
      log::error("saga driver failed; it resumes on restart", {{"saga_id", id}, {"error", e.what()}});
      if (!type.empty()) me.active_gauge->with({type}).dec();
    }
    {
      std::lock_guard lock(me.mutex);
      me.driving.erase(id);
      me.live.erase(id);  // unpersisted progress of a driver that stopped is redone by the next one
    }
    me.driver_ended.notify_all();
  }

  // A transition being persisted in the background (write-behind).
  struct Inflight {
    core::Notifier done;
    std::atomic<bool> finished{false};
    bool ok = false;  // read after `finished`
  };

  // What one driver has not persisted yet.
  struct Progress {
    std::shared_ptr<Inflight> inflight;  // background: the transition being persisted (at most one)
    std::vector<HistoryEntry> deferred;  // deferred: forward successes since the last persisted one
    std::chrono::steady_clock::time_point persisted = std::chrono::steady_clock::now();
  };

  // Deferred forward progress of the sagas driven here, for get() (the stored row lags).
  // `output`: what the step that succeeded last set in the data.
  void set_live(const State& s, const std::vector<HistoryEntry>& deferred, const boost::json::object& output) {
    std::lock_guard lock(mutex);
    auto [it, created] = live.try_emplace(s.id);
    Live& l = it->second;
    if (created) l.base_step = s.step - 1;  // the first deferred success since the row was stored
    l.status = s.status;
    l.step = s.step;
    l.attempts = s.attempts;
    l.updated_ms = deferred.empty() ? s.updated_ms : deferred.back().at_ms;
    l.history = deferred;
    for (const auto& kv : output) l.outputs[kv.key()] = kv.value();
  }
  void drop_live(const std::string& id) {
    std::lock_guard lock(mutex);
    live.erase(id);
  }
  std::optional<Live> live_state(const std::string& id) {
    std::lock_guard lock(mutex);
    auto it = live.find(id);
    if (it == live.end()) return std::nullopt;
    return it->second;
  }

  static asio::awaitable<void> save_in_background(std::shared_ptr<Impl> self, std::shared_ptr<Inflight> f, State s,
                                                  std::string event, std::string step) {
    f->ok = co_await self->save(s, {}, event, step, "", "");
    f->finished = true;
    f->done.notify_all();
  }

  // Waits for the background transition, if any, and clears it; false when it was not
  // persisted.
  asio::awaitable<bool> settle(std::shared_ptr<Inflight>& inflight) {
    if (!inflight) co_return true;
    const auto f = std::move(inflight);
    while (!f->finished) {
      const auto seen = f->done.generation();
      if (f->finished) break;
      co_await f->done.wait(seen, std::chrono::seconds(1));
    }
    co_return f->ok;
  }

  enum class Completion { finished, retry_last_step, stopped };

  // Stores the saga's completion (with the definition's hook) and reports it. When the hook
  // refused, nothing was stored and the saga is back at its last step.
  asio::awaitable<Completion> complete(Progress& p, State& s, const Definition& def,
                                       obs::Span& span, std::string_view event, std::string_view step,
                                       std::string_view then_event) {
    s.status = Status::completed;
    s.attempts = 0;
    bool refused = false;
    const bool stored = co_await save_after(p, s, event, step, "", then_event, &refused);
    if (!stored && refused) {
      s.status = Status::running;
      s.step = static_cast<int>(def.steps.size()) - 1;
      s.attempts = 1;
      co_await pause(backoff(def, s.attempts));
      co_return Completion::retry_last_step;
    }
    if (!stored) co_return Completion::stopped;
    co_await finish(s, span);
    co_return Completion::finished;
  }

  asio::awaitable<void> run_saga(State s, const std::string& trace_header) {
    Progress p;
    co_await run_saga_steps(std::move(s), trace_header, p);
    // The driver ends after its last transition is stored. (If a step throws, the exception
    // leaves here and the background save, which owns its state, completes on its own.)
    co_await settle(p.inflight);
  }

  asio::awaitable<void> run_saga_steps(State s, const std::string& trace_header, Progress& p) {
    auto def_it = definitions.find(s.type);
    if (def_it == definitions.end()) {
      log::error("saga of an undefined type; left as it is", {{"saga_id", s.id}, {"type", s.type}});
      co_return;
    }
    const Definition& def = def_it->second;
    auto parent = obs::TraceContext::parse(trace_header);
    obs::Span span("saga " + s.type, obs::SpanKind::internal, parent ? &*parent : nullptr);
    span.set_attribute("saga.id", s.id);
    const int nsteps = static_cast<int>(def.steps.size());

    while (!stopped) {
      if (s.status == Status::running && s.step >= nsteps) {
        const Completion c = co_await complete(p, s, def, span, "completed", "", "");
        if (c == Completion::retry_last_step) continue;
        co_return;
      }
      if (s.status == Status::compensating && s.step < 0) {
        s.status = Status::compensated;
        s.attempts = 0;
        if (!co_await save_after(p, s, "compensated", "", s.failure, "")) co_return;
        co_await finish(s, span);
        co_return;
      }
      const bool forward = s.status == Status::running;
      const Step& step = def.steps[static_cast<std::size_t>(s.step)];
      if (!forward && !step.compensation) {
        --s.step;
        s.attempts = 0;
        if (!co_await save_after(p, s, "nothing_to_undo", step.name, "", "")) co_return;
        continue;
      }
      StepContext ctx{s.id, s.type, step.name, s.id + ":" + step.name + (forward ? "" : ":undo"), s.data,
                      span.context(), s.attempts + 1, forward ? std::string() : s.failure};
      boundary("before:" + step.name + (forward ? "" : ":undo"));
      StepResult result;
      const auto call_started = std::chrono::steady_clock::now();
      try {
        result = co_await (forward ? step.action : step.compensation)(ctx);
      } catch (const std::exception& e) {
        result = StepResult::retry(std::string("exception: ") + e.what());
      }
      boundary("after:" + step.name + (forward ? "" : ":undo"));
      const char* outcome = result.kind == StepResult::Kind::ok ? "ok" : result.kind == StepResult::Kind::failed ? "failed" : "retry";
      step_calls->with({s.type, forward ? step.name : step.name + ":undo", outcome}).inc();
      step_duration->with({s.type, forward ? step.name : step.name + ":undo"})
          .observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - call_started).count());

      if (forward) {
        if (result.kind == StepResult::Kind::ok) {
          for (const auto& kv : result.output) s.data[kv.key()] = kv.value();
          ++s.step;
          s.attempts = 0;
          if (s.step >= nsteps) {  // the last step's success and the completion: one transaction
            const Completion c = co_await complete(p, s, def, span, "step_succeeded", step.name, "completed");
            if (c == Completion::retry_last_step) continue;
            co_return;
          }
          if (opts.forward_checkpoint == ForwardCheckpoint::deferred &&
              std::chrono::steady_clock::now() - p.persisted < opts.lease / 4) {
            // Kept in memory; stored with the next transition that is persisted. (Past a quarter of
            // the lease it is persisted now, which also renews the lease.)
            p.deferred.push_back({now_ms(), "step_succeeded", step.name, ""});
            set_live(s, p.deferred, result.output);
          } else if (opts.forward_checkpoint == ForwardCheckpoint::background) {
            const bool stored = co_await settle(p.inflight);
            if (!stored) co_return;
            p.inflight = std::make_shared<Inflight>();
            asio::co_spawn(executor, save_in_background(shared_from_this(), p.inflight, s, "step_succeeded", step.name),
                           asio::detached);
          } else if (!co_await save_after(p, s, "step_succeeded", step.name, "", "")) {
            co_return;
          }
        } else if (result.kind == StepResult::Kind::failed) {
          s.status = Status::compensating;
          s.failure = step.name + ": " + result.reason;
          --s.step;  // it did nothing: undo only the steps before it
          s.attempts = 0;
          if (!co_await save_after(p, s, "step_failed", step.name, result.reason, "")) co_return;
        } else if (s.attempts + 1 >= def.max_attempts) {
          s.status = Status::compensating;
          s.failure = step.name + ": gave up after " + std::to_string(s.attempts + 1) + " attempts: " + result.reason;
          s.attempts = 0;  // uncertain outcome: s.step stays, so this step is compensated too
          if (!co_await save_after(p, s, "step_gave_up", step.name, result.reason, "")) co_return;
        } else {
          ++s.attempts;
          if (!co_await save_after(p, s, "step_retry", step.name, result.reason, "")) co_return;
          co_await pause(backoff(def, s.attempts));
        }
      } else {
        if (result.kind == StepResult::Kind::ok) {
          --s.step;
          s.attempts = 0;
          set_stuck(s, false);
          if (s.step < 0) {
            s.status = Status::compensated;
            if (!co_await save_after(p, s, "compensated_step", step.name, "", "compensated")) co_return;
            co_await finish(s, span);
            co_return;
          }
          if (!co_await save_after(p, s, "compensated_step", step.name, "", "")) co_return;
        } else {
          ++s.attempts;
          if (s.attempts >= opts.stuck_after) {
            set_stuck(s, true);
            log::error("saga compensation keeps failing", {{"saga_id", s.id}, {"step", step.name},
                                                           {"attempts", s.attempts}, {"reason", result.reason}});
          }
          if (!co_await save_after(p, s, "compensation_failed", step.name, result.reason, "")) co_return;
          co_await pause(backoff(def, s.attempts));
        }
      }
    }
  }

  // An awaited transition, after the background one (if any) has been persisted.
  // Deferred forward successes are stored with it.
  asio::awaitable<bool> save_after(Progress& p, const State& s, std::string_view event,
                                   std::string_view step, std::string_view detail, std::string_view then_event,
                                   bool* completion_refused = nullptr) {
    // (No co_await inside && or ?: operands: GCC 12 miscompiles them.)
    const bool settled = co_await settle(p.inflight);
    if (!settled) co_return false;
    // The in-memory progress stops being shown before the row that includes it commits: a
    // concurrent get() may briefly see less progress, never the same steps twice.
    if (!p.deferred.empty()) drop_live(s.id);
    const bool stored = co_await save(s, p.deferred, event, step, detail, then_event, completion_refused);
    if (!stored) co_return false;
    p.deferred.clear();
    p.persisted = std::chrono::steady_clock::now();
    co_return true;
  }

  static std::chrono::milliseconds backoff(const Definition& def, int attempts) {
    auto d = def.initial_backoff * (1LL << std::min(attempts - 1, 20));
    return std::min<std::chrono::milliseconds>(d, def.max_backoff);
  }

  // Persists on a pool worker; false when the lease is lost or the database fails (the
  // saga then resumes from its last persisted state, here after restart or elsewhere).
  // `completion_refused`: set when the definition's on_completed hook failed (the driver
  // then retries the last step instead of stopping).
  asio::awaitable<bool> save(const State& s, std::span<const HistoryEntry> earlier, std::string_view event,
                             std::string_view step, std::string_view detail, std::string_view then_event,
                             bool* completion_refused = nullptr) {
    std::string ev(event), st(step), de(detail), th(then_event);
    // May run more than once (storage::Rerun): the completion hook acts through the Tx.
    auto r = co_await db->transaction(
        [&](storage::Tx& tx) {
          if (completion_refused != nullptr) *completion_refused = false;
          return persist_in(tx, s, earlier, ev, st, de, th, completion_refused);
        },
        storage::TxMode::write, storage::Rerun::allowed);
    boundary("persisted:" + ev + ":" + st);
    if (!r) {
      if (completion_refused != nullptr && *completion_refused) {
        log::warn("saga completion refused; the last step runs again", {{"saga_id", s.id}, {"error", r.error().message}});
        co_return false;
      }
      log::error("saga transition not persisted; stopping this driver", {{"saga_id", s.id}, {"error", r.error().message}});
      co_return false;
    }
    if (!*r) log::warn("saga taken over by another instance", {{"saga_id", s.id}});
    co_return *r;
  }

  asio::awaitable<void> finish(const State& s, obs::Span& span) {
    const double seconds = static_cast<double>(now_ms() - s.created_ms) / 1000.0;
    finished_total->with({s.type, to_string(s.status)}).inc();
    duration->with({s.type, to_string(s.status)}).observe(std::max(seconds, 0.0));
    span.set_attribute("saga.outcome", std::string(to_string(s.status)));
    if (s.status == Status::compensated) span.set_error(s.failure);
    log::info(span.context(), "saga finished", {{"saga_id", s.id}, {"type", s.type}, {"outcome", to_string(s.status)},
                                                 {"failure", s.failure}, {"seconds", seconds}});
    std::vector<std::function<void(const State&)>> callbacks;
    {
      std::lock_guard lock(mutex);
      callbacks = finished_callbacks;
    }
    for (auto& cb : callbacks) cb(s);
    finished.notify_all();
    co_return;
  }
};

Orchestrator::Orchestrator(std::shared_ptr<storage::Database> db, asio::any_io_executor executor,
                           OrchestratorOptions options)
    : impl_(std::make_shared<Impl>(std::move(db), std::move(executor), std::move(options))) {}

Orchestrator::~Orchestrator() { stop(); }

void Orchestrator::define(Definition definition) {
  if (definition.steps.empty()) throw std::invalid_argument("saga " + definition.type + " has no steps");
  if (definition.max_attempts < 1) throw std::invalid_argument("saga " + definition.type + ": max_attempts < 1");
  std::set<std::string> names;
  for (const auto& s : definition.steps) {
    if (!s.action) throw std::invalid_argument("saga " + definition.type + ": step " + s.name + " has no action");
    if (!names.insert(s.name).second) throw std::invalid_argument("saga " + definition.type + ": duplicate step " + s.name);
  }
  std::string type = definition.type;
  impl_->definitions.insert_or_assign(std::move(type), std::move(definition));
}

asio::awaitable<Result<State>> Orchestrator::start(std::string type, std::string saga_id, json::object input,
                                                   const obs::TraceContext* trace) {
  auto& me = *impl_;
  if (!me.definitions.contains(type)) co_return fail(Errc::invalid_argument, "unknown saga type " + type);
  auto created = co_await me.db->transaction([&](storage::Tx& tx) -> Result<State> {
    auto n = create_in(tx, type, saga_id, input, trace);
    if (!n) return fail(std::move(n.error()));
    auto loaded = me.load(tx, saga_id);
    if (!loaded) return fail(std::move(loaded.error()));
    if ((*loaded)->state.type != type) {
      return fail(Errc::conflict, "saga " + saga_id + " exists with type " + (*loaded)->state.type);
    }
    return std::move((*loaded)->state);
  });
  if (!created) co_return created;
  if (!terminal(created->status)) me.launch(saga_id);
  co_return created;
}

Result<bool> Orchestrator::create_in(storage::Tx& tx, std::string_view type, std::string_view saga_id,
                                     const json::object& input, const obs::TraceContext* trace) {
  auto& me = *impl_;
  if (!me.definitions.contains(type)) return fail(Errc::invalid_argument, "unknown saga type " + std::string(type));
  if (saga_id.empty()) return fail(Errc::invalid_argument, "empty saga id");
  const auto now = me.now_ms();
  const std::string trace_header = trace != nullptr && trace->valid() ? trace->traceparent() : std::string();
  auto n = tx.exec(
      "INSERT INTO saga_instances (saga_id, saga_type, status, step, data, trace, owner, lease_until, created_at, "
      "updated_at) VALUES ($1, $2, 'running', 0, $3, $4, $5, $6, $7, $7) ON CONFLICT (saga_id) DO NOTHING",
      saga_id, type, json::serialize(input), trace_header, me.opts.owner, now + me.opts.lease.count(), now);
  if (!n) return fail(std::move(n.error()));
  if (*n == 0) return false;
  auto h = tx.exec("INSERT INTO saga_history (saga_id, at, event, step, detail) VALUES ($1, $2, 'started', '', '')",
                   saga_id, now);
  if (!h) return fail(std::move(h.error()));
  Loaded l;
  l.state.id = std::string(saga_id);
  l.state.type = std::string(type);
  l.state.data = input;
  l.state.created_ms = now;
  l.state.updated_ms = now;
  l.state.traceparent = trace_header;
  l.trace = trace_header;
  tx.on_commit([impl = impl_, l = std::move(l), lease_until = now + me.opts.lease.count()]() mutable {
    impl->started_total->with({l.state.type}).inc();
    impl->offer(std::move(l), lease_until);
  });
  return true;
}

void Orchestrator::launch(const std::string& saga_id) { impl_->launch(saga_id); }

asio::awaitable<Result<std::size_t>> Orchestrator::resume_all() {
  auto& me = *impl_;
  const auto now = me.now_ms();
  auto ids = co_await me.db->transaction(
      [&](storage::Tx& tx) -> Result<std::vector<std::string>> {
        auto rows = tx.query(
            "SELECT saga_id FROM saga_instances WHERE status IN ('running', 'compensating') "
            "AND (owner = $1 OR lease_until < $2) ORDER BY created_at",
            me.opts.owner, now);
        if (!rows) return fail(std::move(rows.error()));
        std::vector<std::string> out;
        for (const auto& r : *rows) out.push_back(r.get<std::string>(0));
        return out;
      },
      storage::TxMode::read);
  if (!ids) co_return fail(std::move(ids.error()));
  for (const auto& id : *ids) me.launch(id);
  if (!ids->empty()) log::info("resuming sagas", {{"count", ids->size()}});
  co_return ids->size();
}

asio::awaitable<Result<std::optional<State>>> Orchestrator::get(std::string saga_id) {
  auto& me = *impl_;
  co_return co_await me.db->transaction(
      [&](storage::Tx& tx) -> Result<std::optional<State>> {
        auto loaded = me.load(tx, saga_id);
        if (!loaded) return fail(std::move(loaded.error()));
        if (!*loaded) return std::optional<State>();
        State s = std::move((*loaded)->state);
        auto rows = tx.query("SELECT at, event, step, detail FROM saga_history WHERE saga_id = $1 ORDER BY id", saga_id);
        if (!rows) return fail(std::move(rows.error()));
        for (const auto& r : *rows) {
          s.history.push_back({r.get<std::int64_t>(0), r.get<std::string>(1), r.get<std::string>(2), r.get<std::string>(3)});
        }
        // Forward progress this instance has made but not stored yet (deferred checkpoints).
        // Only over the row it follows: a row read before the driver stored its progress and
        // started deferring again would lack the earlier steps' outputs (it shows less
        // progress instead, never a mix).
        if (auto l = me.live_state(saga_id); l && !terminal(s.status) && s.step == l->base_step) {
          s.status = l->status;
          s.step = l->step;
          for (const auto& kv : l->outputs) s.data[kv.key()] = kv.value();
          s.attempts = l->attempts;
          s.updated_ms = l->updated_ms;
          s.history.insert(s.history.end(), l->history.begin(), l->history.end());
        }
        return std::optional<State>(std::move(s));
      },
      storage::TxMode::read);
}

asio::awaitable<Result<std::vector<State>>> Orchestrator::list(std::optional<Status> status, std::size_t limit) {
  auto& me = *impl_;
  co_return co_await me.db->transaction(
      [&](storage::Tx& tx) -> Result<std::vector<State>> {
        auto rows = status ? tx.query("SELECT " + std::string(kStateColumns) +
                                          " FROM saga_instances WHERE status = $1 ORDER BY created_at DESC LIMIT $2",
                                      to_string(*status), static_cast<std::int64_t>(limit))
                           : tx.query("SELECT " + std::string(kStateColumns) +
                                          " FROM saga_instances ORDER BY created_at DESC LIMIT $1",
                                      static_cast<std::int64_t>(limit));
        if (!rows) return fail(std::move(rows.error()));
        std::vector<State> out;
        for (const auto& r : *rows) out.push_back(from_row(r).state);
        return out;
      },
      storage::TxMode::read);
}

asio::awaitable<Result<State>> Orchestrator::wait(std::string saga_id, std::chrono::milliseconds timeout) {
  auto& me = *impl_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto seen = me.finished.generation();
    auto s = co_await get(saga_id);
    if (!s) co_return fail(std::move(s.error()));
    if (!*s) co_return fail(Errc::not_found, "no saga " + saga_id);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (terminal((*s)->status) || left.count() <= 0) co_return std::move(**s);
    // Other instances finish sagas too: look again at least every 200 ms.
    co_await me.finished.wait(seen, std::min(left, std::chrono::milliseconds(200)));
  }
}

void Orchestrator::on_finished(std::function<void(const State&)> callback) {
  std::lock_guard lock(impl_->mutex);
  impl_->finished_callbacks.push_back(std::move(callback));
}

void Orchestrator::stop() {
  impl_->stopped = true;
  impl_->stopping.notify_all();
}

asio::awaitable<bool> Orchestrator::shutdown(std::chrono::milliseconds timeout) {
  stop();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto seen = impl_->driver_ended.generation();
    if (active() == 0) co_return true;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) co_return false;
    co_await impl_->driver_ended.wait(seen, left);
  }
}

std::size_t Orchestrator::active() const noexcept {
  std::lock_guard lock(impl_->mutex);
  return impl_->driving.size();
}

}  // namespace mercado::saga
