#pragma once
// Metrics registry with Prometheus text exposition (format 0.0.4).
//
// Families (counter, gauge, histogram) are registered once by name; a child is looked up
// by its label values and has a stable address for the registry's lifetime, so hot paths
// look a child up once and keep the reference. Updating a child takes no lock: values are
// atomics, sharded per thread so that concurrent increments do not contend on one cache
// line. Lookups by labels take a shared (reader) lock of that family only.
//
// Thread-safety: everything here may be called from any thread.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mercado::obs {

namespace detail {
inline constexpr std::size_t kShards = 4;
// The shard the calling thread writes to.
std::size_t this_thread_shard() noexcept;

struct alignas(64) CounterCell {
  std::atomic<std::uint64_t> value{0};
};
struct alignas(64) DoubleCell {
  std::atomic<double> value{0.0};
};
void atomic_add(std::atomic<double>& target, double delta) noexcept;
}  // namespace detail

// A monotonically increasing integer count.
class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept {
    cells_[detail::this_thread_shard()].value.fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t value() const noexcept;

 private:
  std::array<detail::CounterCell, detail::kShards> cells_{};
};

// A value that goes up and down.
class Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void inc(double d = 1) noexcept { detail::atomic_add(value_, d); }
  void dec(double d = 1) noexcept { detail::atomic_add(value_, -d); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  alignas(64) std::atomic<double> value_{0.0};
};

// Observations counted into fixed buckets (upper bounds, ascending), plus sum and count.
class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds);
  void observe(double v) noexcept;

  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;
  std::span<const double> bounds() const noexcept { return bounds_; }

 private:
  struct alignas(64) Shard {
    std::unique_ptr<std::atomic<std::uint64_t>[]> buckets;  // bounds + 1 (+Inf)
    std::atomic<double> sum{0.0};
    std::atomic<std::uint64_t> count{0};
  };
  std::vector<double> bounds_;
  std::array<Shard, detail::kShards> shards_;
};

// The default latency buckets in seconds (Prometheus client defaults, finer at the low end).
std::span<const double> default_seconds_buckets() noexcept;
// For end-to-end lags (an event from its creation to its publication or delivery): finer
// between 1 and 50 ms, where a healthy pipeline's tail lies, and up to five minutes.
std::span<const double> lag_seconds_buckets() noexcept;

enum class MetricType { counter, gauge, histogram };

// A named metric with label names; children are created on first use of a label set.
template <class Child>
class Family {
 public:
  // Finds or creates the child for these label values (as many as label names).
  // Throws std::invalid_argument on a wrong number of values (a programmer error).
  Child& with(std::initializer_list<std::string_view> values) {
    return with(std::span<const std::string_view>(values.begin(), values.size()));
  }
  Child& with(std::span<const std::string_view> values);
  // The child without labels, for families declared with none.
  Child& get() { return with({}); }

  const std::string& name() const noexcept { return name_; }
  const std::string& help() const noexcept { return help_; }
  const std::vector<std::string>& label_names() const noexcept { return label_names_; }

  // Visits children as (label values, child), in creation order. For exposition and tests.
  void for_each(const std::function<void(std::span<const std::string>, const Child&)>& f) const;

  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::function<std::unique_ptr<Child>()> make);

 private:
  struct Entry {
    std::vector<std::string> values;
    std::unique_ptr<Child> child;
  };
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
  std::function<std::unique_ptr<Child>()> make_;
  mutable std::shared_mutex mutex_;
  std::unordered_map<std::string, std::size_t> index_;
  std::vector<Entry> entries_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// Owns metric families and renders them. Registering a name twice with the same type and
// labels returns the existing family; with a different type or labels it throws
// std::invalid_argument (a programmer error caught at start-up).
class Registry {
 public:
  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  CounterFamily& counter(std::string name, std::string help,
                         std::vector<std::string> label_names = {});
  GaugeFamily& gauge(std::string name, std::string help, std::vector<std::string> label_names = {});
  HistogramFamily& histogram(std::string name, std::string help,
                             std::vector<std::string> label_names = {},
                             std::span<const double> bounds = default_seconds_buckets());
  // A gauge computed at scrape time (e.g. resident memory). `read` must be thread-safe.
  void gauge_callback(std::string name, std::string help, std::function<double()> read);
  // A counter read at scrape time from a monotonic source (e.g. CPU seconds).
  void counter_callback(std::string name, std::string help, std::function<double()> read);

  // Prometheus text format 0.0.4, families sorted by name.
  std::string expose() const;

  // The process-wide registry that services and libraries use unless given another.
  static Registry& global();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  void add_callback(std::string name, std::string help, std::string type,
                    std::function<double()> read);
};

// Content-Type of expose()'s output.
inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// Adds process_resident_memory_bytes, process_virtual_memory_bytes, process_open_fds,
// process_start_time_seconds and process_cpu_seconds_total (read from /proc at scrape).
void register_process_metrics(Registry& registry);

}  // namespace mercado::obs
