#include "reconcilers/schedule_reconciler.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "controller/failpoint.h"
#include "crds/meta.h"
#include "reconcilers/apply.h"
#include "reconcilers/object.h"

namespace millrace::reconcilers {
namespace {

using controller::Object;
using controller::Outcome;
using nlohmann::json;

}  // namespace

std::expected<api::TimeZone, std::string> ScheduleReconciler::Zone(const std::string& name) {
  const std::scoped_lock lock(zones_mutex_);
  auto it = zones_.find(name);
  if (it == zones_.end() || !it->second) {
    // A zone that did not load is tried again: the tz database may have been missing a moment.
    it = zones_.insert_or_assign(name, api::TimeZone::Load(name)).first;
  }
  return it->second;
}

std::optional<Outcome> ScheduleReconciler::CreateRun(const api::Schedule& schedule, const json& run,
                                                     const controller::ReconcileContext& context) {
  const std::string name = run["metadata"]["name"];
  auto created =
      writer_.Create(resources::kPipelines, run, {.field_manager = std::string(kFieldManager)});
  if (created) {
    MILLRACE_FAILPOINT("schedule.after-run-create");
    return std::nullopt;
  }
  if (created.error().IsAlreadyExists()) {
    // Ours from a reconcile whose status write was lost: that due time has its run.
    auto live = uncached_.Get(resources::kPipelines, schedule.metadata.namespace_, name);
    if (!live) {
      if (live.error().IsNotFound()) return Outcome::RequeueAfter(std::chrono::seconds{1});
      return Outcome::ApiError("reading Pipeline " + name, std::move(live.error()));
    }
    if (api::IsControlledBy(*live, schedule.metadata.uid)) return std::nullopt;
    if (LeftoverOfEarlierOwner(*live, api::Schedule::kKind, schedule.metadata.name,
                               schedule.metadata.uid)) {
      context.logger.Info("waiting for Pipeline " + name + " of an earlier Schedule to be deleted");
      return Outcome::RequeueAfter(std::chrono::seconds{2});
    }
    Event(schedule, "Warning", "NameTaken",
          "a Pipeline named " + name + " already exists and is not this schedule's");
    return Outcome::TransientError("Pipeline " + name + " exists and is not this schedule's");
  }
  if (controller::IsTerminal(created.error())) {
    Event(schedule, "Warning", "CreateRefused",
          "creating Pipeline " + name + ": " + created.error().message);
  }
  return Outcome::ApiError("creating Pipeline " + name, std::move(created.error()));
}

Outcome ScheduleReconciler::ReconcileObject(const api::Schedule& schedule,
                                            const controller::ReconcileContext& context) {
  ObservedSchedule observed;
  for (const Object& p : caches_.Of(resources::kPipelines).ControlledBy(schedule.metadata.uid)) {
    observed.runs.push_back(*p);
  }
  SchedulePlan plan =
      PlanSchedule(schedule, observed, Zone(schedule.spec.time_zone.value_or("UTC")), Now());
  // The new run first: Replace cancels the old ones only once it exists.
  if (plan.create) {
    if (auto stopped = CreateRun(schedule, *plan.create, context)) return *stopped;
  }
  for (const std::string& name : plan.cancel) {
    auto patched = writer_.Patch(resources::kPipelines, schedule.metadata.namespace_, name,
                                 {{"spec", {{"cancel", true}}}});
    if (!patched && !patched.error().IsNotFound()) {
      return Outcome::ApiError("cancelling Pipeline " + name, std::move(patched.error()));
    }
  }
  return Execute(schedule, {.apply = {},
                            .remove = std::move(plan.remove),
                            .events = std::move(plan.events),
                            .status_patch = ScheduleStatusPatch(schedule, plan.status),
                            .requeue_after = plan.requeue_after,
                            .before_status = {}});
}

void AddScheduleController(controller::Manager& manager, int workers) {
  controller::ControllerBuilder(manager, "schedule")
      .For(resources::kSchedules)
      .Owns(resources::kPipelines)  // the Pipeline controller's informer, shared
      .Workers(workers)
      .Complete([](controller::ReconcilerDeps deps) {
        return std::make_unique<ScheduleReconciler>(std::move(deps));
      });
}

}  // namespace millrace::reconcilers
