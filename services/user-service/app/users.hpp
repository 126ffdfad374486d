#pragma once
// User commands and queries on the service's database.

#include <optional>
#include <string>

#include <boost/describe.hpp>

#include <mercado/messaging/outbox.hpp>
#include <mercado/storage/migrations.hpp>
#include <mercado/storage/tx.hpp>

#include "domain/user.hpp"

namespace user::app {

struct UserView {
  std::string id;
  std::string email;
  std::string name;
};
BOOST_DESCRIBE_STRUCT(UserView, (), (id, email, name))

struct Credentials {
  std::string id;
  std::string password_hash;
};

std::span<const mercado::storage::Migration> migrations();

// Inserts the user (conflict "email-taken" when the address is registered) and stores
// UserRegistered in the outbox. `password_hash` is computed beforehand, off the transaction.
mercado::Result<UserView> register_user(mercado::storage::Tx& tx, const mercado::messaging::Outbox& outbox,
                                        const domain::Registration& r, std::string_view password_hash,
                                        std::string_view traceparent);
mercado::Result<std::optional<Credentials>> credentials(mercado::storage::Tx& tx, std::string_view email);
mercado::Result<std::optional<UserView>> find_user(mercado::storage::Tx& tx, std::string_view id);

mercado::Result<std::optional<domain::Profile>> find_profile(mercado::storage::Tx& tx, std::string_view id);
mercado::Result<domain::Profile> save_profile(mercado::storage::Tx& tx, std::string_view id, const domain::Profile& p);
mercado::Result<std::optional<domain::Preferences>> find_preferences(mercado::storage::Tx& tx, std::string_view id);
mercado::Result<domain::Preferences> save_preferences(mercado::storage::Tx& tx, std::string_view id,
                                                      const domain::Preferences& p);

}  // namespace user::app
