#include "app/orders.hpp"

#include "app/reservation_committer.hpp"

#include <boost/json.hpp>

#include <mercado/eventsourcing/aggregate.hpp>
#include <mercado/json/codec.hpp>
#include <mercado/service/idempotency.hpp>

namespace order::app {

namespace asio = boost::asio;
namespace es = mercado::es;
namespace json = boost::json;
namespace storage = mercado::storage;
using mercado::Errc;
using mercado::fail;
using mercado::Result;

std::span<const storage::Migration> migrations() {
  static const storage::Migration kMigrations[] = {
      {.version = 1,
       .name = "orders read model",
       .sql = "CREATE TABLE orders_view (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, address TEXT NOT NULL, "
              "items TEXT NOT NULL, total BIGINT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL, "
              "created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
              "CREATE INDEX orders_view_customer ON orders_view (customer_id, created_at)"},
      ReservationCommitter::migration(2),
  };
  return kMigrations;
}

std::string order_stream(std::string_view order_id) { return "order-" + std::string(order_id); }

namespace {

std::string traceparent_of(const es::RecordedEvent& e) {
  boost::system::error_code ec;
  auto v = json::parse(e.metadata, ec);
  if (ec || !v.is_object()) return {};
  auto it = v.as_object().find("traceparent");
  return it != v.as_object().end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
}

std::string metadata(std::string_view traceparent) {
  if (traceparent.empty()) return "{}";
  return json::serialize(json::object{{"traceparent", traceparent}});
}

std::string order_id_of(std::string_view stream) { return std::string(stream.substr(std::string_view("order-").size())); }

}  // namespace

es::EventStore::AppendHook append_hook(const mercado::messaging::Outbox& outbox) {
  // Integration events, not the aggregate's fine-grained ones: OrderCreated carries the
  // items and total of the whole creating batch.
  return [&outbox](storage::Tx& tx, std::span<const es::RecordedEvent> events) -> Result<void> {
    json::object created;
    json::array items;
    std::int64_t total = 0;
    mercado::messaging::Headers headers;
    for (const auto& e : events) {
      if (auto tp = traceparent_of(e); !tp.empty()) headers["traceparent"] = tp;
      const auto data = e.json().as_object();
      const std::string order_id = order_id_of(e.stream_id);
      if (e.event_type == "OrderCreated") {
        created = {{"order_id", order_id}, {"customer_id", data.at("customer_id")}};
      } else if (e.event_type == "ItemAdded") {
        items.push_back(data);
        total += data.at("quantity").as_int64() * data.at("price").as_int64();
      } else if (e.event_type == "OrderConfirmed" || e.event_type == "OrderCancelled") {
        json::object out{{"order_id", order_id}};
        if (e.event_type == "OrderCancelled") out["reason"] = data.at("reason");
        auto ev = outbox.add(tx, e.event_type, std::move(out), headers);
        if (!ev) return fail(std::move(ev.error()));
      }
    }
    if (!created.empty()) {
      created["items"] = std::move(items);
      created["total"] = total;
      auto ev = outbox.add(tx, "OrderCreated", std::move(created), headers);
      if (!ev) return fail(std::move(ev.error()));
    }
    return {};
  };
}

Result<void> OrdersProjection::apply(storage::Tx& tx, const es::RecordedEvent& e) {
  const std::string id = order_id_of(e.stream_id);
  const auto d = e.json().as_object();
  Result<std::int64_t> r{0};
  if (e.event_type == "OrderCreated") {
    r = tx.exec("INSERT INTO orders_view (id, customer_id, address, items, total, status, reason, created_at, updated_at) "
                "VALUES ($1, $2, $3, '[]', 0, 'PENDING', '', $4, $4) ON CONFLICT (id) DO NOTHING",
                id, std::string(d.at("customer_id").as_string()), std::string(d.at("address").as_string()), e.recorded_at_ms);
  } else if (e.event_type == "ItemAdded") {
    auto row = tx.query_value<std::string>("SELECT items FROM orders_view WHERE id = $1", id);
    if (!row) return fail(std::move(row.error()));
    auto items = json::parse(row->value_or("[]")).as_array();
    items.push_back(d);
    r = tx.exec("UPDATE orders_view SET items = $1, total = total + $2, updated_at = $3 WHERE id = $4",
                json::serialize(items), d.at("quantity").as_int64() * d.at("price").as_int64(), e.recorded_at_ms, id);
  } else if (e.event_type == "OrderConfirmed") {
    r = tx.exec("UPDATE orders_view SET status = 'CONFIRMED', updated_at = $1 WHERE id = $2", e.recorded_at_ms, id);
  } else if (e.event_type == "OrderCancelled") {
    r = tx.exec("UPDATE orders_view SET status = 'CANCELLED', reason = $1, updated_at = $2 WHERE id = $3",
                std::string(d.at("reason").as_string()), e.recorded_at_ms, id);
  }
  if (!r) return fail(std::move(r.error()));
  return {};
}

Result<void> OrdersProjection::apply_all(storage::Tx& tx, std::span<const es::RecordedEvent> events) {
  // An order's creating events (OrderCreated and the ItemAdded events after it in the same
  // stream) become one INSERT of the whole row instead of an INSERT and a read and an UPDATE
  // per item; the row is what apply() one by one gives. Everything else goes one by one, and
  // so does a creation whose row exists already (apply() adds its items to that row).
  std::size_t i = 0;
  while (i < events.size()) {
    std::size_t end = i + 1;
    if (events[i].event_type == "OrderCreated") {
      while (end < events.size() && events[end].event_type == "ItemAdded" && events[end].stream_id == events[i].stream_id) ++end;
    }
    if (end - i > 1) {
      const auto& created = events[i];
      const auto d = created.json().as_object();
      json::array items;
      std::int64_t total = 0;
      for (std::size_t k = i + 1; k < end; ++k) {
        auto item = events[k].json().as_object();
        total += item.at("quantity").as_int64() * item.at("price").as_int64();
        items.push_back(std::move(item));
      }
      auto r = tx.exec("INSERT INTO orders_view (id, customer_id, address, items, total, status, reason, created_at, updated_at) "
                       "VALUES ($1, $2, $3, $4, $5, 'PENDING', '', $6, $7) ON CONFLICT (id) DO NOTHING",
                       order_id_of(created.stream_id), std::string(d.at("customer_id").as_string()),
                       std::string(d.at("address").as_string()), json::serialize(items), total, created.recorded_at_ms,
                       events[end - 1].recorded_at_ms);
      if (!r) return fail(std::move(r.error()));
      if (*r == 1) {
        i = end;
        continue;
      }
    }
    if (auto r = es::Projection::apply_all(tx, events.subspan(i, end - i)); !r) return r;
    i = end;
  }
  return {};
}

Result<void> OrdersProjection::reset(storage::Tx& tx) {
  auto r = tx.exec("DELETE FROM orders_view");
  if (!r) return fail(std::move(r.error()));
  return {};
}


bool same_order(const domain::Order& stored, std::string_view address, std::span<const ItemView> items) {
  // Prices are the catalogue's at the time of the first request, not part of the request.
  if (stored.address() != address || stored.items().size() != items.size()) return false;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (stored.items()[i].product_id != items[i].product_id || stored.items()[i].quantity != items[i].quantity) return false;
  }
  return true;
}

asio::awaitable<Result<Orders::Placed>> Orders::place(std::string order_id, std::string customer_id, std::string address,
                                                    std::vector<ItemView> items, std::string traceparent) {
  domain::Order o(order_stream(order_id));
  if (auto r = o.create(customer_id, address); !r) co_return fail(std::move(r.error()));
  for (const auto& i : items) {
    if (auto r = o.add_item(i.product_id, i.quantity, i.price); !r) co_return fail(std::move(r.error()));
  }
  auto& pending = o.pending_events_for_update();
  for (std::size_t i = 0; i < pending.size(); ++i) {
    pending[i].event_id = "order:" + order_id + ":" + std::to_string(i);  // a retried place appends nothing
    pending[i].metadata = metadata(traceparent);
  }
  auto saved = co_await es::save(store_, o);
  // The same order id again (the same customer and Idempotency-Key): all of this request's
  // event ids stored (replayed), or some of them (more items than the order was placed with).
  // A retry of the same request, or the key reused for another order, which must not pass
  // for a success.
  if (saved ? saved->replayed : saved.error().error.type == "duplicate-event-id") {
    auto stored = co_await load(order_id);
    if (!stored) co_return fail(std::move(stored.error()));
    if (*stored && !same_order(**stored, address, items)) {
      co_return std::unexpected(mercado::service::key_reused_error("order"));
    }
  }
  if (!saved) co_return fail(std::move(saved.error().error));
  const std::int64_t total = o.total();
  co_return Placed{saved->last_position, saved->replayed,
                   OrderView{std::move(order_id), std::move(customer_id), std::move(items), total, "PENDING", "",
                             std::move(address)}};
}

asio::awaitable<Result<std::optional<domain::Order>>> Orders::load(std::string order_id) {
  auto o = co_await es::load<domain::Order>(store_, order_stream(order_id));
  if (!o) co_return fail(std::move(o.error()));
  if (!o->exists()) co_return std::optional<domain::Order>();
  co_return std::optional<domain::Order>(std::move(*o));
}

namespace {

// Confirms or cancels a loaded order, with deterministic event ids (a retried change appends
// nothing). False: already in that state, nothing to append.
Result<bool> decide(domain::Order& o, const std::string& order_id, bool confirm, const std::string& reason,
                    const std::string& traceparent) {
  if (!o.exists()) return fail(Errc::not_found, "no order " + order_id);
  if (o.status() == (confirm ? domain::OrderStatus::confirmed : domain::OrderStatus::cancelled)) return false;
  auto r = confirm ? o.confirm() : o.cancel(reason);
  if (!r) return fail(std::move(r.error()));
  for (auto& e : o.pending_events_for_update()) {
    e.event_id = "order:" + order_id + (confirm ? ":confirmed" : ":cancelled");
    e.metadata = metadata(traceparent);
  }
  return true;
}

}  // namespace

asio::awaitable<Result<void>> Orders::change(std::string order_id, std::string traceparent, bool confirm,
                                             std::string reason) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto o = co_await es::load<domain::Order>(store_, order_stream(order_id));
    if (!o) co_return fail(std::move(o.error()));
    auto pending = decide(*o, order_id, confirm, reason, traceparent);
    if (!pending) co_return fail(std::move(pending.error()));
    if (!*pending) co_return Result<void>{};
    auto saved = co_await es::save(store_, *o);
    if (saved) co_return Result<void>{};
    if (!saved.error().is_concurrency() && saved.error().error.type != "duplicate-event-id") {
      co_return fail(std::move(saved.error().error));
    }
  }
  co_return fail(Errc::unavailable, "the order changed too often");
}

Result<void> Orders::confirm_in(storage::Tx& tx, const std::string& order_id, const std::string& traceparent) {
  auto history = es::EventStore::read_stream_in(tx, order_stream(order_id));
  if (!history) return fail(std::move(history.error()));
  domain::Order o(order_stream(order_id));
  o.load(*history);
  auto pending = decide(o, order_id, true, "", traceparent);
  if (!pending) return fail(std::move(pending.error()));
  if (!*pending) return {};
  // Inside the writer's transaction nobody else appends: the expected version holds.
  auto saved = store_.append_in(tx, o.id(), o.pending_events(), es::ExpectedVersion::exact(o.version()));
  if (!saved) return fail(std::move(saved.error().error));
  tx.on_commit([&store = store_] { store.appended().notify_all(); });  // the projection follows
  return {};
}

asio::awaitable<Result<void>> Orders::confirm(std::string order_id, std::string traceparent) {
  co_return co_await change(std::move(order_id), std::move(traceparent), true, "");
}

asio::awaitable<Result<void>> Orders::cancel(std::string order_id, std::string reason, std::string traceparent) {
  co_return co_await change(std::move(order_id), std::move(traceparent), false, std::move(reason));
}

namespace {

OrderView view_of(const storage::Row& r) {
  OrderView v{r.get<std::string>(0), r.get<std::string>(1), {}, r.get<std::int64_t>(3), r.get<std::string>(4),
              r.get<std::string>(5), r.get<std::string>(6)};
  auto items = mercado::json::decode<std::vector<ItemView>>(r.get<std::string>(2));
  if (items) v.items = std::move(*items);
  return v;
}

constexpr std::string_view kViewColumns = "id, customer_id, items, total, status, reason, address";

}  // namespace

asio::awaitable<Result<std::optional<OrderView>>> Orders::get(std::string order_id) {
  co_return co_await store_.database().transaction(
      [&](storage::Tx& tx) -> Result<std::optional<OrderView>> {
        auto rows = tx.query("SELECT " + std::string(kViewColumns) + " FROM orders_view WHERE id = $1", order_id);
        if (!rows) return fail(std::move(rows.error()));
        if (rows->empty()) return std::optional<OrderView>();
        return std::optional<OrderView>(view_of((*rows)[0]));
      },
      storage::TxMode::read);
}

asio::awaitable<Result<std::vector<OrderView>>> Orders::by_customer(std::string customer_id, std::size_t limit) {
  co_return co_await store_.database().transaction(
      [&](storage::Tx& tx) -> Result<std::vector<OrderView>> {
        auto rows = tx.query("SELECT " + std::string(kViewColumns) +
                                 " FROM orders_view WHERE customer_id = $1 ORDER BY created_at DESC LIMIT $2",
                             customer_id, static_cast<std::int64_t>(limit));
        if (!rows) return fail(std::move(rows.error()));
        std::vector<OrderView> out;
        for (const auto& r : *rows) out.push_back(view_of(r));
        return out;
      },
      storage::TxMode::read);
}

}  // namespace order::app
