#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "controller/controller.h"
#include "controller/event_sender.h"
#include "controller/events.h"
#include "controller/http_server.h"
#include "controller/informer.h"
#include "controller/leader_election.h"
#include "controller/metrics.h"
#include "controller/runnable.h"
#include "kubeclient/client.h"
#include "kubeclient/metrics.h"

namespace millrace::controller {

struct ManagerOptions {
  // Where /healthz, /readyz and /metrics are served; nullopt serves nothing (unit tests).
  std::optional<HttpServerOptions> http;
  // nullopt: no election, this process always leads.
  std::optional<LeaderElectionOptions> leader_election;
  Duration cache_sync_timeout = std::chrono::minutes{2};
  EventRecorderOptions events;
  EventSenderOptions event_sender;
  // The client's request counts, exported as rest_client_requests_total{verb,code}, and the
  // connections it opened, as millrace_api_connections_opened_total.
  std::shared_ptr<kube::RequestMetrics> request_metrics;
  Logger logger;
};

// Owns the parts of a running operator and their order:
//   1. serve /healthz (always 200), /readyz (200 once every informer has synced) and /metrics,
//      and start the runnables (the webhook server, the CA injector) in the order added;
//   2. start every informer (standbys keep warm caches, so a takeover starts at once) and wait
//      for their first lists;
//   3. acquire the lease (if electing), then start the controllers;
//   4. on stop: stop the controllers (in-flight reconciles finish) and send the queued events,
//      while the lease is still renewed; then release the lease so a standby takes over at once,
//      stop the runnables (in reverse order) and the informers.
// Losing the lease returns 1 from Run() at once, without draining: the process must exit
// (lost_leadership() says so) and start over as a standby, as controller-runtime does. The
// lease's fence (LeaderElectionOptions::fence, asked by the client before every write) has
// stopped this replica's writes by then.
class Manager {
 public:
  Manager(kube::Client& client, ManagerOptions options);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Before Run(). Informers with the same resource, namespace and selectors are shared.
  Informer& AddInformer(InformerOptions options);
  Controller& AddController(ControllerOptions options, Reconciler& reconciler);
  // The same, with the manager owning the reconciler.
  Controller& AddController(ControllerOptions options, std::unique_ptr<Reconciler> reconciler);
  // Before Run(). The manager owns it.
  void AddRunnable(std::unique_ptr<Runnable> runnable);

  kube::Client& client() { return client_; }
  Registry& metrics() { return registry_; }
  // Records events.k8s.io/v1 Events; the writes happen on the event sender's threads.
  EventRecorder& events() { return recorder_; }
  const Logger& logger() const { return options_.logger; }

  // Blocks until `stop` (returns 0), leadership is lost (1) or the caches fail to sync (1).
  int Run(const std::stop_token& stop);

  bool Ready() const;
  bool IsLeader() const;
  // Run() returned because the lease was lost: exit the process now (std::_Exit), do not destroy
  // the manager, which would wait for in-flight reconciles.
  bool lost_leadership() const { return lost_leadership_.load(); }
  // The bound port of the HTTP server once Run() started it (0 before).
  uint16_t http_port() const { return http_port_.load(); }

 private:
  void FlushEvents(const std::stop_token& stop);
  // Stops the runnables started so far, last first. Idempotent.
  void StopRunnables();
  void ExportRequestMetrics();

  kube::Client& client_;
  ManagerOptions options_;
  Registry registry_;
  CollectHook process_metrics_;
  CollectHook request_metrics_hook_;
  CounterFamily* requests_family_ = nullptr;  // rest_client_requests_total
  Counter* connections_counter_ = nullptr;    // millrace_api_connections_opened_total
  Gauge& leader_gauge_;
  std::vector<std::unique_ptr<Informer>> informers_;
  std::vector<std::unique_ptr<Reconciler>> reconcilers_;  // declared before controllers_
  std::vector<std::unique_ptr<Controller>> controllers_;
  std::vector<std::unique_ptr<Runnable>> runnables_;
  std::size_t runnables_started_ = 0;  // the first this many of runnables_ (Run's thread)
  std::unique_ptr<LeaderElector> elector_;
  std::unique_ptr<HttpServer> http_;
  std::atomic<uint16_t> http_port_{0};
  std::atomic<bool> synced_{false};
  std::atomic<bool> lost_leadership_{false};

  // The recorder's writes go to the sender's queue; events_flush_thread_ patches aggregated
  // series every patch_interval. Declared so that the flush thread stops first and the sender
  // (which sends what is still queued) goes last.
  EventSender event_sender_;
  EventRecorder recorder_;
  std::jthread events_flush_thread_;
  // Logs "first pass done" once every controller's queue has drained after start-up, then hands
  // the pass's garbage back to the kernel.
  std::jthread first_pass_thread_;
};

}  // namespace millrace::controller
