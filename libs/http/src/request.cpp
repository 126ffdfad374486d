#include <mercado/http/request.hpp>

#include <boost/url/pct_string_view.hpp>

#include <charconv>

#include <mercado/http/headers.hpp>

namespace mercado::http {

namespace urls = boost::urls;

std::optional<std::string_view> PathParams::find(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < size; ++i) {
    if (items[i].first == name) return items[i].second;
  }
  return std::nullopt;
}

Request Request::make(Method method, std::string_view target, const Headers& headers,
                      std::string body) {
  Request r;
  r.method_ = method;
  auto add = [&](std::string_view piece) {
    r.offsets_.push_back(static_cast<std::uint32_t>(r.head_.size()));
    r.head_ += piece;
  };
  add(to_string(method));
  add(target);
  for (const auto& [n, v] : headers) {
    add(n);
    add(v);
  }
  r.offsets_.push_back(static_cast<std::uint32_t>(r.head_.size()));
  r.body_ = std::move(body);
  r.index_head();
  return r;
}

Request::Request(Request&& other) noexcept { *this = std::move(other); }

Request& Request::operator=(Request&& other) noexcept {
  if (this == &other) return *this;
  const char* old_base = other.head_.data();
  const std::size_t old_size = other.head_.size();
  head_ = std::move(other.head_);
  offsets_ = std::move(other.offsets_);
  body_ = std::move(other.body_);
  method_ = other.method_;
  method_name_ = other.method_name_;
  target_ = other.target_;
  path_ = other.path_;
  query_ = other.query_;
  headers_ = std::move(other.headers_);
  version_ = other.version_;
  keep_alive_ = other.keep_alive_;
  route_ = other.route_;
  params_ = other.params_;
  deadline_ = other.deadline_;
  span_ = std::move(other.span_);
  remote_address_ = std::move(other.remote_address_);
  locals_ = std::move(other.locals_);
  rebase(old_base, old_size);
  other.reset();
  return *this;
}

void Request::rebase(const char* old_base, std::size_t old_size) noexcept {
  const char* base = head_.data();
  if (base == old_base) return;
  auto fix = [&](std::string_view& v) {
    if (v.data() >= old_base && v.data() + v.size() <= old_base + old_size && v.data() != nullptr) {
      v = std::string_view(base + (v.data() - old_base), v.size());
    }
  };
  fix(method_name_);
  fix(target_);
  fix(path_);
  fix(query_);
  for (auto& h : headers_) {
    fix(h.name);
    fix(h.value);
  }
  for (std::size_t i = 0; i < params_.size; ++i) fix(params_.items[i].second);
}

void Request::reset(bool keep_remote_address) noexcept {
  head_.clear();
  offsets_.clear();
  body_.clear();
  headers_.clear();
  method_ = Method::get;
  method_name_ = {};
  target_ = path_ = query_ = route_ = {};
  version_ = 11;
  keep_alive_ = true;
  params_.size = 0;
  deadline_.reset();
  locals_.clear();
  if (!keep_remote_address) remote_address_.clear();
}

void Request::index_head() {
  // offsets_: [method, target, name0, value0, name1, value1, ..., end]
  auto piece = [&](std::size_t i) {
    return std::string_view(head_).substr(offsets_[i], offsets_[i + 1] - offsets_[i]);
  };
  method_name_ = piece(0);
  target_ = piece(1);
  headers_.clear();
  for (std::size_t i = 2; i + 2 < offsets_.size(); i += 2) {
    headers_.push_back({piece(i), piece(i + 1)});
  }
  std::string_view t = target_;
  if (!t.starts_with('/')) {
    // absolute-form (http://host/path?q): route on the path part.
    if (auto scheme = t.find("://"); scheme != std::string_view::npos) {
      auto slash = t.find('/', scheme + 3);
      auto qmark = t.find('?', scheme + 3);
      if (slash == std::string_view::npos || (qmark != std::string_view::npos && qmark < slash)) {
        t = qmark == std::string_view::npos ? std::string_view("/") : t.substr(qmark);
        if (t.starts_with('?')) {
          path_ = "/";
          query_ = t.substr(1);
          return;
        }
      } else {
        t = t.substr(slash);
      }
    }
  }
  if (auto q = t.find('?'); q != std::string_view::npos) {
    path_ = t.substr(0, q);
    query_ = t.substr(q + 1);
  } else {
    path_ = t;
    query_ = {};
  }
  if (auto hash = query_.find('#'); hash != std::string_view::npos) query_ = query_.substr(0, hash);
}

namespace {

// Splits an application/x-www-form-urlencoded query into decoded pairs ('+' is a space).
// Returns false at the first piece that is not valid percent-encoding.
template <class F>
bool for_each_param(std::string_view q, F&& f) {
  urls::encoding_opts opts(true, false, false);
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view piece = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (piece.empty()) continue;
    auto eq = piece.find('=');
    auto key = urls::make_pct_string_view(piece.substr(0, eq));
    auto value = urls::make_pct_string_view(eq == std::string_view::npos ? std::string_view() : piece.substr(eq + 1));
    if (!key || !value) return false;
    if (!f(key->decode(opts), value->decode(opts))) return true;
  }
  return true;
}

}  // namespace

bool Request::query_valid() const noexcept {
  try {
    return for_each_param(query_, [](std::string&&, std::string&&) { return true; });
  } catch (const std::bad_alloc&) {
    return false;
  }
}

std::vector<std::pair<std::string, std::string>> Request::query_params() const {
  std::vector<std::pair<std::string, std::string>> out;
  bool ok = for_each_param(query_, [&](std::string&& k, std::string&& v) {
    out.emplace_back(std::move(k), std::move(v));
    return true;
  });
  if (!ok) out.clear();
  return out;
}

std::optional<std::string> Request::query(std::string_view key) const {
  std::optional<std::string> found;
  bool ok = for_each_param(query_, [&](std::string&& k, std::string&& v) {
    if (k != key) return true;
    found = std::move(v);
    return false;
  });
  if (!ok) return std::nullopt;
  return found;
}

std::optional<std::string_view> Request::header(std::string_view name) const noexcept {
  for (const auto& h : headers_) {
    if (iequals(h.name, name)) return h.value;
  }
  return std::nullopt;
}

std::optional<std::string> Request::param(std::string_view name) const {
  auto raw = params_.find(name);
  if (!raw) return std::nullopt;
  if (raw->find('%') == std::string_view::npos) return std::string(*raw);
  auto pct = urls::make_pct_string_view(*raw);
  if (!pct) return std::nullopt;
  return pct->decode();
}

Result<std::int64_t> Request::param_int(std::string_view name) const {
  auto raw = params_.find(name);
  if (!raw) return fail(Errc::invalid_argument, "missing path parameter '" + std::string(name) + "'");
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(raw->data(), raw->data() + raw->size(), v);
  if (ec != std::errc() || ptr != raw->data() + raw->size()) {
    Error e(Errc::invalid_argument, "path parameter '" + std::string(name) + "' must be an integer");
    e.fields.push_back({std::string(name), "must be an integer"});
    return fail(std::move(e));
  }
  return v;
}

void Request::set_local(std::string_view key, std::string value) {
  for (auto& [k, v] : locals_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  locals_.emplace_back(std::string(key), std::move(value));
}

std::optional<std::string_view> Request::local(std::string_view key) const noexcept {
  for (const auto& [k, v] : locals_) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

}  // namespace mercado::http
