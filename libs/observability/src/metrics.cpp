#include <mercado/observability/metrics.hpp>

#include <fmt/format.h>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <variant>

namespace mercado::obs {

namespace detail {

std::size_t this_thread_shard() noexcept {
  static std::atomic<std::size_t> next{0};
  thread_local const std::size_t shard = next.fetch_add(1, std::memory_order_relaxed) % kShards;
  return shard;
}

void atomic_add(std::atomic<double>& target, double delta) noexcept {
  double cur = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(cur, cur + delta, std::memory_order_relaxed)) {
  }
}

}  // namespace detail

std::uint64_t Counter::value() const noexcept {
  std::uint64_t sum = 0;
  for (const auto& c : cells_) sum += c.value.load(std::memory_order_relaxed);
  return sum;
}

Histogram::Histogram(std::span<const double> bounds) : bounds_(bounds.begin(), bounds.end()) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end()) ||
      std::adjacent_find(bounds_.begin(), bounds_.end()) != bounds_.end()) {
    throw std::invalid_argument("histogram bounds must be strictly increasing");
  }
  for (auto& s : shards_) {
    s.buckets = std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1);
  }
}

void Histogram::observe(double v) noexcept {
  auto& s = shards_[detail::this_thread_shard()];
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  s.buckets[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  detail::atomic_add(s.sum, v);
  s.count.fetch_add(1, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot snap;
  snap.cumulative.assign(bounds_.size() + 1, 0);
  for (const auto& s : shards_) {
    for (std::size_t i = 0; i <= bounds_.size(); ++i) {
      snap.cumulative[i] += s.buckets[i].load(std::memory_order_relaxed);
    }
    snap.sum += s.sum.load(std::memory_order_relaxed);
  }
  for (std::size_t i = 1; i < snap.cumulative.size(); ++i) snap.cumulative[i] += snap.cumulative[i - 1];
  // count is the +Inf bucket, so the exposition is consistent even while observations race.
  snap.count = snap.cumulative.back();
  return snap;
}

std::span<const double> default_seconds_buckets() noexcept {
  static const double kBounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};
  return kBounds;
}

std::span<const double> lag_seconds_buckets() noexcept {
  static const double kBounds[] = {0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1,
                                   0.25,  0.5,    1,     2.5,    5,    10,    30,   60,   300};
  return kBounds;
}

namespace {

std::string label_key(std::span<const std::string_view> values) {
  std::string key;
  for (auto v : values) {
    key += std::to_string(v.size());
    key += ':';
    key += v;
  }
  return key;
}

bool valid_metric_name(std::string_view n) {
  if (n.empty()) return false;
  auto ok_first = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':'; };
  if (!ok_first(n[0])) return false;
  return std::all_of(n.begin(), n.end(), [&](char c) {
    return ok_first(c) || std::isdigit(static_cast<unsigned char>(c));
  });
}

bool valid_label_name(std::string_view n) {
  if (n.empty() || n.starts_with("__")) return false;
  if (!(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_')) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

}  // namespace

template <class Child>
Family<Child>::Family(std::string name, std::string help, std::vector<std::string> label_names,
                      std::function<std::unique_ptr<Child>()> make)
    : name_(std::move(name)),
      help_(std::move(help)),
      label_names_(std::move(label_names)),
      make_(std::move(make)) {}

template <class Child>
Child& Family<Child>::with(std::span<const std::string_view> values) {
  if (values.size() != label_names_.size()) {
    throw std::invalid_argument(fmt::format("metric {} takes {} label values, got {}", name_,
                                            label_names_.size(), values.size()));
  }
  std::string key = label_key(values);
  {
    std::shared_lock lock(mutex_);
    if (auto it = index_.find(key); it != index_.end()) return *entries_[it->second].child;
  }
  std::unique_lock lock(mutex_);
  if (auto it = index_.find(key); it != index_.end()) return *entries_[it->second].child;
  Entry e;
  e.values.assign(values.begin(), values.end());
  e.child = make_();
  entries_.push_back(std::move(e));
  index_.emplace(std::move(key), entries_.size() - 1);
  return *entries_.back().child;
}

template <class Child>
void Family<Child>::for_each(
    const std::function<void(std::span<const std::string>, const Child&)>& f) const {
  std::shared_lock lock(mutex_);
  for (const auto& e : entries_) f(e.values, *e.child);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

struct Registry::Impl {
  struct Callback {
    std::string name, help, type;
    std::function<double()> read;
  };
  using Any = std::variant<std::unique_ptr<CounterFamily>, std::unique_ptr<GaugeFamily>,
                           std::unique_ptr<HistogramFamily>, std::unique_ptr<Callback>>;
  mutable std::mutex mutex;
  std::map<std::string, Any, std::less<>> families;

  template <class F>
  F& find_or_add(std::string name, std::string help, std::vector<std::string> labels,
                 std::function<std::unique_ptr<typename std::remove_reference_t<
                     decltype(std::declval<F&>().get())>>()> make) {
    if (!valid_metric_name(name)) throw std::invalid_argument("invalid metric name: " + name);
    for (const auto& l : labels) {
      if (!valid_label_name(l)) throw std::invalid_argument("invalid label name: " + l);
    }
    std::lock_guard lock(mutex);
    auto it = families.find(name);
    if (it != families.end()) {
      auto* existing = std::get_if<std::unique_ptr<F>>(&it->second);
      if (existing == nullptr || (*existing)->label_names() != labels) {
        throw std::invalid_argument("metric " + name + " re-registered with another type or labels");
      }
      return **existing;
    }
    auto fam = std::make_unique<F>(name, std::move(help), std::move(labels), std::move(make));
    F& ref = *fam;
    families.emplace(std::move(name), std::move(fam));
    return ref;
  }
};

Registry::Registry() : impl_(std::make_unique<Impl>()) {}
Registry::~Registry() = default;

CounterFamily& Registry::counter(std::string name, std::string help,
                                 std::vector<std::string> label_names) {
  return impl_->find_or_add<CounterFamily>(std::move(name), std::move(help), std::move(label_names),
                                           [] { return std::make_unique<Counter>(); });
}

GaugeFamily& Registry::gauge(std::string name, std::string help,
                             std::vector<std::string> label_names) {
  return impl_->find_or_add<GaugeFamily>(std::move(name), std::move(help), std::move(label_names),
                                         [] { return std::make_unique<Gauge>(); });
}

HistogramFamily& Registry::histogram(std::string name, std::string help,
                                     std::vector<std::string> label_names,
                                     std::span<const double> bounds) {
  std::vector<double> b(bounds.begin(), bounds.end());
  Histogram probe(b);  // validates the bounds now rather than at first use
  return impl_->find_or_add<HistogramFamily>(
      std::move(name), std::move(help), std::move(label_names),
      [b = std::move(b)] { return std::make_unique<Histogram>(b); });
}

void Registry::gauge_callback(std::string name, std::string help, std::function<double()> read) {
  add_callback(std::move(name), std::move(help), "gauge", std::move(read));
}

void Registry::counter_callback(std::string name, std::string help, std::function<double()> read) {
  add_callback(std::move(name), std::move(help), "counter", std::move(read));
}

void Registry::add_callback(std::string name, std::string help, std::string type,
                            std::function<double()> read) {
  if (!valid_metric_name(name)) throw std::invalid_argument("invalid metric name: " + name);
  std::lock_guard lock(impl_->mutex);
  if (impl_->families.contains(name)) {
    throw std::invalid_argument("metric " + name + " registered twice");
  }
  auto cb = std::make_unique<Impl::Callback>(
      Impl::Callback{name, std::move(help), std::move(type), std::move(read)});
  impl_->families.emplace(std::move(name), std::move(cb));
}

namespace {

void append_escaped(std::string& out, std::string_view v, bool is_help) {
  for (char c : v) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '"':
        if (is_help) {
          out += '"';
        } else {
          out += "\\\"";
        }
        break;
      default: out += c;
    }
  }
}

void append_number(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else if (v == std::floor(v) && std::fabs(v) < 1e15) {
    out += std::to_string(static_cast<long long>(v));
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

void append_labels(std::string& out, const std::vector<std::string>& names,
                   std::span<const std::string> values, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out += '{';
  bool first = true;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (!first) out += ',';
    first = false;
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i], false);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!first) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

void append_header(std::string& out, const std::string& name, const std::string& help,
                   std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  append_escaped(out, help, true);
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

}  // namespace

std::string Registry::expose() const {
  std::string out;
  out.reserve(4096);
  std::lock_guard lock(impl_->mutex);
  for (const auto& [name, any] : impl_->families) {
    if (auto* c = std::get_if<std::unique_ptr<CounterFamily>>(&any)) {
      const auto& fam = **c;
      append_header(out, name, fam.help(), "counter");
      fam.for_each([&](std::span<const std::string> values, const Counter& child) {
        out += name;
        append_labels(out, fam.label_names(), values);
        out += ' ';
        out += std::to_string(child.value());
        out += '\n';
      });
    } else if (auto* g = std::get_if<std::unique_ptr<GaugeFamily>>(&any)) {
      const auto& fam = **g;
      append_header(out, name, fam.help(), "gauge");
      fam.for_each([&](std::span<const std::string> values, const Gauge& child) {
        out += name;
        append_labels(out, fam.label_names(), values);
        out += ' ';
        append_number(out, child.value());
        out += '\n';
      });
    } else if (auto* h = std::get_if<std::unique_ptr<HistogramFamily>>(&any)) {
      const auto& fam = **h;
      append_header(out, name, fam.help(), "histogram");
      fam.for_each([&](std::span<const std::string> values, const Histogram& child) {
        auto snap = child.snapshot();
        auto bounds = child.bounds();
        std::string le;
        for (std::size_t i = 0; i <= bounds.size(); ++i) {
          le.clear();
          if (i < bounds.size()) {
            append_number(le, bounds[i]);
          } else {
            le = "+Inf";
          }
          out += name;
          out += "_bucket";
          append_labels(out, fam.label_names(), values, "le", le);
          out += ' ';
          out += std::to_string(snap.cumulative[i]);
          out += '\n';
        }
        out += name;
        out += "_sum";
        append_labels(out, fam.label_names(), values);
        out += ' ';
        append_number(out, snap.sum);
        out += '\n';
        out += name;
        out += "_count";
        append_labels(out, fam.label_names(), values);
        out += ' ';
        out += std::to_string(snap.count);
        out += '\n';
      });
    } else if (auto* cb = std::get_if<std::unique_ptr<Impl::Callback>>(&any)) {
      append_header(out, name, (*cb)->help, (*cb)->type);
      out += name;
      out += ' ';
      append_number(out, (*cb)->read());
      out += '\n';
    }
  }
  return out;
}

Registry& Registry::global() {
  static Registry* registry = new Registry();  // never destroyed: used until exit
  return *registry;
}

namespace {

double read_status_kb(std::string_view key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.starts_with(key)) {
      return std::stod(line.substr(key.size())) * 1024.0;
    }
  }
  return 0;
}

double process_start_time() {
  std::ifstream stat("/proc/self/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = content.rfind(')');
  std::istringstream rest(content.substr(close + 2));
  std::string field;
  // After the command: state(3) ... starttime is field 22, i.e. the 20th after ')'.
  for (int i = 3; i < 22 && rest >> field; ++i) {
  }
  double ticks = std::stod(field);
  std::ifstream uptime_f("/proc/uptime");
  double uptime = 0;
  uptime_f >> uptime;
  double boot = static_cast<double>(std::time(nullptr)) - uptime;
  return boot + ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double process_cpu_seconds() {
  std::ifstream stat("/proc/self/stat");
  std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = content.rfind(')');
  std::istringstream rest(content.substr(close + 2));
  std::string field;
  double utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stod(field);
    if (i == 15) stime = std::stod(field);
  }
  return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace

void register_process_metrics(Registry& registry) {
  registry.gauge_callback("process_resident_memory_bytes", "Resident memory size in bytes.",
                          [] { return read_status_kb("VmRSS:"); });
  registry.gauge_callback("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                          [] { return read_status_kb("VmSize:"); });
  registry.gauge_callback("process_open_fds", "Number of open file descriptors.", [] {
    double n = 0;
    if (auto* d = ::opendir("/proc/self/fd")) {
      while (::readdir(d) != nullptr) ++n;
      ::closedir(d);
      n -= 3;  // ".", ".." and the directory's own descriptor
    }
    return n;
  });
  const double start = process_start_time();
  registry.gauge_callback("process_start_time_seconds",
                          "Start time of the process since unix epoch in seconds.",
                          [start] { return start; });
  registry.counter_callback("process_cpu_seconds_total",
                            "Total user and system CPU time spent in seconds.",
                            [] { return process_cpu_seconds(); });
}

}  // namespace mercado::obs
