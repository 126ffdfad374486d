#pragma once
// Commits the stock reservations of confirmed orders after the fact, in batches.
//
// Once an order is paid and shipped nothing can undo it, so committing its reservation
// (inventory moves the reserved stock to shipped) is a step that must happen but cannot
// fail the order: the saga's last step in Richardson's terms ("retriable"). Instead of a
// step of its own on every order's path (one more HTTP call and one more commit in
// inventory per order, before the order could be confirmed), the saga's completion records
// the reservation in `reservation_commits`, in the transaction that confirms the order, and
// this committer sends what is recorded to inventory's `POST /reservations/commit` (up to
// `batch` ids, one transaction there), then forgets them:
// - nothing is lost: the record commits with the confirmation, survives a crash and is sent
//   again (committing is idempotent in inventory) until inventory answers;
// - woken by every commit that records one; re-checks every `poll_interval`; after a failed
//   round it retries with exponential backoff (`retry_min` ... `retry_max`);
// - a reservation inventory cannot commit (unknown, released) is logged as an error and
//   counted (`reservation_commits_total{outcome="refused"}`): for a confirmed order that is a
//   bug, not something to retry.
// Until then the stock shows as reserved (not available, not yet shipped).

#include <chrono>
#include <memory>
#include <span>
#include <string_view>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <mercado/auth/service_token.hpp>
#include <mercado/core/error.hpp>
#include <mercado/observability/metrics.hpp>
#include <mercado/resilience/service_client.hpp>
#include <mercado/storage/database.hpp>
#include <mercado/storage/migrations.hpp>

namespace order::app {

struct CommitterOptions {
  std::size_t batch = 128;
  std::chrono::milliseconds poll_interval{1000};
  std::chrono::milliseconds retry_min{100};
  std::chrono::milliseconds retry_max{5000};
};

class ReservationCommitter {
 public:
  // The `reservation_commits` table (part of order-service's own migrations).
  static mercado::storage::Migration migration(std::int64_t version);

  ReservationCommitter(std::shared_ptr<mercado::storage::Database> db, mercado::resilience::ServiceClient& inventory,
                       mercado::auth::ServiceToken& token, mercado::obs::Registry& metrics, CommitterOptions options = {});
  ~ReservationCommitter();

  // Inside the transaction that confirms the order: its reservation is to be committed.
  mercado::Result<void> enqueue_in(mercado::storage::Tx& tx, std::string_view reservation_id) const;

  void start(boost::asio::any_io_executor executor);
  // Stops after the round in flight; what is recorded is sent by the next start.
  boost::asio::awaitable<void> stop();
  // One round (tests): how many recorded reservations it sent and forgot.
  boost::asio::awaitable<mercado::Result<std::size_t>> run_once();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace order::app
