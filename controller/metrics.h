#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace millrace::controller {

// A tiny Prometheus registry. Families are created once (usually at start-up) and hand out
// children by label values; a child lives as long as the registry, so callers look it up once
// and keep the reference. Increments and observations on a child are lock-free atomics; only
// creating a child or exposing takes a lock. Expose() renders text exposition format 0.0.4.

// The value behind a counter (which only goes up) or a gauge.
class MetricValue {
 public:
  double Value() const { return value_.load(std::memory_order_relaxed); }

 protected:
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  std::atomic<double> value_{0.0};
};

class Counter : public MetricValue {
 public:
  void Inc(double v = 1.0) { Add(v); }
};

class Gauge : public MetricValue {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Inc(double v = 1.0) { Add(v); }
  void Dec(double v = 1.0) { Add(-v); }
};

// Fixed upper bounds (le, inclusive), ascending; an implicit +Inf bucket follows.
class Histogram {
 public:
  explicit Histogram(const std::vector<double>& bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0.0;
  };
  Snapshot Collect() const;

 private:
  const std::vector<double>& bounds_;                     // owned by the family
  std::unique_ptr<std::atomic<std::uint64_t>[]> counts_;  // per bucket, not cumulative
  std::atomic<double> sum_{0.0};
};

// controller-runtime's reconcile time buckets.
const std::vector<double>& DefaultBuckets();
// start, start*factor, ... (count values).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

enum class MetricType { kCounter, kGauge, kHistogram };

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  virtual MetricType type() const = 0;
  const std::string& name() const { return name_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  void Expose(std::string& out) const;

 protected:
  using LabelValues = std::vector<std::string>;
  LabelValues CheckLabels(std::initializer_list<std::string_view> values) const;
  virtual void ExposeChildren(std::string& out) const = 0;
  std::string LabelSet(const LabelValues& values, std::string_view extra_name = {},
                       std::string_view extra_value = {}) const;

  mutable std::mutex mu_;  // guards the children maps of the subclasses

 private:
  std::string name_;
  std::string help_;
  std::vector<std::string> label_names_;
};

template <typename Metric>
class Family final : public FamilyBase {
 public:
  using FamilyBase::FamilyBase;
  MetricType type() const override {
    return std::is_same_v<Metric, Counter> ? MetricType::kCounter : MetricType::kGauge;
  }
  // The child with these label values (in label-name order), created on first use.
  Metric& WithLabels(std::initializer_list<std::string_view> values) {
    LabelValues key = CheckLabels(values);
    const std::lock_guard lock(mu_);
    auto& child = children_[std::move(key)];
    if (!child) child = std::make_unique<Metric>();
    return *child;
  }

 private:
  void ExposeChildren(std::string& out) const override;
  std::map<LabelValues, std::unique_ptr<Metric>> children_;
};

class HistogramFamily final : public FamilyBase {
 public:
  HistogramFamily(std::string name, std::string help, std::vector<std::string> label_names,
                  std::vector<double> buckets);
  MetricType type() const override { return MetricType::kHistogram; }
  const std::vector<double>& buckets() const { return buckets_; }
  Histogram& WithLabels(std::initializer_list<std::string_view> values);

 private:
  void ExposeChildren(std::string& out) const override;
  std::vector<double> buckets_;
  std::map<LabelValues, std::unique_ptr<Histogram>> children_;
};

extern template class Family<Counter>;
extern template class Family<Gauge>;
using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;

class Registry;

// Keeps a collect hook registered; unregisters it on destruction.
class CollectHook {
 public:
  CollectHook() = default;
  CollectHook(CollectHook&& other) noexcept;
  CollectHook& operator=(CollectHook&& other) noexcept;
  ~CollectHook();

 private:
  friend class Registry;
  CollectHook(Registry* registry, std::uint64_t id) : registry_(registry), id_(id) {}
  void Reset();
  Registry* registry_ = nullptr;
  std::uint64_t id_ = 0;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Registering a name again with the same type, label names (and buckets) returns the existing
  // family, so several queues or controllers share one family. A conflicting registration or an
  // invalid name is a programming error and throws std::invalid_argument.
  CounterFamily& AddCounter(std::string name, std::string help,
                            std::vector<std::string> label_names = {});
  GaugeFamily& AddGauge(std::string name, std::string help,
                        std::vector<std::string> label_names = {});
  HistogramFamily& AddHistogram(std::string name, std::string help,
                                std::vector<std::string> label_names,
                                std::vector<double> buckets = DefaultBuckets());

  // `hook` runs at the start of every Expose() (serialised), to refresh values that are read
  // rather than counted: queue unfinished work, process memory. Keep the handle alive as long as
  // whatever the hook reads.
  [[nodiscard]] CollectHook OnCollect(std::function<void()> hook);

  std::string Expose() const;

 private:
  friend class CollectHook;
  template <typename F>
  F& Add(std::string name, std::unique_ptr<F> family);

  mutable std::mutex mu_;  // guards families_ and hooks_; held through Expose
  std::map<std::string, std::unique_ptr<FamilyBase>, std::less<>> families_;
  std::map<std::uint64_t, std::function<void()>> hooks_;
  std::uint64_t next_hook_id_ = 1;
};

// process_resident_memory_bytes, process_cpu_seconds_total, process_start_time_seconds, read from
// /proc/self at each Expose.
[[nodiscard]] CollectHook RegisterProcessMetrics(Registry& registry);

// Parsed fields of /proc/<pid>/stat (exposed for tests).
struct ProcStat {
  std::uint64_t utime_ticks = 0;
  std::uint64_t stime_ticks = 0;
  std::uint64_t start_ticks = 0;  // since boot
  std::uint64_t rss_pages = 0;
};
std::optional<ProcStat> ParseProcStat(std::string_view stat);
// "btime" (boot time, seconds since the epoch) from /proc/stat.
std::optional<std::uint64_t> ParseBootTime(std::string_view proc_stat);

// Prometheus rendering helpers (exposed for tests).
std::string FormatValue(double v);
std::string EscapeLabelValue(std::string_view v);

}  // namespace millrace::controller
