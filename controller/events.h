#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include <nlohmann/json.hpp>

#include "controller/clock.h"

namespace millrace::controller {

// What an Event is about (events.k8s.io/v1 `regarding`).
struct ObjectReference {
  std::string api_version;
  std::string kind;
  std::string ns;  // empty for cluster-scoped objects
  std::string name;
  std::string uid;
};

struct EventSpec {
  ObjectReference regarding;
  std::string type;    // "Normal" or "Warning"
  std::string reason;  // CamelCase, machine readable, e.g. "ChildCreated"
  std::string action;  // what was done or failed, e.g. "Reconcile"
  std::string note;    // human readable; cut to 1024 bytes (at a UTF-8 boundary)
};

// An API write the sink should make: create `body` in `ns`, or apply the JSON merge patch `body`
// to the Event `ns`/`name`.
struct EventWrite {
  enum class Kind { kCreate, kPatch };
  Kind kind;
  std::string ns;
  std::string name;
  nlohmann::json body;
};
using EventSink = std::function<void(EventWrite)>;

struct EventRecorderOptions {
  std::string reporting_controller = "millrace.io/controller";
  std::string reporting_instance;  // e.g. the pod name
  Clock* clock = nullptr;          // nullptr: the system clock
  // A repeat within `series_window` of the last occurrence joins that Event's series; later it
  // starts a new Event (client-go's 6 minutes).
  Duration series_window = std::chrono::minutes{6};
  // A series is patched at most this often; repeats in between are folded into the next patch
  // (by a later Record or by Flush).
  Duration patch_interval = std::chrono::seconds{30};
  // Series remembered at most (client-go's correlator keeps 4096): past that the least recently
  // observed one is forgotten (its unsent count patched first), and its next repeat starts a new
  // Event. Bounds the recorder's memory however many objects it reports on.
  std::size_t max_series = 4096;
};

// The pure part of an events.k8s.io/v1 recorder: turns occurrences into API writes, aggregating
// repeats (same object, type, reason, action and note) into the first Event's `series` instead of
// creating a new Event each time. The sink is called synchronously, under the recorder's mutex,
// so writes for one Event stay in order; a sink should hand the write to a sender and return.
// Thread-safe.
class EventRecorder {
 public:
  EventRecorder(EventRecorderOptions options, EventSink sink);

  void Record(const EventSpec& event);
  // Patches series with occurrences not yet sent, and forgets series whose window has passed.
  // The owner calls it every patch_interval and at shutdown.
  void Flush();

 private:
  using Key = std::tuple<std::string, std::string, std::string, std::string, std::string,
                         std::string, std::string, std::string>;
  struct Series;
  using SeriesMap = std::map<Key, Series>;
  struct Series {
    std::list<SeriesMap::iterator>::iterator recency;  // its place in recency_
    std::string ns;
    std::string name;
    std::int64_t count = 1;
    std::int64_t sent_count = 1;
    TimePoint last_observed;
    TimePoint last_sent;
    WallTime last_observed_wall;
  };

  void Patch(Series& series, TimePoint now);
  void Forget(SeriesMap::iterator it);

  EventRecorderOptions options_;
  Clock& clock_;
  EventSink sink_;
  std::mutex mu_;  // guards series_ and recency_
  SeriesMap series_;
  std::list<SeriesMap::iterator> recency_;  // most recently observed first
};

// RFC 3339 with microseconds in UTC ("2026-11-22T09:02:29.123456Z"), as metav1.MicroTime.
std::string FormatMicroTime(WallTime time);

}  // namespace millrace::controller
