#pragma once
// Orders: the Order aggregate in the event store (stream "order-<id>"), integration events
// in the outbox (same transaction, via the append hook), and the CQRS read model
// `orders_view` kept by a projection.

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/describe.hpp>

#include <mercado/eventsourcing/event_store.hpp>
#include <mercado/eventsourcing/projection.hpp>
#include <mercado/messaging/outbox.hpp>
#include <mercado/storage/migrations.hpp>

#include "domain/order.hpp"

namespace order::app {

struct ItemView {
  std::string product_id;
  std::int64_t quantity = 0;
  std::int64_t price = 0;  // unit price, cents
};
BOOST_DESCRIBE_STRUCT(ItemView, (), (product_id, quantity, price))

struct OrderView {
  std::string id;
  std::string customer_id;
  std::vector<ItemView> items;
  std::int64_t total = 0;
  std::string status;  // PENDING | CONFIRMED | CANCELLED
  std::string reason;  // why it was cancelled
  std::string address;
};
BOOST_DESCRIBE_STRUCT(OrderView, (), (id, customer_id, items, total, status, reason, address))

std::span<const mercado::storage::Migration> migrations();
std::string order_stream(std::string_view order_id);

mercado::es::EventStore::AppendHook append_hook(const mercado::messaging::Outbox& outbox);

// Keeps orders_view from the order events.
class OrdersProjection final : public mercado::es::Projection {
 public:
  std::string_view name() const override { return "orders_view"; }
  mercado::Result<void> apply(mercado::storage::Tx& tx, const mercado::es::RecordedEvent& e) override;
  // An order's creating events in one INSERT (see orders.cpp); the rest as apply().
  mercado::Result<void> apply_all(mercado::storage::Tx& tx, std::span<const mercado::es::RecordedEvent> events) override;
  mercado::Result<void> reset(mercado::storage::Tx& tx) override;
};

// Whether a stored order is what a request asks for (address, and items with their
// quantities in order; not the prices, which the first request fixed).
bool same_order(const domain::Order& stored, std::string_view address, std::span<const ItemView> items);

class Orders {
 public:
  Orders(mercado::es::EventStore& store, mercado::es::ProjectionRunner& view)
      : store_(store), view_(view) {}

  // Creates the order with priced items: the global position of its events, whether they
  // were stored already (a retried request with the same order id), and the order as this
  // request placed it (PENDING; what orders_view holds for a new order). A retry whose order
  // differs from the stored one (the Idempotency-Key reused): unprocessable, type
  // "idempotency-key-reused".
  struct Placed {
    std::int64_t position = 0;
    bool replayed = false;
    OrderView order;
  };
  boost::asio::awaitable<mercado::Result<Placed>> place(std::string order_id, std::string customer_id,
                                                std::string address, std::vector<ItemView> items,
                                                std::string traceparent);
  // PENDING -> CONFIRMED (no-op when confirmed); conflict when cancelled.
  boost::asio::awaitable<mercado::Result<void>> confirm(std::string order_id, std::string traceparent);
  // The same inside the caller's transaction (the saga's completion): the order's events,
  // its outbox entry and the caller's writes commit together.
  mercado::Result<void> confirm_in(mercado::storage::Tx& tx, const std::string& order_id, const std::string& traceparent);
  // PENDING -> CANCELLED (no-op when cancelled); conflict when confirmed.
  boost::asio::awaitable<mercado::Result<void>> cancel(std::string order_id, std::string reason, std::string traceparent);
  boost::asio::awaitable<mercado::Result<std::optional<domain::Order>>> load(std::string order_id);

  // From the read model.
  boost::asio::awaitable<mercado::Result<std::optional<OrderView>>> get(std::string order_id);
  boost::asio::awaitable<mercado::Result<std::vector<OrderView>>> by_customer(std::string customer_id, std::size_t limit);
  // Waits until the read model has applied `position` (read your writes).
  boost::asio::awaitable<bool> visible(std::int64_t position, std::chrono::milliseconds timeout) {
    return view_.wait_for(position, timeout);
  }

 private:
  boost::asio::awaitable<mercado::Result<void>> change(std::string order_id, std::string traceparent, bool confirm,
                                                       std::string reason);
  mercado::es::EventStore& store_;
  mercado::es::ProjectionRunner& view_;
};

}  // namespace order::app
