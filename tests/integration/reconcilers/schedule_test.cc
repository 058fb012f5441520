// Schedules end to end: the real millrace-controller binary against a real control plane whose
// pods run on kwok nodes, on the wall clock (every-minute schedules: these tests take minutes).
#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crds/duration.h"
#include "tests/support/cluster.h"
#include "tests/support/operator_test.h"

namespace millrace::testing {
namespace {

using std::chrono::minutes;

class ScheduleTest : public OperatorTest {
 protected:
  static void SetUpTestSuite() { StartSuite("schedule-operator.log"); }

  // The runs of schedule `name`, oldest due time first, as (due time, run).
  std::vector<std::pair<api::Time, json>> Runs(const std::string& name) const {
    const json list = Cluster::Get().KubectlJson(
        {"get", "pipelines", "-n", ns_, "-l", "millrace.io/schedule=" + name, "-o", "json"});
    std::map<api::Time, json> runs;
    for (const json& p : list["items"]) {
      const auto due = api::ParseTime(
          p["metadata"]["annotations"].value("millrace.io/scheduled-time", std::string()));
      if (due) runs[*due] = p;
    }
    return {runs.begin(), runs.end()};
  }

  // Waits until schedule `name` has at least `n` runs; returns them.
  std::vector<std::pair<api::Time, json>> WaitForRuns(const std::string& name, size_t n,
                                                      seconds timeout) const {
    std::vector<std::pair<api::Time, json>> runs;
    WaitFor([&] { return (runs = Runs(name)).size() >= n; }, timeout);
    return runs;
  }

  bool HasEvent(const std::string& name, const std::string& reason) const {
    const auto reasons = EventReasons(name);
    return std::ranges::find(reasons, reason) != reasons.end();
  }
};

// A Schedule `name` running every minute; `extra` is YAML at spec's indentation; its one step
// runs for `run_for`.
std::string EveryMinute(const std::string& name, const std::string& extra,
                        const std::string& run_for = "1s") {
  return "apiVersion: millrace.io/v1alpha1\nkind: Schedule\nmetadata: {name: " + name +
         "}\nspec:\n  schedule: \"* * * * *\"\n" + extra +
         "  pipeline:\n"
         "    spec:\n"
         "      params: [{name: at, value: \"{{schedule.time}}\"}]\n"
         "      steps:\n"
         "      - name: work\n"
         "        metadata: {annotations: {" +
         KwokStageDelay("pod-complete", run_for) +
         "}}\n"
         "        task: {role: Spout, image: busybox, args: [\"{{params.at}}\"]}\n";
}

api::Time CreatedAt(const json& object) {
  return *api::ParseTime(object["metadata"]["creationTimestamp"].get<std::string>());
}

TEST_F(ScheduleTest, AnEveryMinuteScheduleRunsOnTimeKeepsItsHistoryAndForbidAndReplaceHold) {
  C().Apply(EveryMinute("on-time", "  successfulRunsHistoryLimit: 1\n", "5s"), ns_);
  C().Apply(EveryMinute("forbid", "  concurrencyPolicy: Forbid\n", "300s"), ns_);
  C().Apply(EveryMinute("replace", "  concurrencyPolicy: Replace\n", "300s"), ns_);

  const auto on_time = WaitForRuns("on-time", 2, seconds(150));
  ASSERT_GE(on_time.size(), 2u);
  for (const auto& [due, run] : on_time) {
    EXPECT_EQ(due.time_since_epoch().count() % 60, 0) << "due on the minute";
    EXPECT_LE(CreatedAt(run) - due, seconds(5)) << run["metadata"]["name"] << " started late";
    EXPECT_GE(CreatedAt(run), due) << "never early";
    EXPECT_EQ(run["spec"]["params"][0]["value"], api::FormatTime(due))
        << "the run's parameter is its due time";
  }
  EXPECT_EQ(on_time[1].first - on_time[0].first, minutes(1));
  // Once the second run succeeded, the first is past the history limit of 1 and deleted.
  const std::string second = on_time[1].second["metadata"]["name"];
  EXPECT_EQ(Phase(WaitForPhase("pipeline", second, "Succeeded", seconds(60))), "Succeeded");
  EXPECT_TRUE(
      WaitFor([&] { return Get("pipeline", on_time[0].second["metadata"]["name"]).is_null(); },
              seconds(30)))
      << "the oldest succeeded run is deleted";

  // Replace: the second due time cancels the first run and starts its own.
  const auto replaced = WaitForRuns("replace", 2, seconds(90));
  ASSERT_GE(replaced.size(), 2u);
  const std::string first = replaced[0].second["metadata"]["name"];
  EXPECT_EQ(Phase(WaitForPhase("pipeline", first, "Cancelled", seconds(60))), "Cancelled");
  EXPECT_NE(Phase(Get("pipeline", replaced[1].second["metadata"]["name"])), "Cancelled");
  EXPECT_TRUE(HasEvent("replace", "ReplacedRun"));

  // Forbid: by now two due times have passed (the replace schedule saw both), one run exists.
  const json forbid = WaitForObject(
      "schedule", "forbid",
      [&](const json& s) {
        const auto last = api::ParseTime(s["status"].value("lastDueTime", std::string()));
        return last && *last >= replaced[1].first;
      },
      seconds(60));
  EXPECT_EQ(Runs("forbid").size(), 1u) << forbid.dump(2);
  EXPECT_TRUE(HasEvent("forbid", "SkippedRun"));
  EXPECT_EQ(forbid["status"]["active"].size(), 1u);
}

TEST_F(ScheduleTest, AfterTheOperatorWasDownAcrossThreeDueTimesTheStartingDeadlineDecides) {
  C().Apply(EveryMinute("lenient", "  startingDeadline: 5m\n"), ns_);
  C().Apply(EveryMinute("strict", "  startingDeadline: 15s\n"), ns_);
  api::Time next{};
  for (const char* name : {"lenient", "strict"}) {
    const json s = WaitForObject(
        "schedule", name, [](const json& o) { return o["status"].contains("nextScheduleTime"); },
        seconds(30));
    next = *api::ParseTime(s["status"]["nextScheduleTime"].get<std::string>());
  }
  ExpectCleanStop(*op_);
  // Down across the due times next, next+1m and next+2m; back 35 s after the last.
  const api::Time last = next + minutes(2);
  WaitFor(
      [&] {
        return api::Time(std::chrono::floor<seconds>(std::chrono::system_clock::now())) >=
               last + seconds(35);
      },
      seconds(240));
  ASSERT_TRUE(Runs("lenient").empty() && Runs("strict").empty()) << "nothing ran while down";
  op_ = StartOperator("schedule-restarted.log");

  // Within its 5-minute deadline, only the latest missed due time runs.
  const auto lenient = WaitForRuns("lenient", 1, seconds(60));
  ASSERT_EQ(lenient.size(), 1u);
  EXPECT_EQ(lenient[0].first, last);
  // Past its 15-second deadline, nothing runs; the miss is an event.
  const json strict = WaitForObject(
      "schedule", "strict",
      [&](const json& s) {
        return s["status"].value("lastDueTime", std::string()) == api::FormatTime(last);
      },
      seconds(60));
  EXPECT_EQ(strict["status"].value("lastDueTime", std::string()), api::FormatTime(last));
  EXPECT_TRUE(HasEvent("strict", "MissedSchedule"));
  EXPECT_FALSE(strict["status"].contains("lastScheduleTime"));
  // Neither made up a missed due time (runs of due times after the restart are on time, not
  // counted).
  const auto until_last = [&](const std::string& name) {
    return std::ranges::count_if(Runs(name), [&](const auto& run) { return run.first <= last; });
  };
  EXPECT_EQ(until_last("strict"), 0);
  EXPECT_EQ(until_last("lenient"), 1);
}

}  // namespace
}  // namespace millrace::testing
