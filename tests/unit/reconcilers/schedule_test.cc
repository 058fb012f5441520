#include "reconcilers/schedule.h"

#include <string>
#include <vector>

#include "crds/defaults.h"
#include "tests/unit/reconcilers/plan_test.h"

namespace millrace::reconcilers {
namespace {

using namespace plan_test;
using api::Time;
using std::chrono::minutes;

Time At(const char* rfc3339) { return *api::ParseTime(rfc3339); }

// A Schedule `spec_extra` (YAML at spec's indentation) made at `created`, with `status`.
api::Schedule ScheduleFrom(const std::string& spec_extra, const char* created,
                           const Json& status = nullptr) {
  const std::string yaml = "metadata: {name: nightly, namespace: ml, creationTimestamp: \"" +
                           std::string(created) + "\"}\nspec:\n" + spec_extra +
                           "  pipeline:\n"
                           "    metadata: {labels: {team: ml}}\n"
                           "    spec:\n"
                           "      params: [{name: day, value: \"{{schedule.date}}\"}, "
                           "{name: at, value: \"{{schedule.time}} {{schedule.hour}}\"}]\n"
                           "      steps: [{name: a, task: {role: Spout, image: busybox}}]\n";
  auto s = api::testing::ObjectFrom<api::Schedule>(api::testing::YamlToJson(yaml).at(0), "uid-s",
                                                   status);
  api::Default(s);
  return s;
}

// A run of schedule "nightly" due at `due`, in `phase`.
Json RunOf(Time due, const std::string& phase, bool cancel = false) {
  return Json{
      {"metadata",
       {{"name",
         "nightly-" + std::to_string(std::chrono::floor<minutes>(due.time_since_epoch()).count())},
        {"namespace", "ml"},
        {"uid", "run-" + api::FormatTime(due)},
        {"annotations", {{"millrace.io/scheduled-time", api::FormatTime(due)}}}}},
      {"apiVersion", "millrace.io/v1alpha1"},
      {"kind", "Pipeline"},
      {"spec", {{"cancel", cancel}}},
      {"status", {{"phase", phase}}}};
}

const std::expected<api::TimeZone, std::string> kUtc = api::TimeZone::Utc();

std::vector<std::string> Reasons(const SchedulePlan& plan) {
  std::vector<std::string> reasons;
  for (const auto& e : plan.events) reasons.push_back(e.reason);
  return reasons;
}

TEST(SchedulePlan, AnEveryMinuteScheduleStartsOneRunPerDueTimeWithItsParameters) {
  const auto s = ScheduleFrom("  schedule: \"* * * * *\"\n", "2026-11-23T10:00:20Z");
  SchedulePlan plan = PlanSchedule(s, {}, kUtc, At("2026-11-23T10:00:30Z"));
  EXPECT_FALSE(plan.create);
  EXPECT_EQ(plan.status.next_schedule_time, At("2026-11-23T10:01:00Z"));
  EXPECT_EQ(plan.requeue_after, seconds{30});

  plan = PlanSchedule(s, {}, kUtc, At("2026-11-23T10:01:00Z"));
  ASSERT_TRUE(plan.create);
  const Json& run = *plan.create;
  EXPECT_EQ(run["metadata"]["name"], RunName(s, At("2026-11-23T10:01:00Z")));
  EXPECT_EQ(run["metadata"]["labels"]["team"], "ml");
  EXPECT_EQ(run["metadata"]["labels"]["millrace.io/schedule"], "nightly");
  EXPECT_EQ(run["metadata"]["annotations"]["millrace.io/scheduled-time"], "2026-11-23T10:01:00Z");
  EXPECT_EQ(run["metadata"]["ownerReferences"][0]["uid"], "uid-s");
  EXPECT_EQ(run["spec"]["params"][0]["value"], "2026-11-23");
  EXPECT_EQ(run["spec"]["params"][1]["value"], "2026-11-23T10:01:00Z 10");
  EXPECT_EQ(plan.status.last_schedule_time, At("2026-11-23T10:01:00Z"));
  EXPECT_EQ(plan.status.last_due_time, At("2026-11-23T10:01:00Z"));
  EXPECT_THAT(plan.status.active, ElementsAre(run["metadata"]["name"].get<std::string>()));

  // The status written back: the same due time never runs again.
  api::Schedule after = s;
  after.status = plan.status;
  plan = PlanSchedule(after, {.runs = {RunOf(At("2026-11-23T10:01:00Z"), "Running")}}, kUtc,
                      At("2026-11-23T10:01:05Z"));
  EXPECT_FALSE(plan.create);
  EXPECT_EQ(plan.requeue_after, seconds{55});
}

TEST(SchedulePlan, ForbidSkipsADueTimeWhileARunIsActiveAndReplaceCancelsIt) {
  const Json status = {{"lastDueTime", "2026-11-23T10:01:00Z"}};
  const ObservedSchedule active{.runs = {RunOf(At("2026-11-23T10:01:00Z"), "Running")}};
  const Time now = At("2026-11-23T10:02:01Z");

  auto forbid = ScheduleFrom("  schedule: \"* * * * *\"\n  concurrencyPolicy: Forbid\n",
                             "2026-11-23T10:00:00Z", status);
  SchedulePlan plan = PlanSchedule(forbid, active, kUtc, now);
  EXPECT_FALSE(plan.create);
  EXPECT_THAT(Reasons(plan), ElementsAre("SkippedRun"));
  EXPECT_EQ(plan.status.last_due_time, At("2026-11-23T10:02:00Z")) << "the skipped time is done";

  auto replace = ScheduleFrom("  schedule: \"* * * * *\"\n  concurrencyPolicy: Replace\n",
                              "2026-11-23T10:00:00Z", status);
  plan = PlanSchedule(replace, active, kUtc, now);
  ASSERT_TRUE(plan.create);
  EXPECT_THAT(plan.cancel, ElementsAre(RunOf(At("2026-11-23T10:01:00Z"), "")["metadata"]["name"]));
  EXPECT_THAT(Reasons(plan), ElementsAre("RunStarted", "ReplacedRun"));

  auto allow = ScheduleFrom("  schedule: \"* * * * *\"\n", "2026-11-23T10:00:00Z", status);
  plan = PlanSchedule(allow, active, kUtc, now);
  EXPECT_TRUE(plan.create);
  EXPECT_THAT(plan.cancel, IsEmpty());
}

TEST(SchedulePlan, ARunWhoseStatusWriteWasLostIsThatDueTimesRunNotOneToReplaceOrSkip) {
  // The run due at 10:02 was created; the status write recording it was lost.
  const Json status = {{"lastDueTime", "2026-11-23T10:01:00Z"}};
  const ObservedSchedule observed{.runs = {RunOf(At("2026-11-23T10:01:00Z"), "Running"),
                                           RunOf(At("2026-11-23T10:02:00Z"), "Running")}};
  const Time now = At("2026-11-23T10:02:05Z");
  auto replace = ScheduleFrom("  schedule: \"* * * * *\"\n  concurrencyPolicy: Replace\n",
                              "2026-11-23T10:00:00Z", status);
  SchedulePlan plan = PlanSchedule(replace, observed, kUtc, now);
  EXPECT_FALSE(plan.create);
  EXPECT_THAT(plan.cancel, ElementsAre(observed.runs[0]["metadata"]["name"]))
      << "only the older run is replaced";
  EXPECT_EQ(plan.status.last_schedule_time, At("2026-11-23T10:02:00Z"));
  EXPECT_EQ(plan.status.last_due_time, At("2026-11-23T10:02:00Z"));

  auto forbid = ScheduleFrom("  schedule: \"* * * * *\"\n  concurrencyPolicy: Forbid\n",
                             "2026-11-23T10:00:00Z", status);
  plan = PlanSchedule(forbid, observed, kUtc, now);
  EXPECT_THAT(Reasons(plan), IsEmpty()) << "not skipped: it runs";
  EXPECT_EQ(plan.status.last_schedule_time, At("2026-11-23T10:02:00Z"));
}

TEST(SchedulePlan, ADenseScheduleResumedMonthsLaterRunsItsLatestDueTime) {
  // Every minute from January to June: resumed in September, the latest due time is June's last
  // minute, past more due times than one listing holds.
  auto s = ScheduleFrom("  schedule: \"* * * 1-6 *\"\n", "2026-01-01T00:00:00Z",
                        {{"lastDueTime", "2026-03-01T00:00:00Z"}});
  const SchedulePlan plan = PlanSchedule(s, {}, kUtc, At("2026-09-15T12:00:00Z"));
  ASSERT_TRUE(plan.create);
  EXPECT_EQ((*plan.create)["metadata"]["annotations"]["millrace.io/scheduled-time"],
            "2026-06-30T23:59:00Z");
  EXPECT_EQ(plan.status.next_schedule_time, At("2027-01-01T00:00:00Z"));
}

TEST(SchedulePlan, AfterDowntimeOnlyTheLatestDueTimeRunsAndOnlyWithinTheStartingDeadline) {
  // Due at 10:01, 10:02 and 10:03 while the operator was down; it is back at 10:03:30.
  const Json status = {{"lastDueTime", "2026-11-23T10:00:00Z"}};
  const Time now = At("2026-11-23T10:03:30Z");
  auto within = ScheduleFrom("  schedule: \"* * * * *\"\n  startingDeadline: 1m\n",
                             "2026-11-23T09:00:00Z", status);
  SchedulePlan plan = PlanSchedule(within, {}, kUtc, now);
  ASSERT_TRUE(plan.create);
  EXPECT_EQ((*plan.create)["metadata"]["annotations"]["millrace.io/scheduled-time"],
            "2026-11-23T10:03:00Z");

  auto past = ScheduleFrom("  schedule: \"* * * * *\"\n  startingDeadline: 10s\n",
                           "2026-11-23T09:00:00Z", status);
  plan = PlanSchedule(past, {}, kUtc, now);
  EXPECT_FALSE(plan.create);
  EXPECT_THAT(Reasons(plan), ElementsAre("MissedSchedule"));
  EXPECT_EQ(plan.status.last_due_time, At("2026-11-23T10:03:00Z"));
  EXPECT_FALSE(plan.status.last_schedule_time);
  EXPECT_EQ(plan.status.next_schedule_time, At("2026-11-23T10:04:00Z"));
}

TEST(SchedulePlan, ATimeZoneAcrossDaylightSavingRunsAtTheSameWallTime) {
  const auto zone = api::TimeZone::Load("America/New_York");
  ASSERT_TRUE(zone) << zone.error();
  const std::string spec = "  schedule: \"0 9 * * *\"\n  timeZone: America/New_York\n";
  // 09:00 EST is 14:00Z; from 2026-03-08 on, 09:00 EDT is 13:00Z.
  auto s = ScheduleFrom(spec, "2026-03-06T00:00:00Z", {{"lastDueTime", "2026-03-07T14:00:00Z"}});
  SchedulePlan plan = PlanSchedule(s, {}, *zone, At("2026-03-07T14:00:05Z"));
  EXPECT_EQ(plan.status.next_schedule_time, At("2026-03-08T13:00:00Z"));
  plan = PlanSchedule(s, {}, *zone, At("2026-03-08T13:00:00Z"));
  ASSERT_TRUE(plan.create);
  EXPECT_EQ((*plan.create)["spec"]["params"][0]["value"], "2026-03-08");
  EXPECT_EQ((*plan.create)["spec"]["params"][1]["value"], "2026-03-08T13:00:00Z 09");

  const std::expected<api::TimeZone, std::string> unknown = std::unexpected("no such zone");
  plan = PlanSchedule(s, {}, unknown, At("2026-03-08T13:00:00Z"));
  EXPECT_FALSE(plan.create);
  EXPECT_EQ(plan.status.conditions.at(0).reason, "UnknownTimeZone");
}

TEST(SchedulePlan, FinishedRunsPastTheHistoryLimitsAreDeletedOldestFirst) {
  auto s = ScheduleFrom("  schedule: \"@hourly\"\n  successfulRunsHistoryLimit: 2\n",
                        "2026-11-23T00:00:00Z", {{"lastDueTime", "2026-11-23T06:00:00Z"}});
  ObservedSchedule observed;
  for (int h = 1; h <= 4; ++h) {
    observed.runs.push_back(
        RunOf(At(("2026-11-23T0" + std::to_string(h) + ":00:00Z").c_str()), "Succeeded"));
  }
  observed.runs.push_back(RunOf(At("2026-11-23T05:00:00Z"), "Failed"));
  observed.runs.push_back(RunOf(At("2026-11-23T06:00:00Z"), "Cancelled"));
  const SchedulePlan plan = PlanSchedule(s, observed, kUtc, At("2026-11-23T06:30:00Z"));
  std::vector<std::string> removed;
  for (const auto& r : plan.remove) removed.push_back(r.name);
  EXPECT_THAT(removed, ElementsAre(observed.runs[0]["metadata"]["name"],
                                   observed.runs[1]["metadata"]["name"],
                                   observed.runs[4]["metadata"]["name"]));
  EXPECT_EQ(plan.remove[0].uid, "run-2026-11-23T01:00:00Z") << "deletes are conditional on uid";
}

TEST(SchedulePlan, ASuspendedScheduleStartsNothingAndHasNoNextRun) {
  auto s = ScheduleFrom("  schedule: \"* * * * *\"\n  suspend: true\n", "2026-11-23T10:00:00Z");
  const SchedulePlan plan = PlanSchedule(s, {}, kUtc, At("2026-11-23T10:05:00Z"));
  EXPECT_FALSE(plan.create);
  EXPECT_FALSE(plan.status.next_schedule_time);
  EXPECT_EQ(plan.status.conditions.at(0).reason, "Suspended");
  EXPECT_FALSE(plan.requeue_after);
}

}  // namespace
}  // namespace millrace::reconcilers
