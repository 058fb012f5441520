#include "controller/events.h"

#include <algorithm>
#include <utility>

#include <fmt/chrono.h>
#include <fmt/format.h>

namespace millrace::controller {
namespace {

constexpr std::size_t kNoteLimit = 1024;

std::string TruncateUtf8(std::string s, std::size_t limit) {
  if (s.size() <= limit) return s;
  std::size_t end = limit;
  // Back up over continuation bytes (10xxxxxx) so a code point is never cut in half.
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0U) == 0x80U) --end;
  s.resize(end);
  return s;
}

}  // namespace

std::string FormatMicroTime(WallTime time) {
  const auto micros = std::chrono::floor<std::chrono::microseconds>(time);
  const auto seconds = std::chrono::floor<std::chrono::seconds>(micros);
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:06d}Z",
                     fmt::gmtime(std::chrono::system_clock::to_time_t(seconds)),
                     (micros - seconds).count());
}

EventRecorder::EventRecorder(EventRecorderOptions options, EventSink sink)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock::Instance()),
      sink_(std::move(sink)) {}

void EventRecorder::Record(const EventSpec& event) {
  const auto& r = event.regarding;
  std::string note = TruncateUtf8(event.note, kNoteLimit);
  Key key{r.uid, r.kind, r.ns, r.name, event.type, event.reason, event.action, note};
  const TimePoint now = clock_.Now();
  const WallTime wall = clock_.WallNow();

  std::lock_guard lock(mu_);
  if (auto it = series_.find(key); it != series_.end()) {
    Series& series = it->second;
    if (now - series.last_observed <= options_.series_window) {
      recency_.splice(recency_.begin(), recency_, series.recency);
      ++series.count;
      series.last_observed = now;
      series.last_observed_wall = wall;
      if (now - series.last_sent >= options_.patch_interval) Patch(series, now);
      return;
    }
    // Its window has passed: send what it has not sent yet, then start a new Event.
    if (series.count > series.sent_count) Patch(series, now);
    Forget(it);
  }

  Series series;
  series.ns = r.ns.empty() ? "default" : r.ns;  // cluster-scoped objects: like client-go
  series.name = fmt::format(
      "{}.{:x}", r.name,
      std::chrono::duration_cast<std::chrono::nanoseconds>(wall.time_since_epoch()).count());
  series.last_observed = series.last_sent = now;
  series.last_observed_wall = wall;

  nlohmann::json regarding = {{"apiVersion", r.api_version}, {"kind", r.kind}, {"name", r.name}};
  if (!r.ns.empty()) regarding["namespace"] = r.ns;
  if (!r.uid.empty()) regarding["uid"] = r.uid;
  nlohmann::json body = {
      {"apiVersion", "events.k8s.io/v1"},
      {"kind", "Event"},
      {"metadata", {{"name", series.name}, {"namespace", series.ns}}},
      {"eventTime", FormatMicroTime(wall)},
      {"reportingController", options_.reporting_controller},
      {"reportingInstance", options_.reporting_instance},
      {"regarding", std::move(regarding)},
      {"type", event.type},
      {"reason", event.reason},
      {"action", event.action},
      {"note", std::move(note)},
  };
  sink_(EventWrite{EventWrite::Kind::kCreate, series.ns, series.name, std::move(body)});
  auto it = series_.emplace(std::move(key), std::move(series)).first;
  recency_.push_front(it);
  it->second.recency = recency_.begin();
  while (series_.size() > std::max<std::size_t>(options_.max_series, 1)) {
    const auto oldest = recency_.back();
    if (oldest->second.count > oldest->second.sent_count) Patch(oldest->second, now);
    Forget(oldest);
  }
}

void EventRecorder::Forget(SeriesMap::iterator it) {
  recency_.erase(it->second.recency);
  series_.erase(it);
}

void EventRecorder::Flush() {
  const TimePoint now = clock_.Now();
  std::lock_guard lock(mu_);
  for (auto it = series_.begin(); it != series_.end();) {
    if (it->second.count > it->second.sent_count) Patch(it->second, now);
    if (now - it->second.last_observed > options_.series_window) {
      Forget(it++);
    } else {
      ++it;
    }
  }
}

void EventRecorder::Patch(Series& series, TimePoint now) {
  nlohmann::json body = {{"series",
                          {{"count", series.count},
                           {"lastObservedTime", FormatMicroTime(series.last_observed_wall)}}}};
  sink_(EventWrite{EventWrite::Kind::kPatch, series.ns, series.name, std::move(body)});
  series.sent_count = series.count;
  series.last_sent = now;
}

}  // namespace millrace::controller
