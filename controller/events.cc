#include "controller/events.h"

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
  if (auto it = series_.find(key);
      it != series_.end() && now - it->second.last_observed <= options_.series_window) {
    Series& series = it->second;
    ++series.count;
    series.last_observed = now;
    series.last_observed_wall = wall;
    if (now - series.last_sent >= options_.patch_interval) Patch(series, now);
    return;
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
  series_.insert_or_assign(std::move(key), std::move(series));
}

void EventRecorder::Flush() {
  const TimePoint now = clock_.Now();
  std::lock_guard lock(mu_);
  for (auto it = series_.begin(); it != series_.end();) {
    if (it->second.count > it->second.sent_count) Patch(it->second, now);
    if (now - it->second.last_observed > options_.series_window) {
      it = series_.erase(it);
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
