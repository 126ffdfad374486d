#pragma once
// An in-process cache of aggregates (a "caching repository"): loading a stream starts from
// the state cached after its last load or save and reads only the events recorded after it,
// instead of replaying the whole stream every time. Long streams (an account with thousands
// of payments) then cost one short range read per command.
//
//   es::AggregateCache<BankAccount> accounts(256);
//   auto a = co_await accounts.load(store, "account-42");   // cached state + newer events
//   (or accounts.load_in(tx, "account-42") inside a read transaction of the caller's, or
//   accounts.peek_in(tx, ...) inside a write transaction, then remember() after its commit)
//   a->withdraw(500, "pay-7");
//   auto saved = co_await es::save(store, *a);
//   if (saved) accounts.remember(*a);                       // the saved state, nothing pending
//
// Always correct, never stale: events are immutable and appended with increasing versions,
// so "cached state at version v + the stream's events after v" is exactly the replay of the
// whole stream, whoever appended them (another instance, another process). A cached entry is
// a copy; callers get their own copy, so concurrent commands do not share state. The least
// recently used streams are dropped beyond `capacity`. Thread-safe.

#include <cstddef>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include <boost/asio/awaitable.hpp>

#include <mercado/eventsourcing/aggregate.hpp>
#include <mercado/eventsourcing/event_store.hpp>

namespace mercado::es {

template <class A>
class AggregateCache {
 public:
  explicit AggregateCache(std::size_t capacity = 256) : capacity_(capacity == 0 ? 1 : capacity) {}

  // The stream's aggregate: the cached state (if any) brought up to date with the events
  // recorded after it. `args` construct a fresh aggregate when nothing is cached.
  template <class... Args>
  boost::asio::awaitable<Result<A>> load(EventStore& store, const std::string& stream, Args&&... args) {
    co_return co_await store.database().transaction(
        [&](storage::Tx& tx) { return load_in(tx, stream, std::forward<Args>(args)...); }, storage::TxMode::read);
  }

  // The same inside the caller's read transaction, e.g. together with other reads the
  // command needs, in one transaction instead of two. (In a write transaction use peek_in:
  // what it reads may still roll back.)
  template <class... Args>
  Result<A> load_in(storage::Tx& tx, const std::string& stream, Args&&... args) {
    bool changed = false;
    auto aggregate = read_in(tx, stream, changed, std::forward<Args>(args)...);
    if (aggregate && changed) remember(*aggregate);
    return aggregate;
  }

  // The same without caching what was read: for a write transaction, whose reads include
  // writes that may still roll back (its own, or other members' of a group commit). Call
  // remember() once it has committed.
  template <class... Args>
  Result<A> peek_in(storage::Tx& tx, const std::string& stream, Args&&... args) {
    bool changed = false;
    return read_in(tx, stream, changed, std::forward<Args>(args)...);
  }

  // Caches an aggregate that has nothing pending (e.g. after a successful save); an
  // aggregate with pending events, or one older than the cached entry, is ignored.
  void remember(const A& aggregate) {
    if (!aggregate.pending_events().empty() || aggregate.version() == 0) return;
    std::lock_guard lock(mutex_);
    auto it = entries_.find(aggregate.id());
    if (it != entries_.end()) {
      if (it->second.aggregate.version() > aggregate.version()) return;
      it->second.aggregate = aggregate;
      order_.splice(order_.begin(), order_, it->second.position);
      return;
    }
    order_.push_front(aggregate.id());
    entries_.emplace(aggregate.id(), Entry{aggregate, order_.begin()});
    if (entries_.size() > capacity_) {
      entries_.erase(order_.back());
      order_.pop_back();
    }
  }

  // Drops a stream's entry (e.g. after a failed save whose outcome is unknown).
  void forget(const std::string& stream) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(stream);
    if (it == entries_.end()) return;
    order_.erase(it->second.position);
    entries_.erase(it);
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  // The cached state brought up to date; `changed`: not cached, or newer events were read.
  template <class... Args>
  Result<A> read_in(storage::Tx& tx, const std::string& stream, bool& changed, Args&&... args) {
    std::optional<A> cached = get(stream);
    A aggregate = cached ? std::move(*cached) : A(stream, std::forward<Args>(args)...);
    auto newer = EventStore::read_stream_in(tx, stream, aggregate.version());
    if (!newer) return fail(std::move(newer.error()));
    changed = !newer->empty() || !cached;
    if (changed) aggregate.load(*newer);
    return aggregate;
  }

  struct Entry {
    A aggregate;
    std::list<std::string>::iterator position;
  };

  std::optional<A> get(const std::string& stream) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(stream);
    if (it == entries_.end()) return std::nullopt;
    order_.splice(order_.begin(), order_, it->second.position);
    return it->second.aggregate;
  }

  std::size_t capacity_;
  mutable std::mutex mutex_;
  std::list<std::string> order_;  // most recently used first
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace mercado::es
