#pragma once
// A small base for event-sourced aggregates (the chapter's Order, exercise 2's BankAccount).
//
//   class BankAccount : public es::Aggregate<BankAccount> {
//    public:
//     Result<void> deposit(std::int64_t cents) {            // a command: check, then raise
//       if (cents <= 0) return fail(Errc::invalid_argument, "amount must be positive");
//       raise("MoneyDeposited", {{"amount", cents}});
//       return {};
//     }
//     void when(std::string_view type, const boost::json::object& data);  // state changes only
//   };
//
// Commands validate and call raise(); raise() applies the event through when() at once and
// keeps it pending. when() must only change state (no checks, no I/O): it is also how the
// aggregate is rebuilt from history, so rebuilding replays exactly what happened.
// version() counts the events applied from the store; save() appends the pending events
// expecting that version, so a concurrent change is detected, never overwritten.
// Not thread-safe: an aggregate instance belongs to one command.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/json.hpp>

#include <mercado/eventsourcing/event_store.hpp>

namespace mercado::es {

template <class Derived>
class Aggregate {
 public:
  const std::string& id() const noexcept { return id_; }
  std::int64_t version() const noexcept { return version_; }
  const std::vector<NewEvent>& pending_events() const noexcept { return pending_; }
  // To give pending events deterministic ids before save() (e.g. derived from an
  // Idempotency-Key), so that a retried command appends nothing new.
  std::vector<NewEvent>& pending_events_for_update() noexcept { return pending_; }

  // Rebuilds state from stored events (in version order).
  void load(const std::vector<RecordedEvent>& history) {
    for (const auto& e : history) {
      self().when(e.event_type, e.json().as_object());
      version_ = e.version;
    }
  }
  // After a successful append: the stream is at `new_version` and nothing is pending.
  void mark_saved(std::int64_t new_version) {
    version_ = new_version;
    pending_.clear();
  }

 protected:
  explicit Aggregate(std::string id = {}) : id_(std::move(id)) {}
  void set_id(std::string id) { id_ = std::move(id); }
  void set_version(std::int64_t v) noexcept { version_ = v; }

  void raise(std::string type, boost::json::object data, boost::json::object metadata = {}) {
    self().when(type, data);
    pending_.push_back(NewEvent::make(std::move(type), data, metadata.empty() ? boost::json::value() : boost::json::value(metadata)));
  }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
  std::string id_;
  std::int64_t version_ = 0;
  std::vector<NewEvent> pending_;
};

// Loads an aggregate from its stream (not found: version 0, nothing applied).
template <class A, class... Args>
boost::asio::awaitable<Result<A>> load(EventStore& store, const std::string& stream, Args&&... args) {
  A aggregate(stream, std::forward<Args>(args)...);
  auto history = co_await store.read_stream(stream);
  if (!history) co_return fail(std::move(history.error()));
  aggregate.load(*history);
  co_return aggregate;
}

// Appends the aggregate's pending events, expecting the version it was loaded at.
template <class A>
boost::asio::awaitable<AppendOutcome> save(EventStore& store, A& aggregate) {
  if (aggregate.pending_events().empty()) co_return AppendResult{aggregate.version(), 0, true};
  auto r = co_await store.append(aggregate.id(), aggregate.pending_events(), ExpectedVersion::exact(aggregate.version()));
  if (r) aggregate.mark_saved(r->version);
  co_return r;
}

}  // namespace mercado::es
