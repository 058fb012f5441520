#pragma once

// The pure part of the Schedule reconciler: from a Schedule, its runs (the Pipelines it made) and
// the time, decide whether a run starts now, which runs to cancel (Replace) and which finished runs
// to delete (history limits), the status, the events and when to look again. No I/O, no clock.
//
// Each run is a Pipeline named RunName(schedule, due time) (the due time in minutes since the
// epoch, as a CronJob's Jobs are named), owned by the Schedule, labelled kScheduleLabel and
// annotated with its due time (kScheduledTimeAnnotation). status.lastDueTime is written after the
// run was created; a reconcile after a crash in between makes the same name again, which the API
// server refuses (AlreadyExists), so no due time runs twice.
//
// Choices made where docs/api/schedule.md is silent (as a CronJob does, unless noted):
// - Of several due times missed (the operator was down, or the schedule suspended), only the most
//   recent runs, and only if it is within startingDeadline; the earlier ones are not run.
// - Forbid skips a due time while a run is active; the skipped time is not run later (a CronJob
//   may run it once the active Job ends, within startingDeadlineSeconds).
// - Replace cancels the active runs (spec.cancel: their finally steps still run and they end
//   Cancelled, kept in history) instead of deleting them, and starts the new run at once.
// - Failed and Cancelled runs count against failedRunsHistoryLimit.
// - A run that exists for a due time whose status write was lost counts as that due time's run:
//   Forbid does not skip it and Replace does not cancel it (Replace cancels the others, after the
//   new run was created, so a run that cannot be made replaces nothing).

#include <chrono>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "crds/schedule.h"
#include "crds/time_zone.h"
#include "reconcilers/names.h"

namespace millrace::reconcilers {

inline constexpr std::string_view kScheduleLabel = "millrace.io/schedule";
inline constexpr std::string_view kScheduledTimeAnnotation = "millrace.io/scheduled-time";
inline constexpr std::string_view kScheduleConditionReady = "Ready";

struct ObservedSchedule {
  std::vector<nlohmann::json> runs;  // the Schedule's Pipelines
};

struct SchedulePlan {
  std::optional<nlohmann::json> create;  // the run to start now
  std::vector<std::string> cancel;       // active runs to cancel (Replace)
  std::vector<ChildRef> remove;          // finished runs past the history limits
  api::ScheduleStatus status;
  std::vector<PlannedEvent> events;
  std::optional<std::chrono::seconds> requeue_after;
};

// The run of `schedule` due at `due`.
std::string RunName(const api::Schedule& schedule, api::Time due);

// `zone` is the schedule's time zone as loaded (or why it did not load).
SchedulePlan PlanSchedule(const api::Schedule& schedule, const ObservedSchedule& observed,
                          const std::expected<api::TimeZone, std::string>& zone, api::Time now);

// A merge patch taking the schedule's status to `status`, or null when nothing changes.
nlohmann::json ScheduleStatusPatch(const api::Schedule& schedule,
                                   const api::ScheduleStatus& status);

}  // namespace millrace::reconcilers
