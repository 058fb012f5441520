#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "controller/clock.h"
#include "controller/logging.h"
#include "controller/metrics.h"
#include "controller/rate_limiter.h"
#include "controller/reconciler.h"
#include "controller/work_queue.h"

namespace millrace::controller {

struct ControllerOptions {
  std::string name;  // the {controller} and {name} metric labels; "controller" in logs
  int workers = 1;
  RateLimiterOptions rate_limits;
  Clock* clock = nullptr;       // nullptr: the system clock
  Registry* metrics = nullptr;  // nullptr: a private registry nobody scrapes
  Logger logger;
};

// Runs up to `workers` threads that take keys from the work queue and reconcile them. It starts
// with one; a worker that takes a key while no other waits starts another, so a key never waits
// for a thread while fewer than `workers` run, and an operator with nothing to do holds one
// thread per controller (a thread, once started, stays until Stop()). The outcome
// goes back to the queue, the one place retries live:
//   Done            -> Forget                      result="success"
//   RequeueAfter(d) -> Forget, AddAfter(d)         result="requeue_after"
//   TransientError  -> AddRateLimited (backoff)    result="error"
//   TerminalError   -> Forget                      result="terminal_error"
//   exception       -> as TransientError           result="error"
// (controller-runtime's "requeue" result has no counterpart: a retry without an error is
// RequeueAfter, an error is an error.)
//
// Threads: the workers own nothing but the key they hold; everything shared lives in the queue
// (its own mutex) and in atomic metrics. Start() once; Stop() (also run by the destructor) asks
// running reconciles to stop, shuts the queue down with drain and joins the workers.
class Controller {
 public:
  Controller(const ControllerOptions& options, Reconciler& reconciler);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Event handlers enqueue keys here.
  WorkQueue& queue() { return queue_; }
  const std::string& name() const { return name_; }

  void Start();
  void Stop();
  // Worker threads started so far: 1 to `workers`.
  size_t worker_threads();

 private:
  struct Metrics {
    Counter& success;
    Counter& error;
    Counter& requeue_after;
    Counter& terminal_error;
    Counter& errors;
    Histogram& time;
    Gauge& active_workers;
  };
  static Metrics MakeMetrics(Registry& registry, const std::string& name);

  void Work(const std::stop_token& stop);
  void SpawnWorkerIfAllBusy();
  void ReconcileOne(const std::string& key, std::stop_token stop);

  const std::string name_;
  const int workers_;
  Clock& clock_;
  Reconciler& reconciler_;
  Logger logger_;
  std::unique_ptr<Registry> own_registry_;
  Metrics metrics_;
  WorkQueue queue_;
  std::atomic<int> idle_workers_{0};  // workers waiting in queue_.Get()
  std::mutex threads_mu_;
  std::vector<std::jthread> threads_;  // guarded by threads_mu_
  bool stopping_ = false;              // guarded by threads_mu_
};

// 16 random hex digits.
std::string NewReconcileId();

}  // namespace millrace::controller
