#include "api/routes.hpp"

#include <boost/json.hpp>

#include <mercado/http/json_body.hpp>
#include <mercado/http/problem.hpp>
#include <mercado/observability/log.hpp>

#include "domain/greeting.hpp"

namespace hello::api {

namespace http = mercado::http;
namespace json = boost::json;
using boost::asio::awaitable;

namespace {

struct GreetingView {
  std::string message;
};
BOOST_DESCRIBE_STRUCT(GreetingView, (), (message))

struct GreetingRequest {
  std::string name;
  std::optional<std::string> language;
};
BOOST_DESCRIBE_STRUCT(GreetingRequest, (), (name, language))

void validate(const GreetingRequest& g, mercado::json::Validator& v) {
  v.check(!g.language || domain::parse_language(*g.language).has_value(), "language", "must be \"en\" or \"es\"");
}

}  // namespace

void register_routes(http::Router& router, const Settings& settings, http::Client& client) {
  router.get("/hello/{name}", [settings](http::Request& req) -> awaitable<http::Response> {
    auto message = domain::greet(req.param("name").value_or(""), domain::Language::en, settings.word);
    if (!message) co_return http::problem(req, message.error());
    co_return http::json_response(200, GreetingView{std::move(*message)});
  }, "Greets {name}");

  router.post("/greetings", [settings](http::Request& req) -> awaitable<http::Response> {
    auto in = http::read_json<GreetingRequest>(req);
    if (!in) co_return http::problem(req, in.error());
    auto lang = domain::parse_language(in->language.value_or("en")).value_or(domain::Language::en);
    auto message = domain::greet(in->name, lang, settings.word);
    if (!message) co_return http::problem(req, message.error());
    mercado::log::info(req.trace(), "greeting created", {{"language", in->language.value_or("en")}});
    co_return http::json_response(201, json::value{{"message", *message}, {"language", in->language.value_or("en")}});
  }, "Creates a greeting");

  router.get("/chain/{name}", [settings, &client](http::Request& req) -> awaitable<http::Response> {
    if (settings.upstream_url.empty()) {
      co_return http::problem(req, mercado::Error(mercado::Errc::unavailable, "no UPSTREAM_URL configured"));
    }
    std::string url = settings.upstream_url + "/hello/" + std::string(req.raw_param("name").value_or(""));
    mercado::log::info(req.trace(), "calling upstream", {{"upstream", settings.upstream_url}});
    auto res = http::expect_2xx(co_await client.get(std::move(url), &req.trace()));
    if (!res) {
      mercado::log::warn(req.trace(), "upstream failed", {{"error", res.error().message}});
      co_return http::problem(req, 502, "upstream failed: " + res.error().message);
    }
    auto body = json::parse(res->body).as_object();
    co_return http::json_response(200, json::value{{"message", body["message"]}, {"upstream", settings.upstream_url}});
  }, "Asks the upstream service to greet {name}");
}

}  // namespace hello::api
