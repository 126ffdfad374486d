#include <mercado/http/readiness.hpp>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <mercado/http/json_body.hpp>
#include <mercado/http/service_routes.hpp>
#include <mercado/http/status.hpp>

namespace mercado::http {

namespace json = boost::json;

void Readiness::add(std::string name, Check check) { checks_.emplace_back(std::move(name), std::move(check)); }

void Readiness::add_sync(std::string name, SyncCheck check) {
  checks_.emplace_back(std::move(name), [check = std::move(check)]() -> boost::asio::awaitable<Result<void>> {
    co_return check();
  });
}

boost::asio::awaitable<std::vector<Readiness::Outcome>> Readiness::run() const {
  std::vector<Outcome> out;
  out.reserve(checks_.size());
  for (const auto& [name, check] : checks_) {
    Outcome o{name, true, {}};
    try {
      auto r = co_await check();
      if (!r) {
        o.ok = false;
        o.detail = r.error().message;
      }
    } catch (const std::exception& e) {
      o.ok = false;
      o.detail = e.what();
    }
    out.push_back(std::move(o));
  }
  co_return out;
}

Result<void> check_json_content_type(const Request& req) {
  auto ct = req.header("Content-Type");
  if (!ct) return {};
  std::string_view v = *ct;
  auto semi = v.find(';');
  std::string_view media = v.substr(0, semi);
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (iequals(media, "application/json") || (media.size() > 5 && iequals(media.substr(media.size() - 5), "+json"))) {
    return {};
  }
  Error e(Errc::unsupported_media_type, "Content-Type must be application/json, not " + std::string(media));
  e.type = "unsupported-media-type";
  return fail(std::move(e));
}

void add_service_routes(Server& server, ServiceIdentity identity, std::shared_ptr<const Readiness> readiness,
                        obs::Registry& registry) {
  auto& r = server.router();
  r.get("/health", [identity](Request&) -> boost::asio::awaitable<Response> {
    json::object o{{"status", "UP"}, {"service", identity.service}, {"instance", identity.instance},
                   {"version", identity.version}};
    co_return Response::json(200, json::serialize(o));
  }, "Liveness");

  r.get("/ready", [&server, readiness](Request& req) -> boost::asio::awaitable<Response> {
    std::vector<Readiness::Outcome> outcomes;
    if (readiness) outcomes = co_await readiness->run();
    if (server.draining()) outcomes.push_back({"shutdown", false, "the server is shutting down"});
    json::array checks;
    std::string failing;
    for (const auto& o : outcomes) {
      json::object c{{"name", o.name}, {"status", o.ok ? "ok" : "failing"}};
      if (!o.ok) {
        c["detail"] = o.detail;
        if (!failing.empty()) failing += ", ";
        failing += o.name + " (" + o.detail + ")";
      }
      checks.push_back(std::move(c));
    }
    if (failing.empty()) {
      co_return Response::json(200, json::serialize(json::object{{"status", "READY"}, {"checks", std::move(checks)}}));
    }
    json::object p{{"type", problem_type("not-ready")},
                   {"title", reason_phrase(503)},
                   {"status", 503},
                   {"detail", "not ready: " + failing},
                   {"instance", std::string(req.path())},
                   {"checks", std::move(checks)}};
    co_return Response(503, kProblemJson, json::serialize(p));
  }, "Readiness");

  r.get("/metrics", [&registry](Request&) -> boost::asio::awaitable<Response> {
    co_return Response(200, obs::kPrometheusContentType, registry.expose());
  }, "Prometheus metrics");
}

}  // namespace mercado::http
