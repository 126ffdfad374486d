#include <mercado/http/router.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <stdexcept>

namespace mercado::http {

namespace {

enum class ParamType { integer = 0, uuid = 1, text = 2 };

bool is_integer(std::string_view s) noexcept {
  if (s.starts_with('-')) s.remove_prefix(1);
  if (s.empty() || s.size() > 18) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_uuid(std::string_view s) noexcept {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

bool matches(ParamType t, std::string_view seg) noexcept {
  if (seg.empty()) return false;
  switch (t) {
    case ParamType::integer: return is_integer(seg);
    case ParamType::uuid: return is_uuid(seg);
    case ParamType::text: return true;
  }
  return false;
}

bool valid_name(std::string_view n) {
  if (n.empty() || !(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
  return std::all_of(n.begin(), n.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

// Splits "a/b/c" into "a" and "b/c"; "a" into "a" and nullopt.
std::pair<std::string_view, std::optional<std::string_view>> split(std::string_view rest) {
  auto slash = rest.find('/');
  if (slash == std::string_view::npos) return {rest, std::nullopt};
  return {rest.substr(0, slash), rest.substr(slash + 1)};
}

}  // namespace

struct Router::Node {
  struct ParamEdge {
    std::string name;
    ParamType type;
    std::unique_ptr<Node> node;
  };
  std::vector<std::pair<std::string, std::unique_ptr<Node>>> literals;
  std::vector<ParamEdge> params;  // ordered by ParamType: integer, uuid, text
  std::optional<std::string> rest_name;
  std::unique_ptr<Node> rest;
  std::array<Route*, kMethodCount> handlers{};
  std::string path_template;
  std::string allow;

  bool any() const noexcept {
    return std::any_of(handlers.begin(), handlers.end(), [](Route* r) { return r != nullptr; });
  }
  void rebuild_allow() {
    allow.clear();
    auto add = [&](std::string_view m) {
      if (!allow.empty()) allow += ", ";
      allow += m;
    };
    for (std::size_t i = 0; i < kMethodCount; ++i) {
      auto m = static_cast<Method>(i);
      if (handlers[i] != nullptr) add(to_string(m));
      if (m == Method::get && handlers[i] != nullptr &&
          handlers[static_cast<std::size_t>(Method::head)] == nullptr) {
        add("HEAD");
      }
    }
    if (handlers[static_cast<std::size_t>(Method::options)] == nullptr) add("OPTIONS");
  }
};

Router::Router() : root_(std::make_unique<Node>()) {}
Router::~Router() = default;

Router& Router::add(Method method, std::string_view tpl, Handler handler, std::string summary) {
  if (!tpl.starts_with('/')) {
    throw std::invalid_argument("route template must start with '/': " + std::string(tpl));
  }
  if (method == Method::other) throw std::invalid_argument("route needs a standard method");
  Node* node = root_.get();
  std::size_t param_count = 0;
  if (tpl != "/") {
    std::optional<std::string_view> rest = tpl.substr(1);
    while (rest) {
      auto [seg, next] = split(*rest);
      rest = next;
      if (seg.starts_with('{')) {
        if (!seg.ends_with('}')) {
          throw std::invalid_argument("a parameter must be a whole segment: " + std::string(tpl));
        }
        std::string_view inner = seg.substr(1, seg.size() - 2);
        std::string_view name = inner, type = "";
        if (auto colon = inner.find(':'); colon != std::string_view::npos) {
          name = inner.substr(0, colon);
          type = inner.substr(colon + 1);
        }
        if (!valid_name(name)) {
          throw std::invalid_argument("bad parameter name in " + std::string(tpl));
        }
        if (++param_count > PathParams::kMax) {
          throw std::invalid_argument("too many parameters in " + std::string(tpl));
        }
        if (type == "path") {
          if (rest) throw std::invalid_argument("{" + std::string(name) + ":path} must be last");
          if (node->rest_name && *node->rest_name != name) {
            throw std::invalid_argument("conflicting rest parameter names in " + std::string(tpl));
          }
          node->rest_name = std::string(name);
          if (!node->rest) node->rest = std::make_unique<Node>();
          node = node->rest.get();
          continue;
        }
        ParamType pt;
        if (type.empty()) {
          pt = ParamType::text;
        } else if (type == "int") {
          pt = ParamType::integer;
        } else if (type == "uuid") {
          pt = ParamType::uuid;
        } else {
          throw std::invalid_argument("unknown parameter type '" + std::string(type) + "' in " +
                                      std::string(tpl));
        }
        auto it = std::find_if(node->params.begin(), node->params.end(),
                               [&](const Node::ParamEdge& e) { return e.type == pt; });
        if (it != node->params.end()) {
          if (it->name != name) {
            throw std::invalid_argument("parameter {" + std::string(name) + "} conflicts with {" +
                                        it->name + "} in " + std::string(tpl));
          }
          node = it->node.get();
        } else {
          node->params.push_back({std::string(name), pt, std::make_unique<Node>()});
          Node* created = node->params.back().node.get();
          std::sort(node->params.begin(), node->params.end(),
                    [](const auto& a, const auto& b) { return a.type < b.type; });
          node = created;
        }
      } else {
        if (seg.find_first_of("{}") != std::string_view::npos) {
          throw std::invalid_argument("a parameter must be a whole segment: " + std::string(tpl));
        }
        if (seg.empty() && rest) {
          throw std::invalid_argument("empty segment in " + std::string(tpl));
        }
        auto it = std::find_if(node->literals.begin(), node->literals.end(),
                               [&](const auto& l) { return l.first == seg; });
        if (it == node->literals.end()) {
          node->literals.emplace_back(std::string(seg), std::make_unique<Node>());
          node = node->literals.back().second.get();
        } else {
          node = it->second.get();
        }
      }
    }
  }
  auto& slot = node->handlers[static_cast<std::size_t>(method)];
  if (slot != nullptr) {
    throw std::invalid_argument("duplicate route " + std::string(to_string(method)) + " " +
                                std::string(tpl));
  }
  if (!node->path_template.empty() && node->path_template != tpl) {
    throw std::invalid_argument("route " + std::string(tpl) + " is ambiguous with " +
                                node->path_template);
  }
  node->path_template = std::string(tpl);
  routes_.push_back(std::make_unique<Route>(
      Route{method, std::string(tpl), std::move(handler), std::move(summary), nullptr}));
  slot = routes_.back().get();
  node->rebuild_allow();
  return *this;
}

namespace {

struct FindState {
  Method method;
  const void* fallback = nullptr;  // first node matching the path, any method
  PathParams fallback_params;
};

}  // namespace

Router::Match Router::match(Method method, std::string_view path) const {
  Match m;
  if (!path.starts_with('/')) return m;
  FindState st{method};
  PathParams params;

  auto serves = [&](const Node* n) {
    if (n->handlers[static_cast<std::size_t>(method)] != nullptr) return true;
    if (method == Method::head && n->handlers[static_cast<std::size_t>(Method::get)] != nullptr) return true;
    if (method == Method::options && n->any()) return true;
    return false;
  };

  // Depth-first with backtracking; returns the node that serves `method`.
  auto find = [&](auto& self, const Node* n, std::optional<std::string_view> rest) -> const Node* {
    if (!rest) {
      if (serves(n)) return n;
      if (n->any() && st.fallback == nullptr) {
        st.fallback = n;
        st.fallback_params = params;
      }
      return nullptr;
    }
    auto [seg, next] = split(*rest);
    for (const auto& [lit, child] : n->literals) {
      if (lit == seg) {
        if (const Node* r = self(self, child.get(), next)) return r;
        break;
      }
    }
    for (const auto& e : n->params) {
      if (!matches(e.type, seg)) continue;
      params.items[params.size++] = {e.name, seg};
      if (const Node* r = self(self, e.node.get(), next)) return r;
      --params.size;
    }
    if (n->rest && !rest->empty()) {
      params.items[params.size++] = {*n->rest_name, *rest};
      const Node* r = self(self, n->rest.get(), std::nullopt);
      if (r != nullptr) return r;
      --params.size;
    }
    return nullptr;
  };

  std::optional<std::string_view> start;
  if (path != "/") start = path.substr(1);
  const Node* node = find(find, root_.get(), start);
  if (node != nullptr) {
    m.path_template = node->path_template;
    m.params = params;
    auto idx = static_cast<std::size_t>(method);
    if (node->handlers[idx] != nullptr) {
      m.kind = Match::Kind::found;
      m.route = node->handlers[idx];
    } else if (method == Method::head) {
      m.kind = Match::Kind::found;
      m.route = node->handlers[static_cast<std::size_t>(Method::get)];
      m.head_via_get = true;
    } else {
      m.kind = Match::Kind::found;
      m.options_auto = true;
      m.allow = node->allow;
    }
    return m;
  }
  if (st.fallback != nullptr) {
    const auto* n = static_cast<const Node*>(st.fallback);
    m.kind = Match::Kind::method_not_allowed;
    m.path_template = n->path_template;
    m.allow = n->allow;
    m.params = st.fallback_params;
  }
  return m;
}

void Router::apply(std::span<const Middleware> middleware) {
  for (auto& r : routes_) {
    for (auto it = middleware.rbegin(); it != middleware.rend(); ++it) {
      r->handler = [mw = *it, inner = std::move(r->handler)](Request& req) {
        return mw(req, inner);
      };
    }
  }
}

std::vector<RouteInfo> Router::routes() const {
  std::vector<RouteInfo> out;
  for (const auto& r : routes_) out.push_back({r->method, r->path_template, r->summary});
  return out;
}

std::vector<Router::Route*> Router::mutable_routes() {
  std::vector<Route*> out;
  for (auto& r : routes_) out.push_back(r.get());
  return out;
}

}  // namespace mercado::http
