#include <mercado/http/openapi.hpp>

#include <mutex>

namespace mercado::http {

namespace bj = boost::json;

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "/orders/{n:int}" -> "/orders/{n}", with the parameters and their schemas.
std::pair<std::string, bj::array> openapi_path(const std::string& tpl) {
  std::string path;
  bj::array params;
  std::size_t i = 0;
  while (i < tpl.size()) {
    if (tpl[i] != '{') {
      path += tpl[i++];
      continue;
    }
    auto close = tpl.find('}', i);
    std::string inner = tpl.substr(i + 1, close - i - 1);
    std::string name = inner, type;
    if (auto colon = inner.find(':'); colon != std::string::npos) {
      name = inner.substr(0, colon);
      type = inner.substr(colon + 1);
    }
    bj::object schema{{"type", type == "int" ? "integer" : "string"}};
    if (type == "uuid") schema["format"] = "uuid";
    params.push_back(bj::object{{"name", name}, {"in", "path"}, {"required", true}, {"schema", std::move(schema)}});
    path += "{" + name + "}";
    i = close + 1;
  }
  return {path, params};
}

bj::object problem_response(std::string description) {
  return bj::object{{"description", std::move(description)},
                    {"content", bj::object{{"application/problem+json",
                                            bj::object{{"schema", bj::object{{"$ref", "#/components/schemas/Problem"}}}}}}}};
}

bool has_path_params(std::string_view path_template) { return path_template.find('{') != std::string_view::npos; }

}  // namespace

ParameterDoc idempotency_key_header() {
  return {.name = "Idempotency-Key",
          .in = "header",
          .description = "1 to 255 characters; the same key again answers as the first request did and has no "
                         "further effect (422 idempotency-key-reused when the request differs)"};
}

bj::object OpenApi::document(const Router& router) const {
  bj::object paths;
  for (const auto& route : router.routes()) {
    auto [path, params] = openapi_path(route.path_template);
    bj::object op;
    op["summary"] = route.summary.empty() ? std::string(to_string(route.method)) + " " + route.path_template : route.summary;
    op["operationId"] = lower(to_string(route.method)) + route.path_template;
    bj::object responses;
    auto it = operations.find({route.method, route.path_template});
    OperationDoc doc = it == operations.end() ? OperationDoc{} : it->second;
    for (const auto& p : doc.parameters) {
      bj::object param{{"name", p.name}, {"in", p.in}, {"required", p.required}, {"schema", bj::object{{"type", "string"}}}};
      if (!p.description.empty()) param["description"] = p.description;
      params.push_back(std::move(param));
    }
    if (!params.empty()) op["parameters"] = params;
    bj::object ok{{"description", "Success"}};
    if (!doc.response.is_null()) {
      ok["content"] = bj::object{{"application/json", bj::object{{"schema", doc.response}}}};
    }
    responses[std::to_string(doc.status)] = std::move(ok);
    if (!doc.request.is_null()) {
      op["requestBody"] = bj::object{{"required", true},
                                     {"content", bj::object{{"application/json", bj::object{{"schema", doc.request}}}}}};
      responses["400"] = problem_response("Invalid input: every bad field is listed in errors");
    }
    if (doc.bearer) {
      op["security"] = bj::array{bj::object{{"bearer", bj::array{}}}};
      responses["401"] = problem_response("Missing or invalid bearer token");
      responses["403"] = problem_response("The token's subject may not access this resource");
    }
    if (doc.not_found && has_path_params(route.path_template)) responses["404"] = problem_response("Not found");
    for (const auto& [status, when] : doc.errors) responses[std::to_string(status)] = problem_response(when);
    responses["default"] = problem_response("Error (RFC 9457 problem details)");
    op["responses"] = std::move(responses);
    auto& entry = paths[path];
    if (!entry.is_object()) entry = bj::object{};
    entry.as_object()[lower(to_string(route.method))] = std::move(op);
  }
  bj::object problem_schema{
      {"type", "object"},
      {"properties", bj::object{{"type", bj::object{{"type", "string"}}},
                                {"title", bj::object{{"type", "string"}}},
                                {"status", bj::object{{"type", "integer"}}},
                                {"detail", bj::object{{"type", "string"}}},
                                {"instance", bj::object{{"type", "string"}}},
                                {"trace_id", bj::object{{"type", "string"}}},
                                {"errors", bj::object{{"type", "array"},
                                                      {"items", bj::object{{"type", "object"},
                                                                           {"properties", bj::object{{"field", bj::object{{"type", "string"}}},
                                                                                                     {"message", bj::object{{"type", "string"}}}}}}}}}}}};
  return bj::object{
      {"openapi", "3.0.3"},
      {"info", bj::object{{"title", title}, {"version", version}, {"description", description}}},
      {"paths", std::move(paths)},
      {"components", bj::object{{"schemas", bj::object{{"Problem", std::move(problem_schema)}}},
                                {"securitySchemes", bj::object{{"bearer", bj::object{{"type", "http"}, {"scheme", "bearer"},
                                                                                      {"bearerFormat", "JWT"}}}}}}}};
}

void add_openapi_route(Server& server, OpenApi api) {
  auto cached = std::make_shared<std::pair<std::once_flag, std::string>>();
  auto shared_api = std::make_shared<OpenApi>(std::move(api));
  Router& router = server.router();
  router.get("/openapi.json", [cached, shared_api, &router](Request&) -> boost::asio::awaitable<Response> {
    std::call_once(cached->first, [&] { cached->second = bj::serialize(shared_api->document(router)); });
    co_return Response::json(200, cached->second);
  }, "This API's OpenAPI 3 document");
}

}  // namespace mercado::http
