#include "controller/manager.h"

#include <chrono>
#include <utility>

#include "controller/memory.h"

namespace millrace::controller {
namespace {

// Seconds from `start` to now, to a millisecond, for the start-up log lines.
double SecondsSince(TimePoint start) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(SystemClock::Instance().Now() - start);
  return static_cast<double>(ms.count()) / 1000.0;
}

bool SameInformer(const InformerOptions& a, const InformerOptions& b) {
  return a.resource == b.resource && a.ns == b.ns && a.label_selector == b.label_selector &&
         a.field_selector == b.field_selector;
}

}  // namespace

Manager::Manager(kube::Client& client, ManagerOptions options)
    : client_(client),
      options_(std::move(options)),
      process_metrics_(RegisterProcessMetrics(registry_)),
      leader_gauge_(registry_
                        .AddGauge("leader_election_master_status",
                                  "1 while this process leads (or elects no leader), else 0.",
                                  {"name"})
                        .WithLabels({options_.leader_election ? options_.leader_election->lease_name
                                                              : std::string("none")})),
      event_sender_(
          [this] {
            EventSenderOptions o = options_.event_sender;
            if (o.metrics == nullptr) o.metrics = &registry_;
            if (o.clock == nullptr) o.clock = options_.events.clock;
            o.logger = options_.logger;
            return o;
          }(),
          [this](const EventWrite& write) -> kube::Result<void> {
            const auto& events = kube::resources::kEvents;
            auto result = write.kind == EventWrite::Kind::kCreate
                              ? client_.Create(events, write.body)
                              : client_.Patch(events, write.ns, write.name, write.body);
            if (!result) return std::unexpected(std::move(result.error()));
            return {};
          }),
      recorder_(options_.events,
                [this](EventWrite write) { event_sender_.Enqueue(std::move(write)); }) {
  if (options_.request_metrics) {
    // Registered here, not in the hook: hooks run under the registry's lock, which registering
    // takes too.
    requests_family_ = &registry_.AddCounter(
        "rest_client_requests_total",
        "Requests to the API server by verb and HTTP code (code 0: no answer). Retries count.",
        {"verb", "code"});
    connections_counter_ =
        &registry_
             .AddCounter("millrace_api_connections_opened_total",
                         "TCP connections opened to the API server (none idle could be reused).")
             .WithLabels({});
    request_metrics_hook_ = registry_.OnCollect([this] { ExportRequestMetrics(); });
  }
  if (options_.leader_election) {
    options_.leader_election->logger = options_.logger;
    elector_ = std::make_unique<LeaderElector>(client_, *options_.leader_election);
  }
  events_flush_thread_ = std::jthread([this](const std::stop_token& stop) { FlushEvents(stop); });
}

Manager::~Manager() {
  StopRunnables();            // on the ways out of Run() that did not stop them
  events_flush_thread_ = {};  // stops and joins it
  first_pass_thread_ = {};
  // Informers push keys into the controllers' queues and MutationCaches: they stop first, on
  // every way out of Run() (a stop during cache sync or while waiting for the lease, a sync
  // timeout, leadership lost), before the controllers and reconcilers they feed are freed.
  for (auto& informer : informers_) informer->Stop();
  controllers_.clear();
  reconcilers_.clear();
  informers_.clear();
}

Informer& Manager::AddInformer(InformerOptions options) {
  for (auto& informer : informers_) {
    if (SameInformer(informer->options(), options)) {
      // Shared by several controllers: each one's label indexes are kept.
      informer->IndexLabels(options.store.indexed_labels);
      return *informer;
    }
  }
  if (options.metrics == nullptr) options.metrics = &registry_;
  options.logger = options_.logger;
  informers_.push_back(std::make_unique<Informer>(client_, client_, std::move(options)));
  return *informers_.back();
}

Controller& Manager::AddController(ControllerOptions options, Reconciler& reconciler) {
  if (options.metrics == nullptr) options.metrics = &registry_;
  options.logger = options_.logger;
  controllers_.push_back(std::make_unique<Controller>(std::move(options), reconciler));
  return *controllers_.back();
}

Controller& Manager::AddController(ControllerOptions options,
                                   std::unique_ptr<Reconciler> reconciler) {
  reconcilers_.push_back(std::move(reconciler));
  return AddController(std::move(options), *reconcilers_.back());
}

void Manager::AddRunnable(std::unique_ptr<Runnable> runnable) {
  runnables_.push_back(std::move(runnable));
}

void Manager::StopRunnables() {
  for (; runnables_started_ > 0; --runnables_started_) {
    Runnable& runnable = *runnables_[runnables_started_ - 1];
    runnable.Stop();
    options_.logger.With("runnable", runnable.runnable_name()).Info("stopped");
  }
}

bool Manager::Ready() const { return synced_.load(); }

bool Manager::IsLeader() const { return elector_ ? elector_->IsLeader() : true; }

void Manager::ExportRequestMetrics() {
  // Runs under the registry's collect lock. The client's counts only grow, and only this hook
  // moves the counters, so each counter moves up to its count (exact in a double below 2^53).
  const auto catch_up = [](Counter& counter, uint64_t count) {
    const auto now = static_cast<double>(count);
    if (now > counter.Value()) counter.Inc(now - counter.Value());
  };
  for (const auto& [key, count] : options_.request_metrics->Snapshot()) {
    catch_up(requests_family_->WithLabels({key.first, std::to_string(key.second)}), count);
  }
  catch_up(*connections_counter_, options_.request_metrics->connections());
}

void Manager::FlushEvents(const std::stop_token& stop) {
  Clock& clock =
      options_.events.clock != nullptr ? *options_.events.clock : SystemClock::Instance();
  while (clock.SleepUntil(clock.Now() + options_.events.patch_interval, stop)) recorder_.Flush();
}

int Manager::Run(const std::stop_token& stop) {
  const Logger& log = options_.logger;
  const TimePoint start = SystemClock::Instance().Now();
  if (options_.http) {
    http_ = std::make_unique<HttpServer>(*options_.http);
    ServeHealthAndMetrics(*http_, registry_, [this] { return Ready(); });
    if (auto started = http_->Start(); !started) {
      log.With("error", started.error()).Error("serving /healthz, /readyz and /metrics failed");
      return 1;
    }
    http_port_ = http_->port();
    log.With("port", http_->port()).Info("serving /healthz, /readyz and /metrics");
  }
  for (auto& runnable : runnables_) {
    if (auto started = runnable->Start(); !started) {
      log.With("runnable", runnable->runnable_name())
          .With("error", started.error())
          .Error("starting failed");
      runnable->Stop();
      return 1;
    }
    ++runnables_started_;
  }

  for (auto& informer : informers_) informer->Start();
  const TimePoint deadline = SystemClock::Instance().Now() + options_.cache_sync_timeout;
  for (auto& informer : informers_) {
    if (!informer->WaitForSync(deadline, stop)) {
      if (stop.stop_requested()) return 0;
      log.With("resource", informer->resource_label()).Error("cache did not sync in time");
      return 1;
    }
  }
  synced_ = true;
  log.With("seconds", SecondsSince(start)).Info("caches synced");

  if (elector_) {
    leader_gauge_.Set(0);
    if (!elector_->Acquire(stop)) return 0;
  }
  leader_gauge_.Set(1);
  log.With("controllers", controllers_.size()).Info("starting controllers");
  for (auto& controller : controllers_) controller->Start();
  first_pass_thread_ = std::jthread([this, start](const std::stop_token& pass_stop) {
    for (auto& controller : controllers_) {
      if (!controller->queue().WaitIdle(pass_stop)) return;
    }
    options_.logger.With("seconds", SecondsSince(start)).Info("first pass done");
    ReleaseFreeMemory();
  });

  if (elector_) {
    if (!elector_->Renew(stop)) {
      // The fence already refuses every write. No draining of in-flight reconciles: the process
      // exits (main) and starts over as a standby, as controller-runtime's managers do.
      leader_gauge_.Set(0);
      lost_leadership_ = true;
      log.Error("leadership lost; exiting");
      return 1;
    }
  } else {
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock lock(mu);
    cv.wait(lock, stop, [] { return false; });
  }

  log.Info("stopping");
  first_pass_thread_ = {};  // stops and joins it
  // The lease keeps being renewed while in-flight reconciles finish and the events they recorded
  // are sent, so neither the fence nor its kill timer cuts a graceful stop short; it is handed
  // back only after.
  std::jthread renewing;
  if (elector_) {
    renewing = std::jthread([this](const std::stop_token& drained) {
      if (!elector_->Renew(drained)) options_.logger.Error("leadership lost while stopping");
    });
  }
  for (auto& controller : controllers_) controller->Stop();
  recorder_.Flush();
  event_sender_.Drain();  // sends what is queued, for up to its drain timeout
  renewing = {};          // stops and joins it
  leader_gauge_.Set(0);
  if (elector_) elector_->Release();
  StopRunnables();
  for (auto& informer : informers_) informer->Stop();
  if (http_) http_->Stop();
  return 0;
}

}  // namespace millrace::controller
