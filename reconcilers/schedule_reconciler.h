#pragma once

#include <expected>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "controller/builder.h"
#include "controller/manager.h"
#include "crds/schedule.h"
#include "crds/time_zone.h"
#include "reconcilers/object_reconciler.h"
#include "reconcilers/schedule.h"

namespace millrace::reconcilers {

// Schedules -> a Pipeline per due time. reconcilers/schedule.h decides; this class reads the
// caches, loads the time zone (once per name), creates the run, cancels replaced runs, deletes
// runs past the history limits, records events and patches the status, and comes back at the
// next due time.
class ScheduleReconciler final : public ObjectReconciler<api::Schedule> {
 public:
  explicit ScheduleReconciler(controller::ReconcilerDeps deps)
      : ObjectReconciler(std::move(deps)) {}

 private:
  controller::Outcome ReconcileObject(const api::Schedule& schedule,
                                      const controller::ReconcileContext& context) override;
  // The time zone `name` from the tz database, loaded once (workers share the loaded zones).
  // Loaded zones are never replaced, so a reconcile reads one without a copy or the lock held.
  std::shared_ptr<const std::expected<api::TimeZone, std::string>> Zone(const std::string& name);

  std::mutex zones_mutex_;
  std::map<std::string, std::shared_ptr<const std::expected<api::TimeZone, std::string>>,
           std::less<>>
      zones_;
};

// Sets up the informers, handlers and the "schedule" controller on `manager`.
void AddScheduleController(controller::Manager& manager, int workers);

}  // namespace millrace::reconcilers
