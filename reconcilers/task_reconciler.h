#pragma once

#include <expected>
#include <optional>
#include <utility>

#include "controller/builder.h"
#include "controller/manager.h"
#include "crds/task.h"
#include "reconcilers/object_reconciler.h"
#include "reconcilers/task.h"

namespace millrace::reconcilers {

// Tasks -> a Job per attempt (batch), or a Deployment, Service and HorizontalPodAutoscaler
// (streaming). reconcilers/task.h decides; this class reads the caches and writes.
//
// A reconcile: read the task (ObjectReconciler) and its children from the caches (and, when status
// names an attempt whose Job the cache does not show, the Job from the API server, so a lagging
// cache never starts an attempt twice); plan; create the next attempt's Job, apply streaming
// children, delete what the plan removes; record the transitions as events; patch the status if it
// changed. The Job is created before the status that counts it is written, so a crash in between is
// found again through the Job's deterministic name.
class TaskReconciler final : public ObjectReconciler<api::Task> {
 public:
  explicit TaskReconciler(controller::ReconcilerDeps deps) : ObjectReconciler(std::move(deps)) {}

 private:
  controller::Outcome ReconcileObject(const api::Task& task,
                                      const controller::ReconcileContext& context) override;
  // The Task's Jobs, pods, streaming children and namespace limits, from the caches.
  ObservedTask Observe(const api::Task& task) const;
  // Reads from the API server what a lagging cache could hide: the Job of the attempt the status
  // counts, and the pods of a finished attempt whose pods the cache does not show finished. An
  // outcome when a read failed.
  std::optional<controller::Outcome> ReadWhatTheCacheLags(const api::Task& task,
                                                          ObservedTask& observed);
  // A plan that ends the task without a new attempt (cancelled, timed out) counts the Jobs the
  // cache shows; one created just before a crash lost its status write may not be there yet.
  // Before ending, the next attempt's Job is asked for: true when it exists (now in `observed`,
  // for a second plan that counts it and deletes it if it runs).
  std::expected<bool, controller::Outcome> FindUnrecordedJob(const api::Task& task,
                                                             const TaskPlan& plan,
                                                             ObservedTask& observed);
  // Creates the next attempt's Job: true when created; false when the API server refused it or
  // it exists (recorded in `observed`, for a second plan).
  std::expected<bool, controller::Outcome> CreateJob(const api::Task& task,
                                                     const nlohmann::json& job,
                                                     ObservedTask& observed,
                                                     const controller::ReconcileContext& context);
};

// Sets up the informers (children and pods selected by label), their handlers and the "task"
// controller on `manager`.
void AddTaskController(controller::Manager& manager, int workers);

}  // namespace millrace::reconcilers
