#pragma once
// HTTP handlers of the sample: parse and validate, call the domain, map errors.
//   GET  /hello/{name}         -> 200 {"message":"Hello, ana!"}
//   POST /greetings            {name, language?: "en"|"es"} -> 201 {"message","language"}
//   GET  /chain/{name}         -> calls UPSTREAM_URL's /hello/{name} (traceparent propagated)

#include <string>

#include <mercado/http/client.hpp>
#include <mercado/http/router.hpp>

namespace hello::api {

struct Settings {
  std::string word;          // overrides the language's default greeting word when set
  std::string upstream_url;  // base URL for /chain; empty disables it (503)
};

void register_routes(mercado::http::Router& router, const Settings& settings, mercado::http::Client& client);

}  // namespace hello::api
