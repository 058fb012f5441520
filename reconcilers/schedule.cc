#include "reconcilers/schedule.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <utility>

#include "crds/cron.h"
#include "crds/meta.h"
#include "crds/pipeline.h"
#include "crds/templates.h"
#include "reconcilers/object.h"

namespace millrace::reconcilers {
namespace {

using api::Json;
using std::chrono::seconds;
namespace templates = api::templates;

constexpr size_t kMaxActiveListed = 32;  // status.active's maxItems

struct RunView {
  const Json* object = nullptr;
  std::string name;
  std::string uid;
  api::Time due{};
  std::string phase;
  bool cancel_requested = false;

  bool Finished() const {
    return phase == "Succeeded" || phase == "Failed" || phase == "Cancelled";
  }
};

// The newest due time in (after, until], searching back from `until` in growing windows so that a
// frequent schedule never lists a long past; a window with more due times than one listing holds
// is listed on from its last.
std::optional<api::Time> Latest(const api::cron::Schedule& cron, const api::TimeZone& zone,
                                api::Time after, api::Time until) {
  using std::chrono::days;
  using std::chrono::hours;
  constexpr size_t kListed = 100000;
  for (const seconds window : {seconds{hours{1}}, seconds{days{1}}, seconds{days{32}},
                               seconds{days{366}}, seconds{days{5 * 366}}}) {
    const api::Time from = std::max(after, until - window);
    auto due = api::cron::Between(cron, zone, from, until, kListed);
    while (due.size() == kListed) {
      auto more = api::cron::Between(cron, zone, due.back(), until, kListed);
      if (more.empty()) break;
      due = std::move(more);
    }
    if (!due.empty()) return due.back();
    if (from == after) break;
  }
  return std::nullopt;
}

// The values a run's parameters may use.
templates::Values RunValues(const api::TimeZone& zone, api::Time due) {
  const auto local = std::chrono::floor<std::chrono::days>(zone.ToLocal(due));
  const std::chrono::year_month_day date{local};
  const auto hour = std::chrono::floor<std::chrono::hours>(zone.ToLocal(due) - local).count();
  std::array<char, 16> day{};
  std::snprintf(day.data(), day.size(), "%04d-%02u-%02u", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
  std::array<char, 4> hh{};
  std::snprintf(hh.data(), hh.size(), "%02d", static_cast<int>(hour));
  return {{"schedule.time", api::FormatTime(due)},
          {"schedule.date", day.data()},
          {"schedule.hour", hh.data()},
          {"schedule.unix", std::to_string(due.time_since_epoch().count())}};
}

class Planner {
 public:
  Planner(const api::Schedule& schedule, const ObservedSchedule& observed,
          const std::expected<api::TimeZone, std::string>& zone, api::Time now)
      : s_(schedule), observed_(observed), zone_(zone), now_(now) {
    plan_.status = schedule.status.value_or(api::ScheduleStatus{});
    plan_.status.observed_generation = schedule.metadata.generation;
  }

  SchedulePlan Run() {
    Observe();
    History();
    Decide();
    std::vector<std::string> active;
    for (const auto& r : runs_) {
      if (!r.Finished() && active.size() < kMaxActiveListed) active.push_back(r.name);
    }
    if (plan_.create && active.size() < kMaxActiveListed) {
      active.push_back((*plan_.create)["metadata"]["name"]);
    }
    plan_.status.active = std::move(active);
    return std::move(plan_);
  }

 private:
  api::ScheduleStatus& status() { return plan_.status; }

  void SetReady(api::ConditionStatus s, std::string reason, std::string message) {
    api::SetCondition(status().conditions,
                      MakeCondition(kScheduleConditionReady, s, std::move(reason),
                                    std::move(message), s_.metadata.generation, now_));
  }

  void Observe() {
    for (const Json& p : observed_.runs) {
      const Json& meta = Sub(p, "metadata");
      RunView r{.object = &p,
                .name = Str(meta, "name"),
                .uid = Str(meta, "uid"),
                .due = {},
                .phase = Str(Sub(p, "status"), "phase"),
                .cancel_requested = Sub(Sub(p, "spec"), "cancel") == Json(true)};
      auto due = api::ParseTime(Str(Sub(meta, "annotations"), kScheduledTimeAnnotation));
      if (!due) due = api::ParseTime(Str(meta, "creationTimestamp"));
      r.due = due.value_or(now_);
      runs_.push_back(std::move(r));
    }
    std::ranges::sort(runs_, [](const RunView& a, const RunView& b) {
      return std::tie(a.due, a.name) < std::tie(b.due, b.name);
    });
  }

  // Deletes the oldest finished runs past the history limits.
  void History() {
    const auto keep = [&](bool succeeded, int32_t limit) {
      std::vector<const RunView*> finished;
      for (const auto& r : runs_) {
        if (r.Finished() && (r.phase == "Succeeded") == succeeded) finished.push_back(&r);
      }
      const size_t allowed = static_cast<size_t>(std::max(limit, 0));
      for (size_t i = 0; i + allowed < finished.size(); ++i) {
        ChildRef ref = ChildRefOf(*finished[i]->object);
        ref.uid = finished[i]->uid;
        plan_.remove.push_back(std::move(ref));
      }
    };
    keep(true, s_.spec.successful_runs_history_limit.value_or(3));
    keep(false, s_.spec.failed_runs_history_limit.value_or(1));
  }

  void Decide() {
    auto cron = api::cron::Parse(s_.spec.schedule);
    if (!cron) {
      status().next_schedule_time.reset();
      SetReady(api::ConditionStatus::kFalse, "InvalidSchedule", "spec.schedule: " + cron.error());
      return;
    }
    if (!zone_) {
      status().next_schedule_time.reset();
      SetReady(api::ConditionStatus::kFalse, "UnknownTimeZone", "spec.timeZone: " + zone_.error());
      return;
    }
    const api::TimeZone& zone = *zone_;
    if (s_.spec.suspend.value_or(false)) {
      status().next_schedule_time.reset();
      SetReady(api::ConditionStatus::kTrue, "Suspended",
               "suspended: no run starts until spec.suspend is false");
      return;
    }
    // Due times after the newest one acted on, and after the schedule was made.
    api::Time after = s_.metadata.creation_timestamp.value_or(now_);
    after = std::max(after, status().last_due_time.value_or(after));
    if (const auto due = Latest(*cron, zone, after, now_)) Due(*due, zone);

    const auto next = api::cron::Next(*cron, zone, now_);
    status().next_schedule_time = next;
    if (!next) {
      SetReady(api::ConditionStatus::kTrue, "NoNextRun",
               "the schedule has no due time in the next 5 years");
      return;
    }
    RequeueWithin(plan_.requeue_after, std::chrono::ceil<seconds>(*next - now_));
    SetReady(api::ConditionStatus::kTrue, "Scheduled",
             "next run at " + api::FormatTime(*next) + " (" + zone.name() + ")");
  }

  void Due(api::Time due, const api::TimeZone& zone) {
    status().last_due_time = due;
    const std::string at = api::FormatTime(due);
    const std::string name = RunName(s_, due);
    std::vector<const RunView*> active;
    bool made = false;  // by a reconcile whose status write was lost: that due time has its run
    for (const auto& r : runs_) {
      if (r.name == name) {
        made = true;
      } else if (!r.Finished()) {
        active.push_back(&r);
      }
    }
    const auto policy = s_.spec.concurrency_policy.value_or(api::ConcurrencyPolicy::kAllow);
    if (!made) {
      const auto& deadline = s_.spec.starting_deadline;
      if (deadline && now_ - due > deadline->value) {
        plan_.events.push_back({"Warning", "MissedSchedule",
                                "the run due at " + at + " did not start within startingDeadline " +
                                    deadline->text + "; the next due time runs"});
        return;
      }
      if (policy == api::ConcurrencyPolicy::kForbid && !active.empty()) {
        plan_.events.push_back({"Normal", "SkippedRun",
                                "skipped the run due at " + at + ": " + active.front()->name +
                                    " is still running (concurrencyPolicy Forbid)"});
        return;
      }
      auto run = RunFor(due, zone);
      if (!run) {
        plan_.events.push_back({"Warning", "InvalidTemplate", run.error()});
        return;
      }
      plan_.create = std::move(*run);
      plan_.events.push_back(
          {"Normal", "RunStarted", "created Pipeline " + name + " for the run due at " + at});
    }
    status().last_schedule_time = due;
    if (policy != api::ConcurrencyPolicy::kReplace) return;
    // The reconciler cancels after the new run was created: one that cannot be made replaces
    // nothing.
    for (const RunView* r : active) {
      if (r->cancel_requested) continue;
      plan_.cancel.push_back(r->name);
      plan_.events.push_back({"Normal", "ReplacedRun",
                              "cancelled " + r->name + " to start the run due at " + at +
                                  " (concurrencyPolicy Replace)"});
    }
  }

  std::expected<Json, std::string> RunFor(api::Time due, const api::TimeZone& zone) const {
    const templates::Values values = RunValues(zone, due);
    Json spec = api::Encode(s_.spec.pipeline.spec);
    if (spec.contains("params")) {
      for (Json& param : spec["params"]) {
        for (const char* field : {"value", "default"}) {
          if (!param.contains(field)) continue;
          auto v = templates::Substitute(param[field].get<std::string>(), values);
          if (!v) return std::unexpected("params " + param.value("name", "") + ": " + v.error());
          param[field] = std::move(*v);
        }
      }
    }
    Json labels = Json::object();
    Json annotations = Json::object();
    if (const auto& m = s_.spec.pipeline.metadata) {
      for (const auto& [k, v] : m->labels) labels[k] = v;
      for (const auto& [k, v] : m->annotations) annotations[k] = v;
    }
    labels[kManagedByLabel] = kManagedByValue;
    labels[kScheduleLabel] = Shorten(s_.metadata.name, 63);
    annotations[kScheduledTimeAnnotation] = api::FormatTime(due);
    return Json{{"apiVersion", api::kApiVersion},
                {"kind", api::Pipeline::kKind},
                {"metadata",
                 {{"name", RunName(s_, due)},
                  {"namespace", s_.metadata.namespace_},
                  {"labels", std::move(labels)},
                  {"annotations", std::move(annotations)},
                  {"ownerReferences",
                   Json::array({api::ControllerReference(api::kApiVersion, api::Schedule::kKind,
                                                         s_.metadata.name, s_.metadata.uid)})}}},
                {"spec", std::move(spec)}};
  }

  const api::Schedule& s_;
  const ObservedSchedule& observed_;
  const std::expected<api::TimeZone, std::string>& zone_;
  api::Time now_;
  SchedulePlan plan_;
  std::vector<RunView> runs_;
};

}  // namespace

std::string RunName(const api::Schedule& schedule, api::Time due) {
  const auto minutes = std::chrono::floor<std::chrono::minutes>(due.time_since_epoch()).count();
  return ChildName(schedule.metadata.name, std::to_string(minutes));
}

SchedulePlan PlanSchedule(const api::Schedule& schedule, const ObservedSchedule& observed,
                          const std::expected<api::TimeZone, std::string>& zone, api::Time now) {
  return Planner(schedule, observed, zone, now).Run();
}

Json ScheduleStatusPatch(const api::Schedule& schedule, const api::ScheduleStatus& status) {
  return StatusPatchFor(schedule, status);
}

}  // namespace millrace::reconcilers
