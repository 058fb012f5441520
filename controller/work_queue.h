#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include "controller/clock.h"
#include "controller/metrics.h"
#include "controller/rate_limiter.h"

namespace millrace::controller {

struct WorkQueueOptions {
  std::string name;  // the {name} label of the workqueue_* metrics
  RateLimiterOptions rate_limits;
  Clock* clock = nullptr;       // nullptr: the system clock
  Registry* metrics = nullptr;  // nullptr: a private registry nobody scrapes
};

// A rate-limited, delaying work queue of keys, with client-go's semantics:
//  - a key is queued at most once however often it is added;
//  - a key handed out by Get() is "processing" until Done(); adding it meanwhile marks it dirty
//    and it is queued again at Done(), so no two workers ever hold the same key;
//  - AddAfter() holds a key back until its due time (the earliest pending due time wins);
//  - AddRateLimited() is AddAfter() with the rate limiter's delay; Forget() resets the key's
//    backoff.
// After ShutDown() adds are ignored and Get() returns nullopt at once: queued keys are dropped
// (the next start lists everything again). ShutDownWithDrain() also waits for every key handed
// out to be Done(); calling it from a worker that holds a key deadlocks.
//
// Threads: every member is guarded by mu_. A timer thread (started in the constructor) sleeps on
// the clock until the earliest delayed key is due, then moves due keys to the queue and wakes
// getters; Get() and Len() also move due keys, so what they see never depends on that thread's
// timing.
class WorkQueue {
 public:
  explicit WorkQueue(WorkQueueOptions options);
  ~WorkQueue();
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void Add(std::string_view key);
  void AddAfter(std::string_view key, Duration delay);
  void AddRateLimited(std::string_view key);
  void Forget(std::string_view key);
  int NumRequeues(std::string_view key);

  // Blocks until a key is ready (and hands it out) or the queue shuts down (nullopt).
  std::optional<std::string> Get();
  void Done(std::string_view key);

  // Keys ready to be handed out (delayed keys count once due).
  std::size_t Len();
  // Blocks until no key is ready or being processed (delayed keys not yet due do not count).
  // False when `stop` was requested or the queue shut down first.
  bool WaitIdle(std::stop_token stop);
  void ShutDown();
  void ShutDownWithDrain();
  bool shutting_down();

 private:
  struct Metrics {
    Gauge& depth;
    Counter& adds;
    Counter& retries;
    Histogram& queue_duration;
    Histogram& work_duration;
    Gauge& unfinished_work;
    Gauge& longest_running;
  };
  static Metrics MakeMetrics(Registry& registry, const std::string& name);

  void AddLocked(std::string key, TimePoint now);
  void PromoteDueLocked(TimePoint now);
  void TimerLoop(const std::stop_token& stop);
  void ShutDownLocked();
  void CollectLocked(TimePoint now);

  const std::string name_;
  Clock& clock_;
  std::unique_ptr<Registry> own_registry_;
  Metrics metrics_;

  std::mutex mu_;
  std::condition_variable ready_cv_;        // a key was queued, or shutdown
  std::condition_variable_any drained_cv_;  // processing_ became empty
  std::condition_variable timer_cv_;        // waiting_ became non-empty, or shutdown
  RateLimiter limiter_;
  std::deque<std::string> queue_;
  std::unordered_map<std::string, TimePoint> dirty_;       // key -> when first added
  std::unordered_map<std::string, TimePoint> processing_;  // key -> when handed out
  std::set<std::pair<TimePoint, std::string>> waiting_;    // delayed keys by due time
  std::unordered_map<std::string, TimePoint> waiting_due_;
  std::stop_source timer_interrupt_;  // stops the timer's current sleep
  TimePoint timer_deadline_ = TimePoint::max();
  bool shutting_down_ = false;

  CollectHook collect_hook_;
  std::jthread timer_;  // last: starts after everything above exists, joined first
};

}  // namespace millrace::controller
