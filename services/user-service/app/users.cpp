#include "app/users.hpp"

#include <mercado/core/clock.hpp>
#include <mercado/core/uuid.hpp>
#include <mercado/storage/errors.hpp>

namespace user::app {

using mercado::Errc;
using mercado::Error;
using mercado::fail;
using mercado::Result;
namespace storage = mercado::storage;

std::span<const storage::Migration> migrations() {
  static const storage::Migration kMigrations[] = {
      {.version = 1,
       .name = "users, profiles, preferences",
       .sql = "CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, password_hash TEXT NOT NULL, "
              "name TEXT NOT NULL, created_at BIGINT NOT NULL);"
              "CREATE TABLE profiles (user_id TEXT PRIMARY KEY REFERENCES users (id), name TEXT NOT NULL, address TEXT, "
              "phone TEXT, updated_at BIGINT NOT NULL);"
              "CREATE TABLE preferences (user_id TEXT PRIMARY KEY REFERENCES users (id), language TEXT NOT NULL, "
              "currency TEXT NOT NULL, newsletter BIGINT NOT NULL, updated_at BIGINT NOT NULL)"},
  };
  return kMigrations;
}

Result<UserView> register_user(storage::Tx& tx, const mercado::messaging::Outbox& outbox, const domain::Registration& r,
                               std::string_view password_hash, std::string_view traceparent) {
  UserView view{mercado::core::new_uuid(), domain::normalize_email(r.email), r.name};
  const auto now = mercado::core::unix_millis();
  auto ins = tx.exec("INSERT INTO users (id, email, password_hash, name, created_at) VALUES ($1, $2, $3, $4, $5) "
                     "ON CONFLICT (email) DO NOTHING",
                     view.id, view.email, password_hash, view.name, now);
  if (!ins) return fail(std::move(ins.error()));
  if (*ins == 0) {
    Error e(Errc::conflict, "this email address is already registered");
    e.type = "email-taken";
    return fail(std::move(e));
  }
  auto prof = tx.exec("INSERT INTO profiles (user_id, name, updated_at) VALUES ($1, $2, $3)", view.id, view.name, now);
  if (!prof) return fail(std::move(prof.error()));
  mercado::messaging::Headers h;
  if (!traceparent.empty()) h["traceparent"] = std::string(traceparent);
  boost::json::object data{{"user_id", view.id}, {"email", view.email}, {"name", view.name}};
  auto ev = outbox.add(tx, "UserRegistered", std::move(data), std::move(h));
  if (!ev) return fail(std::move(ev.error()));
  return view;
}

Result<std::optional<Credentials>> credentials(storage::Tx& tx, std::string_view email) {
  auto rows = tx.query("SELECT id, password_hash FROM users WHERE email = $1", domain::normalize_email(email));
  if (!rows) return fail(std::move(rows.error()));
  if (rows->empty()) return std::optional<Credentials>();
  return std::optional<Credentials>(Credentials{(*rows)[0].get<std::string>(0), (*rows)[0].get<std::string>(1)});
}

Result<std::optional<UserView>> find_user(storage::Tx& tx, std::string_view id) {
  auto rows = tx.query("SELECT id, email, name FROM users WHERE id = $1", id);
  if (!rows) return fail(std::move(rows.error()));
  if (rows->empty()) return std::optional<UserView>();
  const auto r = (*rows)[0];
  return std::optional<UserView>(UserView{r.get<std::string>(0), r.get<std::string>(1), r.get<std::string>(2)});
}

Result<std::optional<domain::Profile>> find_profile(storage::Tx& tx, std::string_view id) {
  auto rows = tx.query("SELECT name, address, phone FROM profiles WHERE user_id = $1", id);
  if (!rows) return fail(std::move(rows.error()));
  if (rows->empty()) return std::optional<domain::Profile>();
  const auto r = (*rows)[0];
  return std::optional<domain::Profile>(domain::Profile{r.get<std::string>(0), r.get<std::optional<std::string>>(1),
                                                        r.get<std::optional<std::string>>(2)});
}

Result<domain::Profile> save_profile(storage::Tx& tx, std::string_view id, const domain::Profile& p) {
  auto n = tx.exec("UPDATE profiles SET name = $1, address = $2, phone = $3, updated_at = $4 WHERE user_id = $5", p.name,
                   p.address, p.phone, mercado::core::unix_millis(), id);
  if (!n) return fail(std::move(n.error()));
  if (*n == 0) return fail(Errc::not_found, "no user " + std::string(id));
  auto u = tx.exec("UPDATE users SET name = $1 WHERE id = $2", p.name, id);
  if (!u) return fail(std::move(u.error()));
  return p;
}

Result<std::optional<domain::Preferences>> find_preferences(storage::Tx& tx, std::string_view id) {
  auto rows = tx.query(
      "SELECT p.language, p.currency, p.newsletter FROM users u LEFT JOIN preferences p ON p.user_id = u.id "
      "WHERE u.id = $1",
      id);
  if (!rows) return fail(std::move(rows.error()));
  if (rows->empty()) return std::optional<domain::Preferences>();  // no such user
  const auto r = (*rows)[0];
  if (r.is_null(0)) return std::optional<domain::Preferences>(domain::Preferences{});  // the defaults until set
  return std::optional<domain::Preferences>(domain::Preferences{r.get<std::string>(0), r.get<std::string>(1), r.get<bool>(2)});
}

Result<domain::Preferences> save_preferences(storage::Tx& tx, std::string_view id, const domain::Preferences& p) {
  auto user = tx.query("SELECT 1 FROM users WHERE id = $1", id);
  if (!user) return fail(std::move(user.error()));
  if (user->empty()) return fail(Errc::not_found, "no user " + std::string(id));
  auto n = tx.exec(
      "INSERT INTO preferences (user_id, language, currency, newsletter, updated_at) VALUES ($1, $2, $3, $4, $5) "
      "ON CONFLICT (user_id) DO UPDATE SET language = excluded.language, currency = excluded.currency, "
      "newsletter = excluded.newsletter, updated_at = excluded.updated_at",
      id, p.language, p.currency, p.newsletter, mercado::core::unix_millis());
  if (!n) return fail(std::move(n.error()));
  return p;
}

}  // namespace user::app
