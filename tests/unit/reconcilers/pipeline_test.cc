#include "reconcilers/pipeline.h"

#include <optional>
#include <stdexcept>
#include <utility>

#include "tests/unit/reconcilers/plan_test.h"

namespace millrace::reconcilers {
namespace {

using namespace plan_test;
using api::PipelinePhase;
using api::StepPhase;

api::Pipeline PipelineFrom(const std::string& yaml, const Json& status = nullptr) {
  return api::testing::ObjectFrom<api::Pipeline>(api::testing::YamlToJson(yaml).at(0), "uid-p",
                                                 status);
}

const std::string kDiamond = R"(
metadata: {name: d, namespace: ml}
spec:
  params: [{name: date, value: "2026-11-22"}]
  steps:
  - name: a
    task: {role: Spout, image: busybox, args: ["{{params.date}}", "{{pipeline.uid}}"], results: [{name: n}]}
  - name: b
    dependsOn: [a]
    task: {role: Bolt, image: busybox, args: ["{{steps.a.results.n}}"]}
  - name: c
    dependsOn: [a]
    task: {role: Bolt, image: busybox}
  - name: d
    dependsOn: [b, c]
    task: {role: Bolt, image: busybox}
  finally:
  - name: report
    task: {role: Bolt, image: busybox, args: ["{{pipeline.phase}}", "{{steps.b.phase}}"]}
)";

// A child Task of step `step` in `phase`, with `results`.
Json ChildTask(const std::string& step, const std::string& phase, const Json& results = nullptr,
               const std::string& message = "") {
  Json t{{"metadata", {{"name", "d-" + step}, {"labels", {{"millrace.io/step", step}}}}},
         {"spec", {{"role", "Bolt"}, {"image", "busybox"}}},
         {"status", {{"phase", phase}, {"attempts", 1}}}};
  if (!results.is_null()) t["status"]["results"] = results;
  if (!message.empty()) t["status"]["failure"] = {{"message", message}};
  return t;
}

// The status of a plan, as the next reconcile reads it back.
Json Written(const PipelinePlan& plan, const api::Pipeline& p) {
  api::Pipeline after = p;
  after.status = plan.status;
  return after.ToJson()["status"];
}

std::vector<std::string> Created(const PipelinePlan& plan) {
  std::vector<std::string> names;
  for (const auto& t : plan.create) names.push_back(t["metadata"]["name"]);
  return names;
}

const api::StepStatus& StepOf(const PipelinePlan& plan, const std::string& name) {
  for (const auto& s : plan.status.steps) {
    if (s.name == name) return s;
  }
  throw std::runtime_error("no step " + name);
}

// One run of a Pipeline across reconciles: each Plan reads back the status the previous plan
// wrote, and sees the child Tasks in `observed`.
class PipelineRun {
 public:
  explicit PipelineRun(std::string yaml) : yaml_(std::move(yaml)), pipeline_(PipelineFrom(yaml_)) {}

  // The plan made at kT0 + `at`.
  const PipelinePlan& Plan(seconds at = seconds{0}) {
    if (plan_) pipeline_ = WrittenBack();
    plan_ = PlanPipeline(pipeline_, observed, kT0 + at);
    return *plan_;
  }

  // The Pipeline with the last plan's status written back, as the next reconcile reads it.
  api::Pipeline WrittenBack() const { return PipelineFrom(yaml_, Written(*plan_, pipeline_)); }

  // Replaces the spec from the next plan on (the status stays).
  void Edit(std::string yaml) { yaml_ = std::move(yaml); }

  ObservedPipeline observed;

 private:
  std::string yaml_;
  api::Pipeline pipeline_;
  std::optional<PipelinePlan> plan_;
};

TEST(PipelinePlan, DiamondStartsStepsAsTheirDependenciesSucceed) {
  PipelineRun run(kDiamond);
  PipelinePlan plan = run.Plan();
  EXPECT_THAT(Created(plan), ElementsAre("d-a"));
  EXPECT_EQ(plan.status.phase, PipelinePhase::kRunning);
  EXPECT_EQ(plan.create[0]["spec"]["args"], (Json{"2026-11-22", "uid-p"}));
  EXPECT_EQ(plan.create[0]["metadata"]["ownerReferences"][0]["uid"], "uid-p");
  EXPECT_EQ(plan.create[0]["metadata"]["labels"]["millrace.io/step"], "a");

  run.observed.tasks = {ChildTask("a", "Succeeded", {{"n", "42"}})};
  plan = run.Plan(seconds{5});
  EXPECT_THAT(Created(plan), ElementsAre("d-b", "d-c"));
  EXPECT_EQ(plan.create[0]["spec"]["args"][0], "42") << "results are substituted at start";
  EXPECT_EQ(plan.status.progress, "1/5");

  run.observed.tasks.push_back(ChildTask("b", "Succeeded"));
  run.observed.tasks.push_back(ChildTask("c", "Running"));
  plan = run.Plan(seconds{10});
  EXPECT_THAT(Created(plan), IsEmpty()) << "d waits for c";

  run.observed.tasks[2] = ChildTask("c", "Succeeded");
  plan = run.Plan(seconds{15});
  EXPECT_THAT(Created(plan), ElementsAre("d-d"));

  run.observed.tasks.push_back(ChildTask("d", "Succeeded"));
  plan = run.Plan(seconds{20});
  EXPECT_THAT(Created(plan), ElementsAre("d-report"));
  EXPECT_EQ(plan.create[0]["spec"]["args"], (Json{"Succeeded", "Succeeded"}));

  run.observed.tasks.push_back(ChildTask("report", "Succeeded"));
  plan = run.Plan(seconds{25});
  EXPECT_EQ(plan.status.phase, PipelinePhase::kSucceeded);
  EXPECT_EQ(plan.status.progress, "5/5");
  EXPECT_EQ(plan.status.completion_time, kT0 + seconds{25});
  EXPECT_TRUE(PipelineStatusPatch(run.WrittenBack(), plan.status).is_null());
}

TEST(PipelinePlan, FailFastCancelsRunningStepsAndPendingOnesNeverStart) {
  const std::string yaml = R"(
metadata: {name: d, namespace: ml}
spec:
  failFast: true
  steps:
  - {name: a, task: {role: Spout, image: busybox}}
  - {name: b, task: {role: Spout, image: busybox}}
  - {name: c, dependsOn: [b], task: {role: Bolt, image: busybox}}
)";
  PipelineRun run(yaml);
  run.Plan();
  run.observed.tasks = {ChildTask("a", "Failed", nullptr, "exit code 7"),
                        ChildTask("b", "Running")};
  PipelinePlan plan = run.Plan(seconds{5});
  EXPECT_THAT(plan.cancel, ElementsAre("d-b"));
  EXPECT_EQ(StepOf(plan, "c").phase, StepPhase::kCancelled);
  EXPECT_EQ(plan.status.phase, PipelinePhase::kRunning) << "until b has stopped";

  run.observed.tasks[1] = ChildTask("b", "Cancelled");
  run.observed.tasks[1]["spec"]["cancel"] = true;
  plan = run.Plan(seconds{8});
  EXPECT_EQ(plan.status.phase, PipelinePhase::kFailed);
  EXPECT_EQ(plan.status.failure->step, "a");
  EXPECT_THAT(*plan.status.failure->message, HasSubstr("exit code 7"));
  EXPECT_THAT(plan.cancel, IsEmpty());
}

TEST(PipelinePlan, WithoutFailFastOnlyTheFailedStepsDependantsAreCancelled) {
  const std::string yaml = R"(
metadata: {name: d, namespace: ml}
spec:
  steps:
  - {name: a, task: {role: Spout, image: busybox}}
  - {name: a2, dependsOn: [a], task: {role: Bolt, image: busybox}}
  - {name: a3, dependsOn: [a2], task: {role: Bolt, image: busybox}}
  - {name: b, task: {role: Spout, image: busybox}}
  - {name: b2, dependsOn: [b], task: {role: Bolt, image: busybox}}
)";
  PipelineRun run(yaml);
  run.Plan();
  run.observed.tasks = {ChildTask("a", "Failed"), ChildTask("b", "Succeeded")};
  const PipelinePlan& plan = run.Plan(seconds{5});
  EXPECT_THAT(Created(plan), ElementsAre("d-b2"));
  EXPECT_EQ(StepOf(plan, "a2").phase, StepPhase::kCancelled);
  EXPECT_EQ(StepOf(plan, "a3").phase, StepPhase::kCancelled) << "transitively";
  EXPECT_THAT(*StepOf(plan, "a3").message, HasSubstr("a2 did not succeed"));
}

TEST(PipelinePlan, WhenOnAResultSkipsAndSkippedResultsSkipTheirReaders) {
  const std::string yaml = R"(
metadata: {name: d, namespace: ml}
spec:
  steps:
  - {name: train, task: {role: Spout, image: busybox, results: [{name: acc}]}}
  - name: gate
    dependsOn: [train]
    when: [{input: "{{steps.train.results.acc}}", operator: Gt, values: ["0.9"]}]
    task: {role: Bolt, image: busybox, results: [{name: url}]}
  - name: announce
    dependsOn: [gate]
    task: {role: Bolt, image: busybox, args: ["{{steps.gate.results.url}}"]}
  - name: after
    dependsOn: [gate]
    task: {role: Bolt, image: busybox}
)";
  PipelineRun run(yaml);
  run.Plan();
  run.observed.tasks = {ChildTask("train", "Succeeded", {{"acc", "0.85"}})};
  const PipelinePlan& plan = run.Plan(seconds{5});
  EXPECT_EQ(StepOf(plan, "gate").phase, StepPhase::kSkipped);
  EXPECT_THAT(*StepOf(plan, "gate").message, HasSubstr("0.85 Gt [0.9]"));
  EXPECT_EQ(StepOf(plan, "announce").phase, StepPhase::kSkipped);
  EXPECT_THAT(Created(plan), ElementsAre("d-after")) << "dependants of a skipped step still run";
}

TEST(PipelinePlan, ParallelismCapsRunningSteps) {
  const std::string yaml = R"(
metadata: {name: d, namespace: ml}
spec:
  parallelism: 2
  steps:
  - {name: a, task: {role: Spout, image: busybox}}
  - {name: b, task: {role: Spout, image: busybox}}
  - {name: c, task: {role: Spout, image: busybox}}
)";
  const PipelinePlan plan = PlanPipeline(PipelineFrom(yaml), {}, kT0);
  EXPECT_THAT(Created(plan), ElementsAre("d-a", "d-b"));
}

TEST(PipelinePlan, InvalidSpecFailsAtOnceSuspendHoldsAndTimeoutWakesUp) {
  const PipelinePlan cycle = PlanPipeline(PipelineFrom(R"(
metadata: {name: d, namespace: ml}
spec:
  steps:
  - {name: a, dependsOn: [b], task: {role: Spout, image: busybox}}
  - {name: b, dependsOn: [a], task: {role: Spout, image: busybox}}
)"),
                                          {}, kT0);
  EXPECT_EQ(cycle.status.phase, PipelinePhase::kFailed);
  EXPECT_EQ(cycle.status.failure->reason, "InvalidSpec");
  EXPECT_THAT(*cycle.status.failure->message, HasSubstr("cycle"));
  EXPECT_THAT(Created(cycle), IsEmpty());

  const PipelinePlan held = PlanPipeline(PipelineFrom(R"(
metadata: {name: d, namespace: ml}
spec:
  suspend: true
  timeout: 1m
  steps: [{name: a, task: {role: Spout, image: busybox}}]
)"),
                                         {}, kT0);
  EXPECT_EQ(held.status.phase, PipelinePhase::kSuspended);
  EXPECT_THAT(Created(held), IsEmpty());

  const PipelinePlan timed = PlanPipeline(PipelineFrom(R"(
metadata: {name: d, namespace: ml}
spec:
  timeout: 1m
  steps: [{name: a, task: {role: Spout, image: busybox}}]
)"),
                                          {}, kT0);
  EXPECT_EQ(timed.requeue_after, seconds{61}) << "never early: startTime is cut to seconds";
}

// A child Task of step `step` that ended in `phase` at kT0 + `at`.
Json EndedTask(const std::string& step, const std::string& phase, seconds at) {
  Json t = ChildTask(step, phase);
  t["status"]["completionTime"] = api::FormatTime(kT0 + at);
  return t;
}

const api::Condition& SucceededCondition(const PipelinePlan& plan) {
  const api::Condition* c = api::FindCondition(plan.status.conditions, "Succeeded");
  if (c == nullptr) throw std::runtime_error("no Succeeded condition");
  return *c;
}

// spec.timeout 10s: the deadline is kT0 + 11 s (DeadlineAfter: startTime is cut to seconds).
const std::string kTimed = R"(
metadata: {name: d, namespace: ml}
spec:
  timeout: 10s
  steps:
  - {name: a, task: {role: Spout, image: busybox}}
  - {name: b, dependsOn: [a], task: {role: Bolt, image: busybox}}
  finally:
  - {name: report, task: {role: Bolt, image: busybox, args: ["{{pipeline.phase}}"]}}
)";

TEST(PipelinePlan, AFinallyStepRunningPastTheTimeoutLeavesARunWhoseStepsFinishedInTimeSucceeded) {
  PipelineRun run(kTimed);
  PipelinePlan plan = run.Plan();
  EXPECT_EQ(plan.requeue_after, seconds{11});
  run.observed.tasks = {EndedTask("a", "Succeeded", seconds{3})};
  plan = run.Plan(seconds{3});
  ASSERT_THAT(Created(plan), ElementsAre("d-b"));
  // b ended before the deadline, but the reconcile that sees it runs after it.
  run.observed.tasks.push_back(EndedTask("b", "Succeeded", seconds{10}));
  plan = run.Plan(seconds{12});
  EXPECT_THAT(plan.cancel, IsEmpty());
  ASSERT_THAT(Created(plan), ElementsAre("d-report"));
  EXPECT_EQ(plan.create[0]["spec"]["args"][0], "Succeeded");
  EXPECT_EQ(plan.status.phase, PipelinePhase::kRunning);
  EXPECT_FALSE(plan.status.failure);

  // The finally step runs well past the deadline: nothing stops it, the outcome stays.
  run.observed.tasks.push_back(ChildTask("report", "Running"));
  plan = run.Plan(seconds{30});
  EXPECT_THAT(plan.cancel, IsEmpty());
  EXPECT_EQ(plan.status.phase, PipelinePhase::kRunning);
  EXPECT_EQ(SucceededCondition(plan).status, api::ConditionStatus::kUnknown);
  EXPECT_FALSE(plan.requeue_after) << "no deadline to wake up for once the steps are done";

  run.observed.tasks.back() = EndedTask("report", "Succeeded", seconds{40});
  plan = run.Plan(seconds{41});
  EXPECT_EQ(plan.status.phase, PipelinePhase::kSucceeded);
  EXPECT_FALSE(plan.status.failure);
  EXPECT_EQ(SucceededCondition(plan).reason, "Succeeded");
}

TEST(PipelinePlan, ATimeoutStillFailsARunWhoseStepsHadNotFinishedByTheDeadline) {
  // A regular step still running at the deadline is cancelled; finally runs; DeadlineExceeded.
  PipelineRun running(kTimed);
  running.Plan();
  running.observed.tasks = {ChildTask("a", "Running")};
  PipelinePlan plan = running.Plan(seconds{11});
  EXPECT_THAT(plan.cancel, ElementsAre("d-a"));
  EXPECT_EQ(StepOf(plan, "b").phase, StepPhase::kCancelled);
  EXPECT_THAT(StepOf(plan, "b").message.value_or(""), HasSubstr("timeout of 10s"));
  EXPECT_THAT(Created(plan), IsEmpty()) << "finally waits until a has stopped";
  running.observed.tasks[0] = EndedTask("a", "Cancelled", seconds{12});
  running.observed.tasks[0]["spec"]["cancel"] = true;
  plan = running.Plan(seconds{12});
  ASSERT_THAT(Created(plan), ElementsAre("d-report"));
  EXPECT_EQ(plan.create[0]["spec"]["args"][0], "Failed");
  running.observed.tasks.push_back(EndedTask("report", "Succeeded", seconds{20}));
  plan = running.Plan(seconds{20});
  EXPECT_EQ(plan.status.phase, PipelinePhase::kFailed);
  EXPECT_EQ(plan.status.failure.value_or(api::PipelineFailure{}).reason, "DeadlineExceeded");
  EXPECT_EQ(SucceededCondition(plan).reason, "DeadlineExceeded");

  // A regular step that finished after the deadline (the cancel came too late) exceeded it too.
  PipelineRun late(kTimed);
  late.Plan();
  late.observed.tasks = {EndedTask("a", "Succeeded", seconds{3})};
  late.Plan(seconds{3});
  late.observed.tasks.push_back(EndedTask("b", "Succeeded", seconds{11}));
  plan = late.Plan(seconds{12});
  EXPECT_EQ(StepOf(plan, "b").phase, StepPhase::kSucceeded);
  ASSERT_THAT(Created(plan), ElementsAre("d-report"));
  EXPECT_EQ(plan.create[0]["spec"]["args"][0], "Failed");

  // A step the deadline kept from starting: a finished in time, b never ran.
  PipelineRun stopped(kTimed);
  stopped.Plan();
  stopped.observed.tasks = {EndedTask("a", "Succeeded", seconds{9})};
  plan = stopped.Plan(seconds{11});
  EXPECT_THAT(Created(plan), ElementsAre("d-report"));
  EXPECT_EQ(StepOf(plan, "b").phase, StepPhase::kCancelled);
  EXPECT_EQ(StepOf(plan, "b").completion_time, kT0 + seconds{11});
  stopped.observed.tasks.push_back(EndedTask("report", "Succeeded", seconds{12}));
  plan = stopped.Plan(seconds{12});
  EXPECT_EQ(plan.status.phase, PipelinePhase::kFailed);
  EXPECT_EQ(plan.status.failure.value_or(api::PipelineFailure{}).reason, "DeadlineExceeded");
}

TEST(PipelinePlan, AFanOutStepEndsWhenItsLastChildEndedSoChildrenInTimeMeetTheTimeout) {
  const std::string yaml = R"(
metadata: {name: d, namespace: ml}
spec:
  timeout: 10s
  steps:
  - {name: each, withItems: ["x", "y"], task: {role: Spout, image: busybox, args: ["{{item}}"]}}
)";
  PipelineRun run(yaml);
  PipelinePlan plan = run.Plan();
  ASSERT_THAT(Created(plan), ElementsAre("d-each-0", "d-each-1"));
  for (const int k : {0, 1}) {
    Json t = EndedTask("each", "Succeeded", seconds{8 + k});
    t["metadata"]["name"] = "d-each-" + std::to_string(k);
    t["metadata"]["labels"]["millrace.io/item"] = std::to_string(k);
    run.observed.tasks.push_back(std::move(t));
  }
  plan = run.Plan(seconds{15});
  EXPECT_EQ(StepOf(plan, "each").completion_time, kT0 + seconds{9});
  EXPECT_EQ(plan.status.phase, PipelinePhase::kSucceeded);
}

TEST(PipelinePlan, SuspendedRunStartsWhenResumedAndIsDeletedAfterItsTtl) {
  const std::string suspended = R"(
metadata: {name: d, namespace: ml}
spec:
  suspend: true
  ttlAfterFinished: 1h
  steps: [{name: a, task: {role: Spout, image: busybox}}]
)";
  PipelineRun run(suspended);
  PipelinePlan plan = run.Plan();
  EXPECT_EQ(plan.status.phase, PipelinePhase::kSuspended);

  std::string resumed = suspended;
  resumed.replace(resumed.find("suspend: true"), 13, "suspend: false");
  run.Edit(resumed);
  plan = run.Plan(seconds{5});
  EXPECT_THAT(Created(plan), ElementsAre("d-a"));
  EXPECT_EQ(plan.status.start_time, kT0 + seconds{5});

  run.observed.tasks = {ChildTask("a", "Succeeded")};
  plan = run.Plan(seconds{10});
  EXPECT_EQ(plan.status.phase, PipelinePhase::kSucceeded);
  EXPECT_EQ(plan.requeue_after, seconds{3600});
  EXPECT_FALSE(plan.delete_pipeline);

  plan = run.Plan(seconds{10 + 3600});
  EXPECT_TRUE(plan.delete_pipeline);
}

TEST(PipelinePlan, ARegisterStepRegistersOnceWhenItSucceeds) {
  const std::string yaml = R"(
metadata: {name: d, namespace: ml}
spec:
  steps:
  - {name: train, task: {role: Spout, image: trainer, results: [{name: uri}, {name: acc}]}}
  - name: register
    dependsOn: [train]
    task: {role: Bolt, image: busybox}
    registerModel:
      model: churn
      version: "8"
      artifactUri: "{{steps.train.results.uri}}"
      format: onnx
      metrics: {accuracy: "{{steps.train.results.acc}}"}
)";
  PipelineRun run(yaml);
  run.Plan();
  run.observed.tasks = {ChildTask("train", "Succeeded", {{"uri", "s3://m/8"}, {"acc", "0.93"}})};
  PipelinePlan plan = run.Plan(seconds{5});
  EXPECT_THAT(plan.register_models, IsEmpty());
  run.observed.tasks.push_back(ChildTask("register", "Succeeded"));
  plan = run.Plan(seconds{10});
  ASSERT_EQ(plan.register_models.size(), 1u);
  const Json& mv = plan.register_models[0];
  EXPECT_EQ(mv["metadata"]["name"], "churn-8");
  EXPECT_EQ(mv["spec"]["artifact"]["uri"], "s3://m/8");
  EXPECT_EQ(mv["spec"]["metrics"]["accuracy"], 0.93);
  EXPECT_EQ(mv["spec"]["lineage"]["pipeline"], "d");
  EXPECT_EQ(mv["spec"]["lineage"]["step"], "register");
  EXPECT_EQ(plan.status.phase, PipelinePhase::kSucceeded);

  plan = run.Plan(seconds{15});
  EXPECT_THAT(plan.register_models, IsEmpty()) << "a recorded success registers no more";
}

TEST(PipelinePlan, AStepWhoseTaskWasDeletedFails) {
  const std::string yaml = R"(
metadata: {name: d, namespace: ml}
spec:
  steps: [{name: a, task: {role: Spout, image: busybox}}]
)";
  PipelineRun run(yaml);
  run.Plan();
  const PipelinePlan& plan = run.Plan();
  EXPECT_THAT(Created(plan), IsEmpty()) << "a step is never started twice";
  EXPECT_EQ(StepOf(plan, "a").phase, StepPhase::kFailed);
  EXPECT_EQ(plan.status.phase, PipelinePhase::kFailed);
}

TEST(PipelinePlan, StatusOfTwoHundredStepsStaysSmall) {
  std::string yaml = "metadata: {name: big-pipeline-name, namespace: ml}\nspec:\n  steps:\n";
  for (int i = 0; i < 200; ++i) {
    yaml += "  - {name: step-number-" + std::to_string(i) +
            ", task: {role: Spout, image: busybox, results: [{name: r}]}}\n";
  }
  PipelineRun run(yaml);
  run.Plan();
  for (int i = 0; i < 200; ++i) {
    Json t = ChildTask("step-number-" + std::to_string(i), "Succeeded", {{"r", "s3://bucket/x"}});
    t["metadata"]["name"] = "big-pipeline-name-step-number-" + std::to_string(i);
    t["status"]["startTime"] = "2026-11-23T10:00:00Z";
    t["status"]["completionTime"] = "2026-11-23T10:00:09Z";
    run.observed.tasks.push_back(t);
  }
  EXPECT_EQ(run.Plan().status.phase, PipelinePhase::kSucceeded);
  EXPECT_LT(run.WrittenBack().ToJson()["status"].dump().size(), 64u * 1024);
}

// The tasks a plan created, as the next plan observes them, in `phase`.
void Observe(PipelineRun& run, const PipelinePlan& plan, const std::string& phase = "Running") {
  for (Json t : plan.create) {
    t["status"] = {{"phase", phase}, {"attempts", 1}};
    run.observed.tasks.push_back(std::move(t));
  }
}

// Sets the phase (and results) of the observed task named `name`.
void SetPhase(PipelineRun& run, const std::string& name, const std::string& phase,
              const Json& results = nullptr) {
  for (Json& t : run.observed.tasks) {
    if (t["metadata"]["name"] == name) {
      t["status"]["phase"] = phase;
      if (!results.is_null()) t["status"]["results"] = results;
      return;
    }
  }
  throw std::runtime_error("no task " + name);
}

const std::string kSweep = R"(
metadata: {name: d, namespace: ml}
spec:
  steps:
  - name: train
    matrix:
    - {name: lr, values: ["0.1", "0.01", "0.001"]}
    - {name: batch, values: ["16", "32", "64", "128"]}
    parallelism: 5
    task:
      role: Spout
      image: trainer
      args: ["--lr={{item.lr}}", "--batch={{item.batch}}"]
      results: [{name: acc}]
  - name: pick
    dependsOn: [train]
    task: {role: Bolt, image: busybox, args: ["{{steps.train.results.acc}}"]}
)";

TEST(PipelinePlan, AMatrixSweepRunsEveryCombinationWithinItsParallelismAndFansIn) {
  PipelineRun run(kSweep);
  PipelinePlan plan = run.Plan();
  EXPECT_THAT(Created(plan),
              ElementsAre("d-train-0", "d-train-1", "d-train-2", "d-train-3", "d-train-4"));
  EXPECT_EQ(plan.create[0]["spec"]["args"], (Json{"--lr=0.1", "--batch=16"}));
  EXPECT_EQ(plan.create[1]["spec"]["args"], (Json{"--lr=0.1", "--batch=32"}))
      << "the last list varies fastest";
  EXPECT_EQ(plan.create[4]["spec"]["args"], (Json{"--lr=0.01", "--batch=16"}));
  EXPECT_EQ(plan.create[4]["metadata"]["labels"]["millrace.io/item"], "4");
  EXPECT_EQ(plan.create[4]["metadata"]["labels"]["millrace.io/step"], "train");
  ASSERT_TRUE(StepOf(plan, "train").children);
  EXPECT_EQ(StepOf(plan, "train").children->total, 12);
  EXPECT_EQ(StepOf(plan, "train").children->started, 5);
  EXPECT_FALSE(StepOf(plan, "train").task) << "a fan-out step's record names no single Task";
  Observe(run, plan);

  size_t most = 0;
  for (int round = 1; round < 20 && StepOf(plan, "train").phase == StepPhase::kRunning; ++round) {
    // The two oldest running children finish each round.
    int finished = 0;
    for (Json& t : run.observed.tasks) {
      if (t["status"]["phase"] == "Running" && finished < 2) {
        const std::string name = t["metadata"]["name"];
        t["status"]["phase"] = "Succeeded";
        t["status"]["results"] = {{"acc", "0." + name.substr(name.rfind('-') + 1)}};
        ++finished;
      }
    }
    plan = run.Plan(seconds{round});
    Observe(run, plan);
    size_t running = 0;
    for (const Json& t : run.observed.tasks) running += t["status"]["phase"] == "Running" ? 1u : 0u;
    most = std::max(most, running);
    EXPECT_LE(running, 5u);
  }
  EXPECT_EQ(most, 5u);
  EXPECT_EQ(StepOf(plan, "train").phase, StepPhase::kSucceeded);
  EXPECT_EQ(StepOf(plan, "train").children->succeeded, 12);
  ASSERT_THAT(Created(plan), ElementsAre("d-pick"));
  const Json list = Json::parse(plan.create[0]["spec"]["args"][0].get<std::string>());
  EXPECT_EQ(list, (Json{"0.0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9",
                        "0.10", "0.11"}))
      << "the fan-in reads every child's result, in item order";
}

TEST(PipelinePlan, WithParamFansOutOverAnEarlierResultWithStableNamesForOddItems) {
  const std::string yaml = R"(
metadata: {name: d, namespace: ml}
spec:
  steps:
  - {name: list, task: {role: Spout, image: busybox, results: [{name: items}]}}
  - name: each
    dependsOn: [list]
    withParam: "{{steps.list.results.items}}"
    metadata: {annotations: {item: "{{item}}"}}
    task: {role: Bolt, image: busybox, args: ["{{item}}", "{{item.path}}"]}
)";
  PipelineRun run(yaml);
  run.Plan();
  const std::string odd(300, 'x');
  const Json items = Json::array({{{"path", "s3://a b/ü?"}, {"n", 3}}, {{"path", odd}}});
  run.observed.tasks = {ChildTask("list", "Succeeded", {{"items", items.dump()}})};
  const PipelinePlan plan = run.Plan(seconds{5});
  ASSERT_THAT(Created(plan), ElementsAre("d-each-0", "d-each-1"));
  EXPECT_EQ(plan.create[0]["spec"]["args"][1], "s3://a b/ü?");
  EXPECT_EQ(Json::parse(plan.create[0]["spec"]["args"][0].get<std::string>()), items[0]);
  EXPECT_EQ(plan.create[1]["spec"]["args"][1], odd);
  EXPECT_EQ(plan.create[1]["metadata"]["annotations"]["item"], items[1].dump());
}

TEST(PipelinePlan, AFanOutThatCannotStartFailsWithAReasonBeforeAnyChildRuns) {
  const std::string yaml = R"(
metadata: {name: d, namespace: ml}
spec:
  steps:
  - {name: list, task: {role: Spout, image: busybox, results: [{name: items}]}}
  - name: each
    dependsOn: [list]
    withParam: "{{steps.list.results.items}}"
    task: {role: Bolt, image: busybox, args: ["{{item}}"]}
)";
  const auto run_with = [&](const std::string& items) {
    PipelineRun run(yaml);
    run.Plan();
    run.observed.tasks = {ChildTask("list", "Succeeded", {{"items", items}})};
    return run.Plan(seconds{5});
  };
  PipelinePlan plan = run_with("not json");
  EXPECT_THAT(Created(plan), IsEmpty());
  EXPECT_THAT(*StepOf(plan, "each").message, HasSubstr("InvalidWithParam"));
  Json many = Json::array();
  for (int i = 0; i < 257; ++i) many.push_back(i);
  plan = run_with(many.dump());
  EXPECT_THAT(Created(plan), IsEmpty());
  EXPECT_THAT(*StepOf(plan, "each").message, HasSubstr("FanOutTooLarge"));
  EXPECT_EQ(plan.status.phase, PipelinePhase::kFailed);

  plan = run_with("[]");
  EXPECT_EQ(StepOf(plan, "each").phase, StepPhase::kSucceeded) << "no items: nothing to do";
  EXPECT_EQ(plan.status.phase, PipelinePhase::kSucceeded);
}

TEST(PipelinePlan, AFailedChildFailsItsStepOnceTheOthersFinishAndFailFastCancelsThem) {
  const std::string yaml = R"(
metadata: {name: d, namespace: ml}
spec:
  steps:
  - name: each
    withItems: ["a", "b", "c"]
    parallelism: 2
    task: {role: Spout, image: busybox, args: ["{{item}}"]}
)";
  PipelineRun run(yaml);
  PipelinePlan plan = run.Plan();
  Observe(run, plan);
  SetPhase(run, "d-each-0", "Failed");
  plan = run.Plan(seconds{1});
  EXPECT_THAT(Created(plan), ElementsAre("d-each-2")) << "the other items still run";
  EXPECT_EQ(StepOf(plan, "each").phase, StepPhase::kRunning);
  EXPECT_EQ(plan.events[0].reason, "StepChildFailed");
  Observe(run, plan);
  SetPhase(run, "d-each-1", "Succeeded");
  SetPhase(run, "d-each-2", "Succeeded");
  plan = run.Plan(seconds{2});
  EXPECT_EQ(StepOf(plan, "each").phase, StepPhase::kFailed);
  EXPECT_THAT(*StepOf(plan, "each").message, HasSubstr("1 of 3 children failed; first: item 0"));
  EXPECT_EQ(plan.status.phase, PipelinePhase::kFailed);

  std::string fast = yaml;
  fast.replace(fast.find("spec:\n"), 6, "spec:\n  failFast: true\n");
  PipelineRun fail_fast(fast);
  plan = fail_fast.Plan();
  Observe(fail_fast, plan);
  SetPhase(fail_fast, "d-each-0", "Failed");
  plan = fail_fast.Plan(seconds{1});
  EXPECT_THAT(Created(plan), IsEmpty());
  EXPECT_THAT(plan.cancel, ElementsAre("d-each-1"));
  SetPhase(fail_fast, "d-each-1", "Cancelled");
  plan = fail_fast.Plan(seconds{2});
  EXPECT_EQ(StepOf(plan, "each").phase, StepPhase::kFailed);
  EXPECT_EQ(StepOf(plan, "each").children->cancelled, 2) << "item 2 never started";
}

TEST(PipelinePlan, AFanOutCountsChildrenALostStatusWriteMadeAndNeverMakesThemTwice) {
  const std::string yaml = R"(
metadata: {name: d, namespace: ml}
spec:
  parallelism: 3
  steps:
  - {name: solo, task: {role: Spout, image: busybox}}
  - name: each
    withItems: ["a", "b", "c", "d"]
    task: {role: Spout, image: busybox, args: ["{{item}}"]}
)";
  PipelineRun run(yaml);
  PipelinePlan plan = run.Plan();
  EXPECT_THAT(Created(plan), ElementsAre("d-solo", "d-each-0", "d-each-1"))
      << "the pipeline's parallelism counts each child";
  // The status write was lost: a fresh run of the same Pipeline sees the Tasks only.
  PipelineRun again(yaml);
  Observe(again, plan);
  plan = again.Plan(seconds{1});
  EXPECT_THAT(Created(plan), IsEmpty());
  EXPECT_EQ(StepOf(plan, "each").children->started, 2);
  // A child deleted by hand fails the step once the rest are done.
  again.observed.tasks.erase(again.observed.tasks.begin() + 1);
  SetPhase(again, "d-solo", "Succeeded");
  plan = again.Plan(seconds{2});
  EXPECT_THAT(Created(plan), ElementsAre("d-each-2", "d-each-3"));
  EXPECT_EQ(StepOf(plan, "each").children->failed, 1);
}

TEST(PipelinePlan, StoredResultsAreBoundedAndAStepPastTheBoundFails) {
  const std::string yaml = R"(
metadata: {name: d, namespace: ml}
spec:
  steps:
  - {name: a, task: {role: Spout, image: busybox, results: [{name: r}]}}
  - {name: b, task: {role: Spout, image: busybox, results: [{name: r}]}}
)";
  PipelineRun run(yaml);
  run.Plan();
  run.observed.tasks = {ChildTask("a", "Succeeded", {{"r", std::string(200000, 'a')}}),
                        ChildTask("b", "Succeeded", {{"r", std::string(100000, 'b')}})};
  const PipelinePlan& plan = run.Plan(seconds{1});
  EXPECT_EQ(StepOf(plan, "a").phase, StepPhase::kSucceeded);
  EXPECT_EQ(StepOf(plan, "b").phase, StepPhase::kFailed);
  EXPECT_THAT(*StepOf(plan, "b").message, HasSubstr("ResultsTooLarge"));
  EXPECT_THAT(StepOf(plan, "b").results, IsEmpty());
  EXPECT_EQ(plan.status.phase, PipelinePhase::kFailed);
}

}  // namespace
}  // namespace millrace::reconcilers
