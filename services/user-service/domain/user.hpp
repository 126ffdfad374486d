#pragma once
// User rules (pure): registration input, profile and preference values.

#include <optional>
#include <string>

#include <boost/describe.hpp>

#include <mercado/json/codec.hpp>

namespace user::domain {

struct Registration {
  std::string email;
  std::string password;
  std::string name;
};
BOOST_DESCRIBE_STRUCT(Registration, (), (email, password, name))
// email: a plausible address (stored lowercased); password: 8..128 characters with a
// letter and a digit; name: 1..100 printable characters. Every problem is reported.
void validate(const Registration& r, mercado::json::Validator& v);

struct Profile {
  std::string name;
  std::optional<std::string> address;
  std::optional<std::string> phone;
};
BOOST_DESCRIBE_STRUCT(Profile, (), (name, address, phone))
void validate(const Profile& p, mercado::json::Validator& v);

struct Preferences {
  std::string language = "en";   // en | es
  std::string currency = "EUR";  // ISO 4217, three capital letters
  bool newsletter = false;
};
BOOST_DESCRIBE_STRUCT(Preferences, (), (language, currency, newsletter))
void validate(const Preferences& p, mercado::json::Validator& v);

std::string normalize_email(std::string_view email);

}  // namespace user::domain
