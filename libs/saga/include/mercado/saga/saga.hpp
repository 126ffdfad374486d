#pragma once
// Durable saga orchestration (the chapter's "Saga Pattern", with each step carrying its
// own compensation -- the chapter's sample pairs them by reversed list index, which is a
// bug).
//
//   saga::Definition order{"order", {
//     {"reserve_inventory", reserve, release},
//     {"process_payment",   charge,  refund},
//     {"ship_order",        ship,    cancel_shipment},
//   }};
//   orchestrator.define(order);
//   co_await orchestrator.start("order", order_id, {{"order_id", order_id}, ...});
//
// Semantics:
// - Every transition is persisted (saga row + history) before the next action starts; a
//   crash at any point resumes from the last persisted state (resume_all() at start-up).
// - A step or compensation may therefore run more than once; each call carries an
//   idempotency key (saga id + step [+ ":undo"]) that the callee uses to have its effect
//   once.
// - Step results: ok (its output is merged into the saga data), failed (definitely did
//   nothing: compensate the steps before it), retry (transient: try again with backoff; when
//   the attempts are used up the outcome is uncertain, so that step is compensated too).
//   An exception thrown by a step counts as retry.
// - Compensations run in reverse order and are retried with capped exponential backoff
//   until they succeed. A saga whose compensation keeps failing is "stuck": visible in
//   saga_stuck{type} and through get()/list() with its full history.
// - A saga is driven by one instance at a time: the running instance holds a lease on it
//   (owner = instance id), renewed with every transition.
//
// Thread-safety: define() before start(); everything else from any thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <mercado/core/clock.hpp>
#include <mercado/core/error.hpp>
#include <mercado/observability/metrics.hpp>
#include <mercado/observability/trace.hpp>
#include <mercado/storage/database.hpp>
#include <mercado/storage/migrations.hpp>

namespace mercado::saga {

struct StepResult {
  enum class Kind { ok, failed, retry };
  Kind kind = Kind::ok;
  std::string reason;
  boost::json::object output;

  static StepResult ok(boost::json::object output = {}) { return {Kind::ok, {}, std::move(output)}; }
  static StepResult failed(std::string reason) { return {Kind::failed, std::move(reason), {}}; }
  static StepResult retry(std::string reason) { return {Kind::retry, std::move(reason), {}}; }
};

struct StepContext {
  std::string saga_id;
  std::string saga_type;
  std::string step;
  std::string idempotency_key;  // stable across retries and restarts
  const boost::json::object& data;  // input plus outputs of the completed steps
  obs::TraceContext trace;          // the saga's span: pass it to outbound calls
  int attempt = 1;
  std::string failure;              // compensations: why the saga is compensating
};

using Action = std::function<boost::asio::awaitable<StepResult>(const StepContext&)>;

struct Step {
  std::string name;
  Action action;
  Action compensation;  // empty: the step has nothing to undo
};

struct State;

// Runs inside the transaction that records a saga's completion, so that what the saga
// concludes (e.g. "the order is confirmed") commits atomically with its terminal state and
// costs no commit of its own. An error rolls that transaction back: the saga stays at its
// last step, which runs again (steps are idempotent) before completion is tried again.
// With a group-committing database that transaction may run more than once
// (storage::Rerun::allowed), so the hook acts through the Tx and its on_commit hooks only.
using CompletionHook = std::function<Result<void>(storage::Tx&, const State&)>;

struct Definition {
  std::string type;
  std::vector<Step> steps;
  int max_attempts = 3;  // per forward step (retry results)
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{10'000};
  CompletionHook on_completed;  // optional
};

enum class Status { running, compensating, completed, compensated };
std::string_view to_string(Status s) noexcept;
std::optional<Status> parse_status(std::string_view s) noexcept;
inline bool terminal(Status s) noexcept { return s == Status::completed || s == Status::compensated; }

struct HistoryEntry {
  std::int64_t at_ms = 0;
  std::string event;  // started, step_succeeded, step_failed, step_retry, compensating, compensated_step, ...
  std::string step;
  std::string detail;
};

struct State {
  std::string id;
  std::string type;
  Status status = Status::running;
  int step = 0;  // running: next step to run; compensating: next step to undo (-1: none left)
  boost::json::object data;
  std::string failure;  // why it compensates
  int attempts = 0;     // of the current step or compensation
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::vector<HistoryEntry> history;  // filled by get()
  std::string traceparent;             // the trace the saga was started in (empty: none)
};

// When a forward step's success is persisted.
enum class ForwardCheckpoint : std::uint8_t {
  // Before the next step runs (one write transaction per step).
  awaited,
  // Write-behind: while the next step already runs (its call overlaps the commit). The
  // stored state lags by at most one transition, so after a crash up to two steps run again.
  background,
  // With the next transition that has to be persisted anyway (a failure, a retry, the
  // completion), in its transaction: a saga whose steps all succeed writes twice, at its
  // creation and at its end. After a crash or a shutdown its forward steps since the last
  // stored transition run again. get() shows the progress of sagas driven by this instance. A driver
  // that has held progress for a quarter of the lease persists it (and renews the lease).
  deferred,
};

struct OrchestratorOptions {
  std::string owner = "local";                      // this instance's id (lease owner)
  std::chrono::milliseconds lease{30'000};          // how long a dead instance blocks others
  int stuck_after = 5;                              // compensation attempts before "stuck"
  // When forward progress is persisted (above). With background or deferred, steps run
  // again after a crash; they are idempotent (idempotency keys), so effects still happen
  // once. Failures, compensations, retries and the terminal state are always persisted
  // before the saga goes on.
  ForwardCheckpoint forward_checkpoint = ForwardCheckpoint::awaited;
  obs::Registry* metrics = &obs::Registry::global();
  const core::Clock* clock = &core::SystemClock::instance();
  // Test hook: runs at every boundary (before an action, after it, after a persist).
  std::function<void(std::string_view boundary)> on_boundary;
};

class Orchestrator {
 public:
  // Schema (scope "mercado_saga").
  static std::span<const storage::Migration> migrations();

  Orchestrator(std::shared_ptr<storage::Database> db, boost::asio::any_io_executor executor,
               OrchestratorOptions options = {});
  ~Orchestrator();

  void define(Definition definition);

  // Creates the saga (idempotent on saga_id: an existing one is returned as it is) and
  // drives it in the background. invalid_argument for an unknown type.
  boost::asio::awaitable<Result<State>> start(std::string type, std::string saga_id, boost::json::object input,
                                              const obs::TraceContext* trace = nullptr);
  // Creates the saga inside the caller's transaction (with the state change that starts it,
  // so that neither exists without the other). True if it was new. Call launch() after the
  // commit (or let resume_all() find it after a crash).
  Result<bool> create_in(storage::Tx& tx, std::string_view type, std::string_view saga_id,
                         const boost::json::object& input, const obs::TraceContext* trace = nullptr);
  // Starts driving a created saga in the background (no-op when finished or already driven).
  void launch(const std::string& saga_id);

  // Resumes every unfinished saga whose lease is free or ours. Returns how many.
  boost::asio::awaitable<Result<std::size_t>> resume_all();

  boost::asio::awaitable<Result<std::optional<State>>> get(std::string saga_id);
  boost::asio::awaitable<Result<std::vector<State>>> list(std::optional<Status> status, std::size_t limit = 100);
  // Waits until the saga is terminal (or the timeout): the state at that moment.
  boost::asio::awaitable<Result<State>> wait(std::string saga_id, std::chrono::milliseconds timeout);

  // Called once per saga reaching a terminal state in this instance (after it was persisted).
  void on_finished(std::function<void(const State&)> callback);
  // Stops starting new actions; sagas stay persisted and resume on the next start-up.
  void stop();
  // stop(), then waits (up to `timeout`) until no driver of this instance runs any more.
  // Call it before destroying what the sagas use (the registry, the database, the
  // executor); returns false on timeout.
  boost::asio::awaitable<bool> shutdown(std::chrono::milliseconds timeout);
  std::size_t active() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace mercado::saga
