#include "controller/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

namespace millrace::controller {
namespace {

bool ValidName(std::string_view name, bool allow_colon) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && (!digit || i == 0)) return false;
  }
  return true;
}

// Backslash and newline escaped, and double quotes too when `quotes` (a label value), as the text
// exposition format wants.
std::string Escape(std::string_view v, bool quotes) {
  std::string out;
  out.reserve(v.size());
  for (const char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quotes && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string_view TypeName(MetricType type) {
  static constexpr std::array<std::string_view, 3> kNames{"counter", "gauge", "histogram"};
  const auto i = static_cast<size_t>(type);
  return i < kNames.size() ? kNames.at(i) : "untyped";
}
}  // namespace

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

std::string EscapeLabelValue(std::string_view v) { return Escape(v, /*quotes=*/true); }

// ---- Histogram --------------------------------------------------------------------------------

Histogram::Histogram(const std::vector<double>& bounds)
    : bounds_(bounds), counts_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {}

void Histogram::Observe(double v) {
  const auto it = std::ranges::lower_bound(bounds_, v);  // first bound >= v
  const auto bucket = static_cast<std::size_t>(it - bounds_.begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Collect() const {
  Snapshot s;
  s.cumulative.reserve(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

const std::vector<double>& DefaultBuckets() {
  static const std::vector<double> buckets{
      0.005, 0.01, 0.025, 0.05, 0.1,  0.15, 0.2,  0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6,
      0.7,   0.8,  0.9,   1,    1.25, 1.5,  1.75, 2,    2.5, 3,    3.5, 4,    4.5, 5,
      6,     7,    8,     9,    10,   15,   20,   25,   30,  40,   50,  60};
  return buckets;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> out;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) out.push_back(v);
  return out;
}

// ---- families ---------------------------------------------------------------------------------

FamilyBase::FamilyBase(std::string name, std::string help, std::vector<std::string> label_names)
    : name_(std::move(name)), help_(std::move(help)), label_names_(std::move(label_names)) {
  if (!ValidName(name_, true)) throw std::invalid_argument("invalid metric name: " + name_);
  for (const auto& label : label_names_) {
    if (!ValidName(label, false) || label == "le" || label.starts_with("__")) {
      throw std::invalid_argument("invalid label name " + label + " on " + name_);
    }
  }
}

FamilyBase::LabelValues FamilyBase::CheckLabels(
    std::initializer_list<std::string_view> values) const {
  if (values.size() != label_names_.size()) {
    throw std::invalid_argument(
        fmt::format("{} takes {} label values, got {}", name_, label_names_.size(), values.size()));
  }
  return LabelValues(values.begin(), values.end());
}

std::string FamilyBase::LabelSet(const LabelValues& values, std::string_view extra_name,
                                 std::string_view extra_value) const {
  if (values.empty() && extra_name.empty()) return {};
  std::string out = "{";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += label_names_[i];
    out += "=\"";
    out += EscapeLabelValue(values[i]);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!values.empty()) out += ',';
    out += extra_name;
    out += "=\"";
    out += EscapeLabelValue(extra_value);
    out += '"';
  }
  out += '}';
  return out;
}

void FamilyBase::Expose(std::string& out) const {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name_, Escape(help_, /*quotes=*/false), name_,
                     TypeName(type()));
  ExposeChildren(out);
}

template <typename Metric>
void Family<Metric>::ExposeChildren(std::string& out) const {
  const std::lock_guard lock(mu_);
  for (const auto& [values, child] : children_) {
    out += name();
    out += LabelSet(values);
    out += ' ';
    out += FormatValue(child->Value());
    out += '\n';
  }
}

template class Family<Counter>;
template class Family<Gauge>;

HistogramFamily::HistogramFamily(std::string name, std::string help,
                                 std::vector<std::string> label_names, std::vector<double> buckets)
    : FamilyBase(std::move(name), std::move(help), std::move(label_names)),
      buckets_(std::move(buckets)) {
  if (buckets_.empty() || !std::ranges::is_sorted(buckets_) ||
      std::ranges::adjacent_find(buckets_) != buckets_.end() || std::isinf(buckets_.back())) {
    throw std::invalid_argument("histogram buckets must be finite and strictly ascending");
  }
}

Histogram& HistogramFamily::WithLabels(std::initializer_list<std::string_view> values) {
  LabelValues key = CheckLabels(values);
  const std::lock_guard lock(mu_);
  auto& child = children_[std::move(key)];
  if (!child) child = std::make_unique<Histogram>(buckets_);
  return *child;
}

void HistogramFamily::ExposeChildren(std::string& out) const {
  const std::lock_guard lock(mu_);
  for (const auto& [values, child] : children_) {
    const Histogram::Snapshot s = child->Collect();
    for (std::size_t i = 0; i <= buckets_.size(); ++i) {
      const std::string le = i < buckets_.size() ? FormatValue(buckets_[i]) : "+Inf";
      out += fmt::format("{}_bucket{} {}\n", name(), LabelSet(values, "le", le), s.cumulative[i]);
    }
    out += fmt::format("{}_sum{} {}\n", name(), LabelSet(values), FormatValue(s.sum));
    out += fmt::format("{}_count{} {}\n", name(), LabelSet(values), s.cumulative.back());
  }
}

// ---- registry ---------------------------------------------------------------------------------

template <typename F>
F& Registry::Add(std::string name, std::unique_ptr<F> family) {
  const std::lock_guard lock(mu_);
  auto [it, inserted] = families_.try_emplace(std::move(name));
  if (inserted) {
    it->second = std::move(family);
    return static_cast<F&>(*it->second);
  }
  auto* existing = dynamic_cast<F*>(it->second.get());
  const auto same_buckets = [&] {
    if constexpr (std::is_same_v<F, HistogramFamily>) {
      return existing->buckets() == family->buckets();
    } else {
      return true;
    }
  };
  const bool same =
      existing != nullptr && existing->label_names() == family->label_names() && same_buckets();
  if (!same) throw std::invalid_argument("metric registered twice differently: " + it->first);
  return *existing;
}

CounterFamily& Registry::AddCounter(std::string name, std::string help,
                                    std::vector<std::string> label_names) {
  auto family = std::make_unique<CounterFamily>(name, std::move(help), std::move(label_names));
  return Add(std::move(name), std::move(family));
}

GaugeFamily& Registry::AddGauge(std::string name, std::string help,
                                std::vector<std::string> label_names) {
  auto family = std::make_unique<GaugeFamily>(name, std::move(help), std::move(label_names));
  return Add(std::move(name), std::move(family));
}

HistogramFamily& Registry::AddHistogram(std::string name, std::string help,
                                        std::vector<std::string> label_names,
                                        std::vector<double> buckets) {
  auto family = std::make_unique<HistogramFamily>(name, std::move(help), std::move(label_names),
                                                  std::move(buckets));
  return Add(std::move(name), std::move(family));
}

CollectHook Registry::OnCollect(std::function<void()> hook) {
  const std::lock_guard lock(mu_);
  const std::uint64_t id = next_hook_id_++;
  hooks_.emplace(id, std::move(hook));
  return CollectHook(this, id);
}

std::string Registry::Expose() const {
  const std::lock_guard lock(mu_);
  for (const auto& [id, hook] : hooks_) hook();
  std::string out;
  for (const auto& [name, family] : families_) family->Expose(out);
  return out;
}

CollectHook::CollectHook(CollectHook&& other) noexcept
    : registry_(std::exchange(other.registry_, nullptr)), id_(other.id_) {}

CollectHook& CollectHook::operator=(CollectHook&& other) noexcept {
  if (this != &other) {
    Reset();
    registry_ = std::exchange(other.registry_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

CollectHook::~CollectHook() { Reset(); }

void CollectHook::Reset() {
  if (registry_ == nullptr) return;
  const std::lock_guard lock(registry_->mu_);
  registry_->hooks_.erase(id_);
  registry_ = nullptr;
}

// ---- process metrics --------------------------------------------------------------------------

std::optional<ProcStat> ParseProcStat(std::string_view stat) {
  // Field 2 (comm) is parenthesised and may hold spaces; fields after it are space separated.
  const auto close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::vector<std::string_view> fields;  // fields[0] is field 3 (state)
  std::size_t pos = close + 1;
  while (pos < stat.size()) {
    while (pos < stat.size() && (stat[pos] == ' ' || stat[pos] == '\n')) ++pos;
    const std::size_t end = std::min(stat.find_first_of(" \n", pos), stat.size());
    if (end > pos) fields.push_back(stat.substr(pos, end - pos));
    pos = end;
  }
  const auto field = [&](std::size_t number, std::uint64_t& value) {
    if (number - 3 >= fields.size()) return false;
    const std::string_view f = fields[number - 3];
    return std::from_chars(f.data(), f.data() + f.size(), value).ec == std::errc{};
  };
  ProcStat s;
  if (!field(14, s.utime_ticks) || !field(15, s.stime_ticks) || !field(22, s.start_ticks) ||
      !field(24, s.rss_pages)) {
    return std::nullopt;
  }
  return s;
}

std::optional<std::uint64_t> ParseBootTime(std::string_view proc_stat) {
  std::size_t pos = 0;
  while (pos < proc_stat.size()) {
    const std::size_t end = std::min(proc_stat.find('\n', pos), proc_stat.size());
    const std::string_view line = proc_stat.substr(pos, end - pos);
    if (line.starts_with("btime ")) {
      const std::string_view v = line.substr(6);
      std::uint64_t out = 0;
      if (std::from_chars(v.data(), v.data() + v.size(), out).ec == std::errc{}) return out;
      return std::nullopt;
    }
    pos = end + 1;
  }
  return std::nullopt;
}

namespace {

std::string ReadFile(const char* path) {
  const std::ifstream in(path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

CollectHook RegisterProcessMetrics(Registry& registry) {
  Gauge& rss = registry.AddGauge("process_resident_memory_bytes", "Resident memory size in bytes.")
                   .WithLabels({});
  Counter& cpu = registry
                     .AddCounter("process_cpu_seconds_total",
                                 "Total user and system CPU time spent in seconds.")
                     .WithLabels({});
  Gauge& start = registry
                     .AddGauge("process_start_time_seconds",
                               "Start time of the process since unix epoch in seconds.")
                     .WithLabels({});
  const auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const auto page = static_cast<double>(sysconf(_SC_PAGESIZE));
  if (const auto stat = ParseProcStat(ReadFile("/proc/self/stat"))) {
    if (const auto boot = ParseBootTime(ReadFile("/proc/stat"))) {
      start.Set(static_cast<double>(*boot) + (static_cast<double>(stat->start_ticks) / ticks));
    }
  }
  // CPU time is monotonic, so mirroring it into a counter by its increase keeps counter semantics;
  // hooks run serialised under the registry lock.
  return registry.OnCollect([&rss, &cpu, ticks, page] {
    const auto stat = ParseProcStat(ReadFile("/proc/self/stat"));
    if (!stat) return;
    rss.Set(static_cast<double>(stat->rss_pages) * page);
    const double seconds = static_cast<double>(stat->utime_ticks + stat->stime_ticks) / ticks;
    if (seconds > cpu.Value()) cpu.Inc(seconds - cpu.Value());
  });
}

}  // namespace millrace::controller
