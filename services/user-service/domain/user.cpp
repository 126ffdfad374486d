#include "domain/user.hpp"

#include <algorithm>
#include <cctype>

#include <mercado/auth/password.hpp>
#include <mercado/json/rules.hpp>

namespace user::domain {

namespace rules = mercado::json::rules;

void validate(const Registration& r, mercado::json::Validator& v) {
  v.check(rules::is_email(r.email), "email", "must be an email address");
  if (auto problem = mercado::auth::password_problem(r.password)) v.fail("password", *problem);
  v.check(rules::length_between(r.name, 1, 100) && rules::is_printable_utf8(r.name), "name",
          "must be 1 to 100 printable characters");
}

void validate(const Profile& p, mercado::json::Validator& v) {
  v.check(rules::length_between(p.name, 1, 100) && rules::is_printable_utf8(p.name), "name",
          "must be 1 to 100 printable characters");
  if (p.address) {
    v.check(rules::length_between(*p.address, 0, 200) && rules::is_printable_utf8(*p.address), "address",
            "must be at most 200 printable characters");
  }
  if (p.phone) {
    v.check(p.phone->size() <= 20 && std::all_of(p.phone->begin(), p.phone->end(), [](char c) {
              return std::isdigit(static_cast<unsigned char>(c)) || c == '+' || c == ' ' || c == '-';
            }),
            "phone", "must be at most 20 digits, spaces, '+' or '-'");
  }
}

void validate(const Preferences& p, mercado::json::Validator& v) {
  v.check(p.language == "en" || p.language == "es", "language", "must be \"en\" or \"es\"");
  v.check(p.currency.size() == 3 && std::all_of(p.currency.begin(), p.currency.end(),
                                                [](char c) { return c >= 'A' && c <= 'Z'; }),
          "currency", "must be a three-letter ISO 4217 code");
}

std::string normalize_email(std::string_view email) {
  std::string out(email);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace user::domain
