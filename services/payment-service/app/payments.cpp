#include "app/payments.hpp"

#include <boost/json.hpp>

#include <mercado/core/clock.hpp>
#include <mercado/eventsourcing/aggregate.hpp>
#include <mercado/json/codec.hpp>
#include <mercado/service/idempotency.hpp>

namespace payment::app {

namespace asio = boost::asio;
namespace es = mercado::es;
namespace json = boost::json;
namespace storage = mercado::storage;
using mercado::Errc;
using mercado::Error;
using mercado::fail;
using mercado::Result;

namespace {

constexpr int kMaxAttempts = 20;  // optimistic-concurrency retries of one command

std::string metadata(std::string_view traceparent) {
  if (traceparent.empty()) return "{}";
  return json::serialize(json::object{{"traceparent", traceparent}});
}

std::string traceparent_of(const es::RecordedEvent& e) {
  boost::system::error_code ec;
  auto v = json::parse(e.metadata, ec);
  if (ec || !v.is_object()) return {};
  auto it = v.as_object().find("traceparent");
  return it != v.as_object().end() && it->value().is_string() ? std::string(it->value().as_string()) : std::string();
}

Result<std::optional<PaymentView>> find_in(storage::Tx& tx, std::string_view id) {
  auto rows = tx.query("SELECT id, order_id, customer_id, amount, status FROM payments WHERE id = $1", id);
  if (!rows) return fail(std::move(rows.error()));
  if (rows->empty()) return std::optional<PaymentView>();
  const auto r = (*rows)[0];
  return std::optional<PaymentView>(PaymentView{r.get<std::string>(0), r.get<std::string>(1), r.get<std::string>(2),
                                                r.get<std::int64_t>(3), r.get<std::string>(4)});
}

std::string deposit_event_id(std::string_view customer, std::string_view key) {
  return "deposit:" + std::string(customer) + ":" + std::string(key);
}

// Deterministic event ids make a retried command append nothing new: the account is
// opened once ("opened:<customer>"), a payment taken once ("withdraw:<payment>") and
// refunded once ("refund:<payment>"), a keyed deposit made once ("deposit:<customer>:<key>").
void set_ids(domain::BankAccount& account, std::string_view customer, std::string_view payment_id,
             std::string_view deposit_key) {
  for (auto& e : account.pending_events_for_update()) {
    if (e.event_type == "AccountCreated") {
      e.event_id = "opened:" + std::string(customer);
    } else if (e.event_type == "MoneyWithdrawn") {
      e.event_id = "withdraw:" + std::string(payment_id);
    } else if (e.event_type == "MoneyRefunded") {
      e.event_id = "refund:" + std::string(payment_id);
    } else if (e.event_type == "MoneyDeposited" && !deposit_key.empty()) {
      e.event_id = deposit_event_id(customer, deposit_key);
    }
  }
}

// Another writer got there first (a different version, or some of our deterministic ids
// are stored already): reload and decide again.
bool retryable(const es::AppendError& e) { return e.is_concurrency() || e.error.type == "duplicate-event-id"; }

void set_metadata(domain::BankAccount& account, std::string_view traceparent) {
  for (auto& e : account.pending_events_for_update()) e.metadata = metadata(traceparent);
}

}  // namespace

std::string account_stream(std::string_view customer_id) { return "account-" + std::string(customer_id); }
std::string payment_id_for(std::string_view order_id) { return "pay-" + std::string(order_id); }

std::span<const storage::Migration> migrations() {
  static constexpr std::string_view kPayments =
      "id TEXT PRIMARY KEY, order_id TEXT NOT NULL UNIQUE, customer_id TEXT NOT NULL, amount BIGINT NOT NULL, "
      "status TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL";
  static const storage::Migration kMigrations[] = {
      {.version = 1, .name = "payments read model", .sql = "CREATE TABLE payments (" + std::string(kPayments) + ")"},
      // Keyed by its primary key alone (no rowid B-tree beside it): a page fewer per commit.
      storage::without_rowid(2, "payments", kPayments),
  };
  return kMigrations;
}

es::EventStore::AppendHook append_hook(const mercado::messaging::Outbox& outbox) {
  return [&outbox](storage::Tx& tx, std::span<const es::RecordedEvent> events) -> Result<void> {
    for (const auto& e : events) {
      const std::string customer = e.stream_id.substr(std::string_view("account-").size());
      const auto data = e.json().as_object();
      mercado::messaging::Headers headers;
      if (auto tp = traceparent_of(e); !tp.empty()) headers["traceparent"] = tp;
      std::string type;
      json::object out{{"customer_id", customer}};
      if (e.event_type == "AccountCreated") {
        type = "AccountOpened";
      } else if (e.event_type == "MoneyDeposited") {
        type = "MoneyDeposited";
        out["amount"] = data.at("amount");
      } else if (e.event_type == "MoneyWithdrawn" || e.event_type == "MoneyRefunded") {
        const std::string payment_id(data.at("payment_id").as_string());
        const std::string order_id = payment_id.substr(std::string_view("pay-").size());
        const auto amount = data.at("amount").as_int64();
        const bool refund = e.event_type == "MoneyRefunded";
        auto w = refund ? tx.exec("UPDATE payments SET status = 'REFUNDED', updated_at = $1 WHERE id = $2", mercado::core::unix_millis(), payment_id)
                        : tx.exec("INSERT INTO payments (id, order_id, customer_id, amount, status, created_at, updated_at) "
                                  "VALUES ($1, $2, $3, $4, 'COMPLETED', $5, $5)",
                                  payment_id, order_id, customer, amount, mercado::core::unix_millis());
        if (!w) return fail(std::move(w.error()));
        type = refund ? "PaymentRefunded" : "PaymentCompleted";
        out["payment_id"] = payment_id;
        out["order_id"] = order_id;
        out["amount"] = amount;
      } else {
        continue;
      }
      auto ev = outbox.add(tx, type, std::move(out), std::move(headers));
      if (!ev) return fail(std::move(ev.error()));
    }
    return {};
  };
}

asio::awaitable<Result<std::optional<PaymentView>>> Payments::find(std::string payment_id) {
  co_return co_await db_.transaction([&](storage::Tx& tx) { return find_in(tx, payment_id); }, storage::TxMode::read);
}

asio::awaitable<Result<std::optional<AccountView>>> Payments::account(std::string customer_id) {
  auto a = co_await accounts_.load(store_, account_stream(customer_id));
  if (!a) co_return fail(std::move(a.error()));
  if (!a->exists()) co_return std::optional<AccountView>();
  co_return std::optional<AccountView>(AccountView{customer_id, a->balance(), a->version()});
}

asio::awaitable<Result<void>> Payments::open(std::string customer_id, std::string traceparent) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto a = co_await accounts_.load(store_, account_stream(customer_id));
    if (!a) co_return fail(std::move(a.error()));
    if (a->exists()) co_return Result<void>{};
    if (auto r = a->open(customer_id); !r) co_return fail(std::move(r.error()));
    set_ids(*a, customer_id, "", "");
    set_metadata(*a, traceparent);
    auto saved = co_await es::save(store_, *a);
    if (saved && !saved->replayed) accounts_.remember(*a);  // a replay applied its events twice in memory
    if (saved) co_return Result<void>{};
    if (!retryable(saved.error())) co_return fail(std::move(saved.error().error));
  }
  co_return fail(Errc::unavailable, "the account changed too often; try again");
}

asio::awaitable<Result<AccountView>> Payments::deposit(std::string customer_id, std::int64_t amount,
                                                       std::string idempotency_key, std::string traceparent) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto a = co_await accounts_.load(store_, account_stream(customer_id));
    if (!a) co_return fail(std::move(a.error()));
    if (!a->exists()) {
      if (auto r = a->open(customer_id); !r) co_return fail(std::move(r.error()));
    }
    if (auto r = a->deposit(amount); !r) co_return fail(std::move(r.error()));
    set_ids(*a, customer_id, "", idempotency_key);
    set_metadata(*a, traceparent);
    auto saved = co_await es::save(store_, *a);
    if (saved && !saved->replayed) accounts_.remember(*a);  // a replay applied its events twice in memory
    if (saved) {
      if (!saved->replayed) co_return AccountView{customer_id, a->balance(), a->version()};
      // A retried deposit: the same amount, or the key reused for another deposit, which must
      // not pass for a success.
      auto earlier = co_await store_.read_event(deposit_event_id(customer_id, idempotency_key));
      if (!earlier) co_return fail(std::move(earlier.error()));
      if (*earlier && (*earlier)->json().as_object().at("amount").as_int64() != amount) {
        co_return std::unexpected(mercado::service::key_reused_error("deposit"));
      }
      auto now = co_await account(customer_id);  // report the account as it is
      if (!now) co_return fail(std::move(now.error()));
      co_return **now;
    }
    if (!retryable(saved.error())) co_return fail(std::move(saved.error().error));
  }
  co_return fail(Errc::unavailable, "the account changed too often; try again");
}

asio::awaitable<Result<PaymentView>> Payments::pay(std::string order_id, std::string customer_id, std::int64_t amount,
                                                   std::string traceparent) {
  const std::string payment_id = payment_id_for(order_id);
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    // One write transaction: was this order paid already, the account as it is now, and the
    // withdrawal appended. Deciding inside the write spares a read transaction per payment
    // (on SQLite it would borrow the writer's connection from the next commit group), and
    // there nothing can append to the account between the read and the append. A group
    // commit runs members one after another, so a second payment from the same account in
    // the same group reads the first one's withdrawal. PostgreSQL runs transactions side by
    // side: there a concurrent append is refused at the append (expected version) and the
    // command runs again.
    struct Decided {
      std::optional<PaymentView> existing;
      std::optional<Error> refused;               // nothing taken
      bool paid = false;                          // the withdrawal is stored
      std::optional<domain::BankAccount> saved;   // by this transaction: the account after it
    };
    std::optional<es::AppendError> append_refused;
    auto decided = co_await db_.transaction(
        [&](storage::Tx& tx) -> Result<Decided> {
          append_refused.reset();
          auto existing = find_in(tx, payment_id);
          if (!existing) return fail(std::move(existing.error()));
          if (*existing) return Decided{.existing = std::move(*existing)};
          // Not cached yet: what this transaction reads may still roll back.
          auto a = accounts_.peek_in(tx, account_stream(customer_id));
          if (!a) return fail(std::move(a.error()));
          if (!a->exists()) {
            Error e(Errc::conflict, "customer " + customer_id + " has no account, so no funds");
            e.type = "insufficient-funds";
            return Decided{.refused = std::move(e)};
          }
          if (auto r = a->withdraw(amount, payment_id, std::nullopt); !r) return Decided{.refused = std::move(r.error())};
          set_ids(*a, customer_id, payment_id, "");
          set_metadata(*a, traceparent);
          auto appended = store_.append_in(tx, a->id(), a->pending_events(), es::ExpectedVersion::exact(a->version()));
          if (!appended) {
            append_refused = appended.error();
            // A refused append wrote nothing; a failed statement fails the transaction anyway.
            if (appended.error().is_concurrency()) return Decided{};
            return fail(appended.error().error);
          }
          if (appended->replayed) return Decided{.paid = true};  // stored already (its events, as they were)
          a->mark_saved(appended->version);
          tx.on_commit([this] { store_.appended().notify_all(); });
          return Decided{.paid = true, .saved = std::move(*a)};
        },
        storage::TxMode::write, storage::Rerun::allowed);
    if (!decided) {
      if (append_refused && retryable(*append_refused)) continue;
      co_return fail(std::move(decided.error()));
    }
    if (auto& existing = decided->existing) {
      if (existing->customer_id != customer_id || existing->amount != amount) {
        co_return fail(Errc::conflict, "order " + order_id + " was already paid with other details");
      }
      co_return std::move(*existing);
    }
    if (decided->refused) co_return fail(std::move(*decided->refused));
    if (decided->paid) {
      if (decided->saved) accounts_.remember(*decided->saved);  // committed
      co_return PaymentView{payment_id, order_id, customer_id, amount, "COMPLETED"};
    }
    // Another writer appended first (PostgreSQL): again.
  }
  co_return fail(Errc::unavailable, "the account changed too often; try again");
}

asio::awaitable<Result<PaymentView>> Payments::refund(std::string payment_id, std::string traceparent) {
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    auto existing = co_await find(payment_id);
    if (!existing) co_return fail(std::move(existing.error()));
    if (!*existing) co_return fail(Errc::not_found, "no payment " + payment_id);
    PaymentView view = **existing;
    if (view.status == "REFUNDED") co_return view;
    auto a = co_await accounts_.load(store_, account_stream(view.customer_id));
    if (!a) co_return fail(std::move(a.error()));
    if (auto r = a->refund(payment_id, domain::Withdrawal{view.amount, false}); !r) co_return fail(std::move(r.error()));
    set_ids(*a, view.customer_id, payment_id, "");
    set_metadata(*a, traceparent);
    auto saved = co_await es::save(store_, *a);
    if (saved && !saved->replayed) accounts_.remember(*a);  // a replay applied its events twice in memory
    if (saved) {
      view.status = "REFUNDED";
      co_return view;
    }
    if (!retryable(saved.error())) co_return fail(std::move(saved.error().error));
  }
  co_return fail(Errc::unavailable, "the account changed too often; try again");
}

}  // namespace payment::app
