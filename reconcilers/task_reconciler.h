#pragma once

#include "controller/events.h"
#include "controller/informer.h"
#include "controller/manager.h"
#include "controller/mutation_cache.h"
#include "controller/reconciler.h"
#include "crds/task.h"
#include "kubeclient/client.h"

namespace millrace::reconcilers {

// Tasks -> a Job per attempt (batch), or a Deployment, Service and HorizontalPodAutoscaler
// (streaming). reconcilers/task.h decides; this class reads the caches and writes.
//
// A reconcile: read the task (or the status this controller wrote to it, until the cache shows it:
// controller::MutationCache) and its children from the caches (and, when status names an attempt
// whose Job the cache does not show, the Job from the API server, so a lagging cache never starts
// an attempt twice); plan; create the next attempt's Job, apply streaming children, delete what the
// plan removes; record the transitions as events; patch the status if it changed. The Job is
// created before the status that counts it is written, so a crash in between is found again
// through the Job's deterministic name.
class TaskReconciler final : public controller::Reconciler {
 public:
  struct Caches {
    const controller::Informer& tasks;
    const controller::Informer& jobs;
    const controller::Informer& pods;
    const controller::Informer& deployments;
    const controller::Informer& services;
    const controller::Informer& horizontal_pod_autoscalers;
    const controller::Informer& resource_quotas;
    const controller::Informer& limit_ranges;
    const controller::Informer& namespaces;
    const controller::Informer& priority_classes;
  };
  // `written`: the statuses this controller wrote, over caches.tasks (WrittenCache()).
  TaskReconciler(kube::Client& client, Caches caches, controller::MutationCache written,
                 controller::EventRecorder& events);

  controller::Outcome Reconcile(const controller::Request& request,
                                const controller::ReconcileContext& context) override;

 private:
  // The cache of the streaming children of `kind` (Deployment, Service, HorizontalPodAutoscaler).
  const controller::Informer& CacheFor(std::string_view kind) const;
  void Event(const api::Task& task, std::string_view type, std::string_view reason,
             std::string note);

  kube::Client& client_;
  Caches caches_;
  controller::MutationCache written_;
  controller::EventRecorder& events_;
};

// Sets up the informers (children and pods selected by label), their handlers and the "task"
// controller on `manager`.
void AddTaskController(controller::Manager& manager, int workers);

}  // namespace millrace::reconcilers
