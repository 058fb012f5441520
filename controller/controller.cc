#include "controller/controller.h"

#include <chrono>
#include <exception>
#include <random>

#include <fmt/format.h>

namespace millrace::controller {
namespace {

Registry& RegistryOr(Registry* registry, std::unique_ptr<Registry>& own) {
  if (registry != nullptr) return *registry;
  own = std::make_unique<Registry>();
  return *own;
}

WorkQueueOptions QueueOptions(const ControllerOptions& options, Registry& registry) {
  WorkQueueOptions q;
  q.name = options.name;
  q.rate_limits = options.rate_limits;
  q.clock = options.clock;
  q.metrics = &registry;
  return q;
}

}  // namespace

bool IsQuotaRefusal(const kube::Error& error) {
  // The quota admission plugin's words: over the limit, or a quota whose usage the quota
  // controller has not counted yet (a ResourceQuota created a moment ago).
  return error.IsForbidden() &&
         (error.message.find("exceeded quota") != std::string::npos ||
          error.message.find("status unknown for quota") != std::string::npos);
}

bool IsTerminal(const kube::Error& error) {
  switch (error.kind) {
    case kube::ErrorKind::kInvalid:
    case kube::ErrorKind::kBadRequest:
    case kube::ErrorKind::kMethodNotAllowed:
      return true;
    case kube::ErrorKind::kForbidden:
      return !IsQuotaRefusal(error);
    default:
      return false;
  }
}

std::string NewReconcileId() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{:016x}", rng());
}

Controller::Metrics Controller::MakeMetrics(Registry& registry, const std::string& name) {
  auto& total = registry.AddCounter("controller_runtime_reconcile_total",
                                    "Total number of reconciliations per controller",
                                    {"controller", "result"});
  return Metrics{
      .success = total.WithLabels({name, "success"}),
      .error = total.WithLabels({name, "error"}),
      .requeue_after = total.WithLabels({name, "requeue_after"}),
      .terminal_error = total.WithLabels({name, "terminal_error"}),
      .errors =
          registry
              .AddCounter("controller_runtime_reconcile_errors_total",
                          "Total number of reconciliation errors per controller", {"controller"})
              .WithLabels({name}),
      .time = registry
                  .AddHistogram("controller_runtime_reconcile_time_seconds",
                                "Length of time per reconciliation per controller", {"controller"})
                  .WithLabels({name}),
      .active_workers =
          registry
              .AddGauge("controller_runtime_active_workers",
                        "Number of currently used workers per controller", {"controller"})
              .WithLabels({name}),
  };
}

Controller::Controller(const ControllerOptions& options, Reconciler& reconciler)
    : name_(options.name),
      workers_(options.workers),
      clock_(options.clock != nullptr ? *options.clock : SystemClock::Instance()),
      reconciler_(reconciler),
      logger_(options.logger.With("controller", options.name)),
      metrics_(MakeMetrics(RegistryOr(options.metrics, own_registry_), name_)),
      queue_(
          QueueOptions(options, options.metrics != nullptr ? *options.metrics : *own_registry_)) {}

Controller::~Controller() { Stop(); }

void Controller::Start() {
  const std::lock_guard lock(threads_mu_);
  if (!threads_.empty() || stopping_) return;
  logger_.With("workers", workers_).Info("starting workers");
  threads_.emplace_back([this](const std::stop_token& stop) { Work(stop); });
}

void Controller::SpawnWorkerIfAllBusy() {
  const std::lock_guard lock(threads_mu_);
  if (stopping_ || threads_.size() >= static_cast<size_t>(workers_)) return;
  threads_.emplace_back([this](const std::stop_token& stop) { Work(stop); });
}

void Controller::Stop() {
  {
    const std::lock_guard lock(threads_mu_);
    stopping_ = true;
    for (auto& t : threads_) t.request_stop();
  }
  queue_.ShutDownWithDrain();
  std::vector<std::jthread> threads;
  {
    const std::lock_guard lock(threads_mu_);
    threads.swap(threads_);
  }
  threads.clear();  // joins
}

size_t Controller::worker_threads() {
  const std::lock_guard lock(threads_mu_);
  return threads_.size();
}

void Controller::Work(const std::stop_token& stop) {
  while (true) {
    idle_workers_.fetch_add(1);
    auto key = queue_.Get();
    const bool was_last_idle = idle_workers_.fetch_sub(1) == 1;
    if (!key) return;
    if (was_last_idle) SpawnWorkerIfAllBusy();  // so the next key finds a worker waiting
    metrics_.active_workers.Inc();
    ReconcileOne(*key, stop);
    metrics_.active_workers.Dec();
    queue_.Done(*key);
  }
}

void Controller::ReconcileOne(const std::string& key, std::stop_token stop) {
  std::string id = NewReconcileId();
  Logger logger = logger_.With("object", key).With("reconcileID", id);
  const ReconcileContext context{
      .reconcile_id = std::move(id), .logger = std::move(logger), .stop = std::move(stop)};
  const Request request{.key = key};

  const TimePoint start = clock_.Now();
  Outcome outcome = Outcome::Done();
  try {
    outcome = reconciler_.Reconcile(request, context);
  } catch (const std::exception& e) {
    outcome = Outcome::TransientError(fmt::format("reconcile threw: {}", e.what()));
  } catch (...) {
    outcome = Outcome::TransientError("reconcile threw a non-standard exception");
  }
  metrics_.time.Observe(std::chrono::duration<double>(clock_.Now() - start).count());

  switch (outcome.kind()) {
    case Outcome::Kind::kDone:
      queue_.Forget(key);
      metrics_.success.Inc();
      context.logger.Debug("reconcile succeeded");
      break;
    case Outcome::Kind::kRequeueAfter:
      queue_.Forget(key);
      queue_.AddAfter(key, outcome.requeue_after());
      metrics_.requeue_after.Inc();
      context.logger.Debug("reconcile succeeded, requeued");
      break;
    case Outcome::Kind::kTransientError:
      queue_.AddRateLimited(key);
      metrics_.errors.Inc();
      metrics_.error.Inc();
      context.logger.With("error", outcome.error())
          .With("retries", queue_.NumRequeues(key))
          .Error("reconcile failed, will retry");
      break;
    case Outcome::Kind::kTerminalError:
      queue_.Forget(key);
      metrics_.errors.Inc();
      metrics_.terminal_error.Inc();
      context.logger.With("error", outcome.error()).Error("reconcile failed terminally");
      break;
  }
}

}  // namespace millrace::controller
