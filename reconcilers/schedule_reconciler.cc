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

std::shared_ptr<const std::expected<api::TimeZone, std::string>> ScheduleReconciler::Zone(
    const std::string& name) {
  const std::scoped_lock lock(zones_mutex_);
  auto& zone = zones_[name];
  // A zone that did not load is tried again: the tz database may have been missing a moment.
  if (!zone || !*zone) {
    zone = std::make_shared<const std::expected<api::TimeZone, std::string>>(
        api::TimeZone::Load(name));
  }
  return zone;
}

Outcome ScheduleReconciler::ReconcileObject(const api::Schedule& schedule,
                                            const controller::ReconcileContext& context) {
  ObservedSchedule observed;
  for (const Object& p : caches_.Of(resources::kPipelines).ControlledBy(schedule.metadata.uid)) {
    observed.runs.push_back(*p);
  }
  SchedulePlan plan =
      PlanSchedule(schedule, observed, *Zone(schedule.spec.time_zone.value_or("UTC")), Now());
  // The new run first: Replace cancels the old ones only once it exists.
  if (plan.create) {
    if (auto stopped = CreateOwned(schedule, resources::kPipelines, *plan.create, context)) {
      return *stopped;
    }
    MILLRACE_FAILPOINT("schedule.after-run-create");
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
