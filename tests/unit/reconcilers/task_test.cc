#include "reconcilers/task.h"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "reconcilers/names.h"
#include "tests/unit/reconcilers/plan_test.h"

namespace millrace::reconcilers {
namespace {

using namespace plan_test;
using api::TaskPhase;

api::Task TaskFrom(const std::string& yaml, const Json& status = nullptr) {
  return api::testing::ObjectFrom<api::Task>(api::testing::YamlToJson(yaml).at(0), "uid-1", status);
}

const std::string kBatch = R"(
metadata: {name: ingest, namespace: churn, labels: {team: data}}
spec:
  role: Spout
  output: {batch: {uri: "s3://lake/raw", partition: date=2026-11-22}}
  image: busybox
  resources: {requests: {cpu: "1"}}
  retries: {limit: 2, backoff: {duration: 10s, factor: 3, maxDuration: 1m}}
)";

Json JobWith(const std::string& name, int attempt, const std::string& condition = "",
             const std::string& reason = "", const std::string& at = "2026-11-23T10:00:00Z") {
  Json job{{"apiVersion", "batch/v1"},
           {"kind", "Job"},
           {"metadata",
            {{"name", name},
             {"namespace", "churn"},
             {"uid", "job-uid-" + std::to_string(attempt)},
             {"creationTimestamp", "2026-11-23T09:59:00Z"},
             {"labels", {{"millrace.io/attempt", std::to_string(attempt)}}}}},
           {"status", Json::object()}};
  if (!condition.empty()) {
    job["status"]["conditions"] = Json::array({{{"type", condition},
                                                {"status", "True"},
                                                {"reason", reason},
                                                {"lastTransitionTime", at}}});
  }
  return job;
}

// A pod of attempt `attempt`, controlled by that attempt's Job (JobWith's uid) unless `job_uid`
// names another.
Json PodWith(int attempt, const std::string& phase, const Json& state,
             const std::string& job_uid = "") {
  const std::string owner = job_uid.empty() ? "job-uid-" + std::to_string(attempt) : job_uid;
  return Json{{"metadata",
               {{"name", "ingest-" + std::to_string(attempt) + "-abc"},
                {"namespace", "churn"},
                {"creationTimestamp", "2026-11-23T09:59:01Z"},
                {"labels", {{"millrace.io/attempt", std::to_string(attempt)}}},
                {"ownerReferences", Json::array({{{"apiVersion", "batch/v1"},
                                                  {"kind", "Job"},
                                                  {"name", "ingest-" + std::to_string(attempt)},
                                                  {"uid", owner},
                                                  {"controller", true}}})}}},
              {"status",
               {{"phase", phase},
                {"containerStatuses", Json::array({{{"name", "main"}, {"state", state}}})}}}};
}

Json Terminated(int code, const std::string& reason, const std::string& message = "") {
  return Json{{"terminated", {{"exitCode", code}, {"reason", reason}, {"message", message}}}};
}

// What the cache shows of a failed attempt `n` of kBatch: its Job ingest-<n> failed, and its pod
// terminated with `code`, `reason` and `message`.
ObservedTask FailedAttempt(int n, int code, const std::string& reason,
                           const std::string& message = "") {
  ObservedTask observed;
  observed.jobs = {JobWith("ingest-" + std::to_string(n), n, "Failed", "BackoffLimitExceeded")};
  observed.pods = {PodWith(n, "Failed", Terminated(code, reason, message))};
  return observed;
}

const api::Condition& Ready(const TaskPlan& plan) {
  const api::Condition* c = api::FindCondition(plan.status.conditions, kTaskConditionReady);
  if (c == nullptr) throw std::runtime_error("no Ready condition");
  return *c;
}

TEST(TaskNames, ChildNamesAreDeterministicDnsLabels) {
  EXPECT_EQ(ChildName("ingest", "1"), "ingest-1");
  const std::string long_name(80, 'a');
  const std::string a = ChildName(long_name, "12");
  EXPECT_LE(a.size(), 63u);
  EXPECT_EQ(a, ChildName(long_name, "12"));
  EXPECT_NE(a, ChildName(long_name + "b", "12"));
  EXPECT_TRUE(a.ends_with("-12"));
}

// A DNS label: 1-63 of a-z, 0-9 and '-', starting and ending with a letter or digit.
bool IsDnsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

TEST(TaskNames, EveryOwnerAndStepTheSchemaAllowsGivesAValidChildName) {
  const std::string step63 = "s" + std::string(61, '-') + "x";  // the longest step name allowed
  const std::string step_long = std::string(63, 'b');
  for (const std::string& owner : {std::string("p"), std::string(40, 'a'), std::string(63, 'a'),
                                   std::string(200, 'c') + "-d"}) {
    for (const std::string& step : {std::string("train"), step63, step_long}) {
      const std::string name = ChildName(owner, step);
      EXPECT_TRUE(IsDnsLabel(name)) << owner << " + " << step << " -> " << name;
      EXPECT_EQ(name, ChildName(owner, step));
      // The Task of that name gets Jobs named after it, and they must be valid too.
      EXPECT_TRUE(IsDnsLabel(ChildName(name, "12"))) << ChildName(name, "12");
    }
    EXPECT_NE(ChildName(owner, step_long), ChildName(owner, step_long.substr(1) + "c"));
  }
  // Names earlier releases made are made again the same, so an upgrade finds the children it made:
  // the whole name when it fits, else the owner's prefix, a hash of the whole and the suffix.
  EXPECT_EQ(ChildName(std::string(40, 'a'), "train"), std::string(40, 'a') + "-train");
  const std::string owner(40, 'p'), suffix(50, 's');
  EXPECT_EQ(ChildName(owner, suffix),
            std::string(3, 'p') + "-" + Hex32(owner + "-" + suffix) + "-" + suffix);
}

TEST(TaskRetryDelay, GrowsByFactorUpToTheCap) {
  const api::Task t = TaskFrom(kBatch);
  const api::Retries& r = *t.spec.retries;
  EXPECT_EQ(RetryDelay(r, 1), seconds{10});
  EXPECT_EQ(RetryDelay(r, 2), seconds{30});
  EXPECT_EQ(RetryDelay(r, 3), seconds{60});  // 90s capped at 1m
  api::Retries defaults;
  EXPECT_EQ(RetryDelay(defaults, 1), seconds{10});
  EXPECT_EQ(RetryDelay(defaults, 2), seconds{20});
  EXPECT_EQ(RetryDelay(defaults, 20), seconds{600});
}

TEST(TaskJob, CarriesTheContainerEnvLabelsAndNoJobRetries) {
  const api::Task t = TaskFrom(kBatch);
  const Json job = TaskJob(t, 2, std::string("millrace-zone-churn"));
  EXPECT_EQ(job["metadata"]["name"], "ingest-2");
  EXPECT_EQ(job["metadata"]["labels"]["millrace.io/attempt"], "2");
  EXPECT_EQ(job["metadata"]["ownerReferences"][0]["uid"], "uid-1");
  EXPECT_EQ(job["metadata"]["ownerReferences"][0]["controller"], true);
  EXPECT_EQ(job["spec"]["backoffLimit"], 0);
  const Json& pod = job["spec"]["template"];
  EXPECT_EQ(pod["metadata"]["labels"]["team"], "data");  // the task's labels reach the pod
  EXPECT_EQ(pod["metadata"]["labels"]["millrace.io/task"], "ingest");
  EXPECT_EQ(pod["spec"]["restartPolicy"], "Never");
  EXPECT_EQ(pod["spec"]["priorityClassName"], "millrace-zone-churn");
  const Json& c = pod["spec"]["containers"][0];
  EXPECT_EQ(c["name"], "main");
  EXPECT_EQ(c["resources"]["requests"]["cpu"], "1");
  std::map<std::string, std::string> env;
  for (const Json& e : c["env"]) env[e["name"]] = e.value("value", "");
  EXPECT_EQ(env["MILLRACE_OUTPUT_URI"], "s3://lake/raw");
  EXPECT_EQ(env["MILLRACE_OUTPUT_PARTITION"], "date=2026-11-22");
  EXPECT_EQ(env["MILLRACE_OUTPUT_RUN_URI"], "s3://lake/raw/date=2026-11-22/run=uid-1/");
  EXPECT_EQ(env["MILLRACE_ATTEMPT"], "2");
  EXPECT_FALSE(job["spec"].contains("activeDeadlineSeconds"));
}

TEST(TaskPlan, FirstReconcileCreatesAttemptOne) {
  const TaskPlan plan = PlanTask(TaskFrom(kBatch), {}, kT0);
  ASSERT_TRUE(plan.create_job);
  EXPECT_EQ((*plan.create_job)["metadata"]["name"], "ingest-1");
  EXPECT_EQ(plan.status.attempts, 1);
  EXPECT_EQ(plan.status.phase, TaskPhase::kPending);
  EXPECT_EQ(plan.status.start_time, kT0);
  ASSERT_EQ(plan.events.size(), 1u);
  EXPECT_EQ(plan.events[0].reason, "AttemptStarted");
}

TEST(TaskPlan, ALaterJobInTheCacheIsAdoptedNotCreatedAgain) {
  // A crash lost the status write after attempt 2's Job was made: the Job is found, not remade.
  ObservedTask observed;
  observed.jobs = {JobWith("ingest-1", 1, "Failed", "BackoffLimitExceeded"),
                   JobWith("ingest-2", 2)};
  const api::Task t = TaskFrom(kBatch, Json{{"attempts", 1}, {"phase", "Running"}});
  const TaskPlan plan = PlanTask(t, observed, kT0 + seconds{30});
  EXPECT_FALSE(plan.create_job);
  EXPECT_EQ(plan.status.attempts, 2);
  EXPECT_EQ(plan.status.children->job, "ingest-2");
  EXPECT_EQ(Ready(plan).reason, "Starting");
}

TEST(TaskPlan, RunningPodMakesTheTaskRunning) {
  ObservedTask observed;
  observed.jobs = {JobWith("ingest-1", 1)};
  observed.pods = {PodWith(1, "Running", Json{{"running", Json::object()}})};
  const TaskPlan plan = PlanTask(TaskFrom(kBatch, Json{{"attempts", 1}}), observed, kT0);
  EXPECT_EQ(plan.status.phase, TaskPhase::kRunning);
  EXPECT_EQ(Ready(plan).reason, "Running");
  ASSERT_EQ(plan.events.size(), 1u);
  EXPECT_EQ(plan.events[0].reason, "Running");
}

TEST(TaskPlan, FailedAttemptWaitsOutTheBackoffThenRetries) {
  const ObservedTask observed = FailedAttempt(1, 3, "Error", "bad row");
  const api::Task t = TaskFrom(kBatch, Json{{"attempts", 1}, {"phase", "Running"}});

  const TaskPlan waiting = PlanTask(t, observed, kT0 + seconds{4});
  EXPECT_FALSE(waiting.create_job);
  EXPECT_EQ(waiting.status.phase, TaskPhase::kRunning);
  EXPECT_EQ(waiting.status.next_retry_time, kT0 + seconds{10});
  EXPECT_EQ(waiting.requeue_after, seconds{6});
  EXPECT_EQ(waiting.status.failure->exit_code, 3);
  EXPECT_EQ(waiting.status.failure->reason, "Error");
  EXPECT_EQ(Ready(waiting).reason, "RetryScheduled");
  ASSERT_EQ(waiting.events.size(), 1u);
  EXPECT_EQ(waiting.events[0].reason, "AttemptFailed");
  EXPECT_THAT(waiting.events[0].note, HasSubstr("exit code 3"));

  const TaskPlan retry = PlanTask(t, observed, kT0 + seconds{10});
  ASSERT_TRUE(retry.create_job);
  EXPECT_EQ((*retry.create_job)["metadata"]["name"], "ingest-2");
  EXPECT_EQ(retry.status.attempts, 2);
  EXPECT_FALSE(retry.status.next_retry_time);
  // This failure was first seen after its backoff ran out: reported as it is retried.
  ASSERT_EQ(retry.events.size(), 2u);
  EXPECT_EQ(retry.events[0].reason, "AttemptFailed");
  EXPECT_THAT(retry.events[0].note, HasSubstr("retrying now"));
  EXPECT_EQ(retry.events[1].reason, "AttemptStarted");

  // One seen in time was reported when its retry was scheduled: not again.
  const api::Task scheduled =
      TaskFrom(kBatch, Json{{"attempts", 1},
                            {"phase", "Running"},
                            {"nextRetryTime", api::FormatTime(kT0 + seconds{10})}});
  const TaskPlan rescheduled = PlanTask(scheduled, observed, kT0 + seconds{10});
  ASSERT_EQ(rescheduled.events.size(), 1u);
  EXPECT_EQ(rescheduled.events[0].reason, "AttemptStarted");
}

TEST(TaskPlan, LastAttemptFailureFailsTheTaskWithExitCodeAndReason) {
  const ObservedTask observed = FailedAttempt(3, 137, "Error", "killed");
  const api::Task t = TaskFrom(kBatch, Json{{"attempts", 3}, {"phase", "Running"}});
  const TaskPlan plan = PlanTask(t, observed, kT0);
  EXPECT_FALSE(plan.create_job);
  EXPECT_EQ(plan.status.phase, TaskPhase::kFailed);
  EXPECT_EQ(plan.status.failure->exit_code, 137);
  EXPECT_EQ(plan.status.completion_time, kT0);
  const api::Condition* failed = api::FindCondition(plan.status.conditions, kTaskConditionFailed);
  ASSERT_NE(failed, nullptr);
  EXPECT_THAT(failed->message, HasSubstr("attempt 3 of 3 failed: Error (exit code 137): killed"));
  ASSERT_EQ(plan.events.size(), 1u);
  EXPECT_EQ(plan.events[0].type, "Warning");
  EXPECT_EQ(plan.events[0].reason, "Failed");
}

TEST(TaskPlan, FailureKindsNotInOnFailureAreNotRetried) {
  const std::string yaml = R"(
metadata: {name: ingest, namespace: churn}
spec:
  role: Spout
  image: busybox
  retries: {limit: 5, onFailure: [Evicted]}
)";
  ObservedTask observed = FailedAttempt(1, 1, "Error");
  const TaskPlan plan = PlanTask(TaskFrom(yaml, Json{{"attempts", 1}}), observed, kT0);
  EXPECT_EQ(plan.status.phase, TaskPhase::kFailed);
  EXPECT_THAT(Ready(plan).message, HasSubstr("Error is not in retries.onFailure"));

  // A pod that vanished is Evicted, which is retried.
  observed.pods.clear();
  const TaskPlan lost = PlanTask(TaskFrom(yaml, Json{{"attempts", 1}}), observed, kT0);
  EXPECT_EQ(lost.status.phase, TaskPhase::kRunning);
  EXPECT_EQ(lost.status.failure->reason, "PodLost");
}

TEST(TaskPlan, AJobDeletedMidRunCountsAsAFailedAttempt) {
  const api::Task t = TaskFrom(kBatch, Json{{"attempts", 1}, {"phase", "Running"}});
  const TaskPlan plan = PlanTask(t, {}, kT0);
  EXPECT_FALSE(plan.create_job);  // not re-made under the same name
  EXPECT_EQ(plan.status.failure->reason, "JobDeleted");
  EXPECT_EQ(plan.status.next_retry_time, kT0 + seconds{10});
}

TEST(TaskPlan, SuccessPublishesResults) {
  ObservedTask observed;
  observed.jobs = {JobWith("ingest-1", 1, "Complete", "")};
  observed.pods = {PodWith(1, "Succeeded", Terminated(0, "Completed", R"({"rows": "42"})"))};
  const TaskPlan plan = PlanTask(TaskFrom(kBatch, Json{{"attempts", 1}}), observed, kT0);
  EXPECT_EQ(plan.status.phase, TaskPhase::kSucceeded);
  EXPECT_EQ(plan.status.results.at("rows"), "42");
  EXPECT_EQ(Ready(plan).status, api::ConditionStatus::kTrue);
  EXPECT_NE(api::FindCondition(plan.status.conditions, kTaskConditionComplete), nullptr);
}

// A finished Job whose pod the cache does not show finished makes the reconciler read the pod
// live; a pod an earlier Task of the same name left behind (same labels, another Job) is neither
// taken for this attempt's nor keeps that read from happening.
TEST(TaskPlan, AFinishedJobWithoutItsFinishedPodIsReadLiveAndLeftoverPodsAreNotItsOwn) {
  ObservedTask observed;
  observed.jobs = {JobWith("ingest-1", 1, "Complete", "")};
  const api::Task task = TaskFrom(kBatch, Json{{"attempts", 1}});
  EXPECT_EQ(AttemptPodToRead(task, observed), 1) << "no pod in the cache";
  observed.pods = {PodWith(1, "Running", Json{{"running", Json::object()}})};
  EXPECT_EQ(AttemptPodToRead(task, observed), 1) << "the cache still shows it running";
  observed.pods = {PodWith(1, "Succeeded", Terminated(0, "Completed", R"({"rows": "7"})"),
                           "uid-of-an-earlier-tasks-job")};
  EXPECT_EQ(AttemptPodToRead(task, observed), 1) << "a leftover pod is not this attempt's";
  observed.pods.push_back(PodWith(1, "Succeeded", Terminated(0, "Completed", R"({"rows": "42"})")));
  EXPECT_EQ(AttemptPodToRead(task, observed), std::nullopt);
  const TaskPlan plan = PlanTask(task, observed, kT0);
  EXPECT_EQ(plan.status.results.at("rows"), "42");
}

TEST(TaskPlan, OversizedResultsFailTheTask) {
  ObservedTask observed;
  observed.jobs = {JobWith("ingest-1", 1, "Complete", "")};
  observed.pods = {PodWith(1, "Succeeded", Terminated(0, "Completed", std::string(5000, 'x')))};
  const TaskPlan plan = PlanTask(TaskFrom(kBatch, Json{{"attempts", 1}}), observed, kT0);
  EXPECT_EQ(plan.status.phase, TaskPhase::kFailed);
  EXPECT_EQ(plan.status.failure->reason, "ResultsTooLarge");

  // A real kubelet keeps the last 4096 bytes of a longer message: a cut-off tail.
  observed.pods = {PodWith(1, "Succeeded", Terminated(0, "Completed", std::string(4096, 'x')))};
  const TaskPlan cut = PlanTask(TaskFrom(kBatch, Json{{"attempts", 1}}), observed, kT0);
  EXPECT_EQ(cut.status.failure->reason, "ResultsTooLarge");
  EXPECT_THAT(*cut.status.failure->message, HasSubstr("reached the kubelet's limit"));
}

TEST(TaskPlan, TimeoutStopsTheRunningJob) {
  const std::string yaml = R"(
metadata: {name: ingest, namespace: churn}
spec: {role: Spout, image: busybox, timeout: 1m}
)";
  ObservedTask observed;
  observed.jobs = {JobWith("ingest-1", 1)};
  const Json status{{"attempts", 1}, {"startTime", "2026-11-23T10:00:00Z"}, {"phase", "Running"}};
  // startTime is cut to whole seconds (the real start may be up to 10:00:00.999): the timeout
  // fires a second later than startTime + 1m says, never before the real minute has passed.
  const TaskPlan early = PlanTask(TaskFrom(yaml, status), observed, kT0 + seconds{20});
  EXPECT_EQ(early.requeue_after, seconds{41});
  EXPECT_THAT(early.remove, IsEmpty());
  const TaskPlan at_minute = PlanTask(TaskFrom(yaml, status), observed, kT0 + seconds{60});
  EXPECT_NE(at_minute.status.phase, TaskPhase::kFailed);
  EXPECT_EQ(at_minute.requeue_after, seconds{1});

  const TaskPlan late = PlanTask(TaskFrom(yaml, status), observed, kT0 + seconds{61});
  EXPECT_EQ(late.status.phase, TaskPhase::kFailed);
  EXPECT_EQ(late.status.failure->reason, "DeadlineExceeded");
  ASSERT_EQ(late.remove.size(), 1u);
  EXPECT_EQ(late.remove[0].name, "ingest-1");

  // A Job whose attempt status never recorded still counts when the timeout ends the task.
  Json unrecorded = status;
  unrecorded.erase("attempts");
  const TaskPlan timed_out = PlanTask(TaskFrom(yaml, unrecorded), observed, kT0 + seconds{61});
  EXPECT_EQ(timed_out.status.phase, TaskPhase::kFailed);
  EXPECT_EQ(timed_out.status.attempts, 1);
}

TEST(TaskPlan, CancelStopsTheJobAndEndsCancelled) {
  const std::string yaml = R"(
metadata: {name: ingest, namespace: churn}
spec: {role: Spout, image: busybox, cancel: true}
)";
  ObservedTask observed;
  observed.jobs = {JobWith("ingest-1", 1)};
  const TaskPlan plan = PlanTask(TaskFrom(yaml, Json{{"attempts", 1}}), observed, kT0);
  EXPECT_EQ(plan.status.phase, TaskPhase::kCancelled);
  ASSERT_EQ(plan.remove.size(), 1u);
  // Deleted on the uid observed: a late delete never removes a newer Job of the same name.
  EXPECT_EQ(plan.remove[0].uid, "job-uid-1");
  EXPECT_EQ(Ready(plan).reason, "Cancelled");

  // The cancel came after the Job was created but before status recorded its attempt (a crash, a
  // conflict): the Job still counts as attempt 1 (found by chaos_small's Job-per-attempt check).
  const TaskPlan unrecorded = PlanTask(TaskFrom(yaml), observed, kT0);
  EXPECT_EQ(unrecorded.status.phase, TaskPhase::kCancelled);
  EXPECT_EQ(unrecorded.status.attempts, 1);
}

TEST(TaskPlan, FinishedTasksDeleteTheirJobsAfterTheTtl) {
  const std::string yaml = R"(
metadata: {name: ingest, namespace: churn}
spec: {role: Spout, image: busybox, ttlAfterFinished: 1h}
)";
  ObservedTask observed;
  observed.jobs = {JobWith("ingest-1", 1, "Complete", "")};
  const Json status{{"attempts", 1},
                    {"phase", "Succeeded"},
                    {"completionTime", "2026-11-23T10:00:00Z"},
                    {"observedGeneration", 1}};
  const TaskPlan before = PlanTask(TaskFrom(yaml, status), observed, kT0 + seconds{60});
  EXPECT_THAT(before.remove, IsEmpty());
  EXPECT_EQ(before.requeue_after, seconds{3540});
  const TaskPlan after = PlanTask(TaskFrom(yaml, status), observed, kT0 + seconds{3600});
  ASSERT_EQ(after.remove.size(), 1u);
  EXPECT_EQ(after.status.phase, TaskPhase::kSucceeded);
  EXPECT_TRUE(TaskStatusPatch(TaskFrom(yaml, status), after.status).is_null())
      << "a finished task's status is not written again";
}

TEST(TaskQuota, ShortfallNamesTheQuotaAndNumbers) {
  const Json quota{{"metadata", {{"name", "zone-quota"}}},
                   {"status",
                    {{"hard", {{"requests.cpu", "2"}, {"pods", "10"}}},
                     {"used", {{"requests.cpu", "1500m"}, {"pods", "1"}}}}}};
  const api::Task t = TaskFrom(kBatch);  // requests cpu 1
  const auto shortfall = QuotaShortfall(t.spec, {quota}, {});
  ASSERT_TRUE(shortfall);
  EXPECT_EQ(*shortfall,
            "exceeded quota \"zone-quota\": requested requests.cpu=1, used requests.cpu=1500m, "
            "limited requests.cpu=2; the task starts when the quota allows");

  Json roomy = quota;
  roomy["status"]["used"]["requests.cpu"] = "500m";
  EXPECT_FALSE(QuotaShortfall(t.spec, {roomy}, {}));

  // Without requests, the LimitRange's default request is what counts.
  const api::Task bare = TaskFrom(R"(
metadata: {name: b, namespace: churn}
spec: {role: Spout, image: busybox}
)");
  const Json limit_range{{"spec",
                          {{"limits", Json::array({{{"type", "Container"},
                                                    {"defaultRequest", {{"cpu", "800m"}}}}})}}}};
  EXPECT_TRUE(QuotaShortfall(bare.spec, {quota}, {limit_range}));
  EXPECT_THAT(*QuotaShortfall(bare.spec, {quota}, {}), HasSubstr("must set them"));
}

TEST(TaskPlan, QuotaShortfallKeepsTheTaskPendingWithoutAJob) {
  ObservedTask observed;
  observed.resource_quotas = {
      Json{{"metadata", {{"name", "zone-quota"}}},
           {"status", {{"hard", {{"requests.cpu", "1"}}}, {"used", {{"requests.cpu", "1"}}}}}}};
  const TaskPlan plan = PlanTask(TaskFrom(kBatch), observed, kT0);
  EXPECT_FALSE(plan.create_job);
  EXPECT_EQ(plan.status.phase, TaskPhase::kPending);
  EXPECT_EQ(Ready(plan).reason, "QuotaExceeded");
  ASSERT_EQ(plan.events.size(), 1u);
  EXPECT_EQ(plan.events[0].reason, "QuotaExceeded");
}

const std::string kGang = R"(
metadata: {name: ddp, namespace: ml}
spec:
  role: Bolt
  image: trainer
  input: {batch: {uri: "s3://features/"}}
  workers: 4
  resources: {requests: {cpu: "1"}}
)";

TEST(TaskGang, FourWorkersAreAnIndexedJobWithRanksBehindAHeadlessService) {
  const TaskPlan plan = PlanTask(TaskFrom(kGang), {}, kT0);
  ASSERT_TRUE(plan.create_job);
  const Json& spec = (*plan.create_job)["spec"];
  EXPECT_EQ(spec["completionMode"], "Indexed");
  EXPECT_EQ(spec["completions"], 4);
  EXPECT_EQ(spec["parallelism"], 4);
  EXPECT_EQ(spec["backoffLimit"], 0) << "one worker's failure fails the attempt";
  EXPECT_EQ(spec["template"]["spec"]["subdomain"], "ddp");
  std::map<std::string, Json> env;
  for (const Json& e : spec["template"]["spec"]["containers"][0]["env"]) env[e["name"]] = e;
  EXPECT_EQ(env["RANK"]["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.annotations['batch.kubernetes.io/job-completion-index']");
  EXPECT_EQ(env["WORLD_SIZE"]["value"], "4");
  EXPECT_EQ(env["MASTER_ADDR"]["value"], "ddp-1-0.ddp") << "rank 0 of attempt 1's Job";
  EXPECT_EQ(env["MASTER_PORT"]["value"], "29500");
  ASSERT_EQ(plan.apply.size(), 1u);
  EXPECT_EQ(plan.apply[0]["kind"], "Service");
  EXPECT_EQ(plan.apply[0]["metadata"]["name"], "ddp");
  EXPECT_EQ(plan.apply[0]["spec"]["clusterIP"], "None");
  EXPECT_EQ(plan.apply[0]["spec"]["selector"]["millrace.io/task"], "ddp");

  const TaskPlan single = PlanTask(TaskFrom(kBatch), {}, kT0);
  EXPECT_FALSE(single.create_job->at("spec").contains("completionMode"));
  EXPECT_TRUE(single.apply.empty());
}

// Worker `rank` of a gang's attempt 1, in `phase` with container `state`.
Json Worker(int rank, const std::string& phase, const Json& state, bool deleting = false) {
  Json pod = PodWith(1, phase, state);
  pod["metadata"]["name"] = "ddp-1-" + std::to_string(rank) + "-abc";
  pod["metadata"]["annotations"] = {
      {"batch.kubernetes.io/job-completion-index", std::to_string(rank)}};
  // Rank 0 is the oldest pod: the choice below is not the default "newest".
  pod["metadata"]["creationTimestamp"] = "2026-11-23T09:59:0" + std::to_string(rank) + "Z";
  if (deleting) pod["metadata"]["deletionTimestamp"] = "2026-11-23T10:00:00Z";
  return pod;
}

TEST(TaskGang, RankZeroSpeaksForASuccessAndTheWorkerThatFailedForAFailure) {
  ObservedTask observed;
  observed.jobs = {JobWith("ddp-1", 1, "Complete", "")};
  observed.pods = {Worker(0, "Succeeded", Terminated(0, "Completed", R"({"rows": "0"})")),
                   Worker(1, "Succeeded", Terminated(0, "Completed", R"({"rows": "1"})"))};
  TaskPlan plan = PlanTask(TaskFrom(kGang, Json{{"attempts", 1}}), observed, kT0);
  EXPECT_EQ(plan.status.phase, TaskPhase::kSucceeded);
  EXPECT_EQ(plan.status.results.at("rows"), "0");

  // Worker 2 was OOMKilled; the Job controller then stopped rank 0 (deleted, exit 143).
  observed.jobs = {JobWith("ddp-1", 1, "Failed", "BackoffLimitExceeded")};
  observed.pods = {Worker(0, "Failed", Terminated(143, "Error"), /*deleting=*/true),
                   Worker(2, "Failed", Terminated(137, "OOMKilled"))};
  plan = PlanTask(TaskFrom(kGang, Json{{"attempts", 1}}), observed, kT0);
  EXPECT_EQ(plan.status.phase, TaskPhase::kFailed);
  ASSERT_TRUE(plan.status.failure);
  EXPECT_EQ(plan.status.failure->reason, "OOMKilled");
}

TEST(TaskGang, NoWorkerStartsUntilTheQuotaFitsThemAll) {
  ObservedTask observed;
  observed.resource_quotas = {Json{
      {"metadata", {{"name", "zone-quota"}}},
      {"status",
       {{"hard", {{"requests.cpu", "3"}, {"pods", "10"}}}, {"used", {{"requests.cpu", "0"}}}}}}};
  TaskPlan plan = PlanTask(TaskFrom(kGang), observed, kT0);
  EXPECT_FALSE(plan.create_job);
  EXPECT_EQ(Ready(plan).reason, "QuotaExceeded");
  EXPECT_THAT(Ready(plan).message, HasSubstr("requested requests.cpu=4"));
  observed.resource_quotas[0]["status"]["hard"]["requests.cpu"] = "4";
  plan = PlanTask(TaskFrom(kGang), observed, kT0);
  EXPECT_TRUE(plan.create_job);
}

TEST(TaskPlan, RejectedJobFailsTheTaskWithTheServersMessage) {
  ObservedTask observed;
  observed.job_rejected = "spec.template.spec.affinity: Invalid value";
  const TaskPlan plan = PlanTask(TaskFrom(kBatch), observed, kT0);
  EXPECT_FALSE(plan.create_job);
  EXPECT_EQ(plan.status.phase, TaskPhase::kFailed);
  EXPECT_EQ(plan.status.failure->reason, "JobRejected");
  EXPECT_THAT(plan.status.failure->message.value_or(""), HasSubstr("affinity"));
}

const std::string kStreaming = R"(
metadata: {name: scorer, namespace: churn}
spec:
  role: Bolt
  input: {stream: {topic: clicks}}
  image: scorer:1
  service: {port: 8080}
  scaling: {minReplicas: 2, maxReplicas: 5}
)";

TEST(TaskStreaming, ChildrenAreDeploymentServiceAndAutoscaler) {
  const auto children = TaskStreamingChildren(TaskFrom(kStreaming), std::nullopt);
  ASSERT_EQ(children.size(), 3u);
  EXPECT_EQ(children[0]["kind"], "Deployment");
  EXPECT_FALSE(children[0]["spec"].contains("replicas"));  // the HPA's to set
  EXPECT_EQ(children[0]["spec"]["template"]["spec"]["restartPolicy"], "Always");
  EXPECT_EQ(children[1]["spec"]["ports"][0]["port"], 8080);
  EXPECT_EQ(children[2]["kind"], "HorizontalPodAutoscaler");
  EXPECT_EQ(children[2]["spec"]["minReplicas"], 2);
  EXPECT_EQ(children[2]["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"], 80);
}

TEST(TaskStreaming, ReadyWhenWantedReplicasAreReadyThenDegraded) {
  Json deployment{{"metadata", {{"name", "scorer"}, {"generation", 2}}},
                  {"spec", {{"replicas", 2}}},
                  {"status",
                   {{"observedGeneration", 2},
                    {"replicas", 2},
                    {"readyReplicas", 2},
                    {"updatedReplicas", 2},
                    {"availableReplicas", 2}}}};
  ObservedTask observed;
  observed.deployment = deployment;
  const TaskPlan ready = PlanTask(TaskFrom(kStreaming), observed, kT0);
  EXPECT_EQ(ready.status.phase, TaskPhase::kReady);
  EXPECT_EQ(ready.status.ready_replicas, 2);
  EXPECT_EQ(ready.status.endpoint, "http://scorer.churn.svc:8080");
  EXPECT_EQ(ready.apply.size(), 3u);

  observed.deployment->at("status")["readyReplicas"] = 1;
  observed.deployment->at("status")["availableReplicas"] = 1;
  const TaskPlan degraded = PlanTask(TaskFrom(kStreaming, Json{{"phase", "Ready"}}), observed, kT0);
  EXPECT_EQ(degraded.status.phase, TaskPhase::kDegraded);
  EXPECT_EQ(Ready(degraded).reason, "ReplicasNotReady");

  observed.deployment->at("status")["conditions"] =
      Json::array({{{"type", "ReplicaFailure"},
                    {"status", "True"},
                    {"message", "pods \"x\" is forbidden: exceeded quota: zone-quota"}}});
  const TaskPlan quota = PlanTask(TaskFrom(kStreaming), observed, kT0);
  EXPECT_EQ(quota.status.phase, TaskPhase::kPending);
  EXPECT_EQ(Ready(quota).reason, "QuotaExceeded");
}

// An image change: the Deployment's new spec is not observed yet, then a new pod starts beside the
// old ones (readyReplicas still counts the old pods), then the new pods serve. The task says
// RollingOut throughout, never Ready before the new pods serve and never Degraded.
TEST(TaskStreaming, RollingOutUntilTheNewSpecServesThenReady) {
  const auto plan = [](Json status, int64_t generation) {
    ObservedTask observed;
    observed.deployment = Json{{"metadata", {{"name", "scorer"}, {"generation", generation}}},
                               {"spec", {{"replicas", 2}}},
                               {"status", std::move(status)}};
    return PlanTask(TaskFrom(kStreaming, Json{{"phase", "Ready"}}), observed, kT0);
  };
  const TaskPlan unseen = plan(Json{{"observedGeneration", 2},
                                    {"replicas", 2},
                                    {"readyReplicas", 2},
                                    {"updatedReplicas", 2},
                                    {"availableReplicas", 2}},
                               3);
  EXPECT_EQ(unseen.status.phase, TaskPhase::kRollingOut);
  EXPECT_EQ(Ready(unseen).status, api::ConditionStatus::kFalse);
  EXPECT_EQ(Ready(unseen).reason, "RollingOut");

  const TaskPlan surging = plan(Json{{"observedGeneration", 3},
                                     {"replicas", 3},
                                     {"readyReplicas", 2},
                                     {"updatedReplicas", 2},
                                     {"availableReplicas", 2}},
                                3);
  EXPECT_EQ(surging.status.phase, TaskPhase::kRollingOut);
  EXPECT_EQ(Ready(surging).message, "rolling out the new spec: 1 old replica still running");
  // Ready -> RollingOut is a Normal event, not a Degraded warning.
  ASSERT_EQ(unseen.events.size(), 1u);
  EXPECT_EQ(unseen.events[0].type, "Normal");
  EXPECT_EQ(unseen.events[0].reason, "RollingOut");

  const TaskPlan one_new = plan(Json{{"observedGeneration", 3},
                                     {"replicas", 3},
                                     {"readyReplicas", 2},
                                     {"updatedReplicas", 1},
                                     {"availableReplicas", 2}},
                                3);
  EXPECT_EQ(one_new.status.phase, TaskPhase::kRollingOut);
  EXPECT_EQ(Ready(one_new).message,
            "rolling out the new spec: 1 of 2 replicas updated to the new spec, 2 old replicas "
            "still running");

  const TaskPlan done = plan(Json{{"observedGeneration", 3},
                                  {"replicas", 2},
                                  {"readyReplicas", 2},
                                  {"updatedReplicas", 2},
                                  {"availableReplicas", 2}},
                             3);
  EXPECT_EQ(done.status.phase, TaskPhase::kReady);
  EXPECT_EQ(Ready(done).status, api::ConditionStatus::kTrue);
}

TEST(TaskPod, TrimKeepsWhatThePlanReads) {
  Json pod = PodWith(1, "Failed", Terminated(2, "Error", "m"));
  pod["spec"] = Json{{"containers", Json::array()}};
  pod["status"]["hostIP"] = "10.0.0.1";
  TrimTaskPod(pod);
  EXPECT_FALSE(pod.contains("spec"));
  EXPECT_FALSE(pod["status"].contains("hostIP"));
  EXPECT_EQ(pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"], 2);

  Json job = JobWith("ingest-1", 1, "Failed", "BackoffLimitExceeded");
  job["spec"] = Json{{"template", Json::object()}};
  job["status"]["uncountedTerminatedPods"] = Json::object();
  TrimTaskJob(job);
  EXPECT_FALSE(job.contains("spec"));
  EXPECT_FALSE(job["status"].contains("uncountedTerminatedPods"));
  ObservedTask observed;
  observed.jobs = {job};
  const TaskPlan plan = PlanTask(TaskFrom(R"(
metadata: {name: ingest, namespace: churn}
spec: {role: Spout, image: busybox}
)",
                                          Json{{"attempts", 1}}),
                                 observed, kT0);
  EXPECT_EQ(plan.status.phase, TaskPhase::kFailed) << "a trimmed Job still says how it ended";
  EXPECT_EQ(plan.status.failure->reason, "PodLost");
}

}  // namespace
}  // namespace millrace::reconcilers
