#include "reconcilers/pipeline.h"

#include <stdexcept>

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

TEST(PipelinePlan, DiamondStartsStepsAsTheirDependenciesSucceed) {
  api::Pipeline p = PipelineFrom(kDiamond);
  PipelinePlan plan = PlanPipeline(p, {}, kT0);
  EXPECT_THAT(Created(plan), ElementsAre("d-a"));
  EXPECT_EQ(plan.status.phase, PipelinePhase::kRunning);
  EXPECT_EQ(plan.create[0]["spec"]["args"], (Json{"2026-11-22", "uid-p"}));
  EXPECT_EQ(plan.create[0]["metadata"]["ownerReferences"][0]["uid"], "uid-p");
  EXPECT_EQ(plan.create[0]["metadata"]["labels"]["millrace.io/step"], "a");

  p = PipelineFrom(kDiamond, Written(plan, p));
  ObservedPipeline observed;
  observed.tasks = {ChildTask("a", "Succeeded", {{"n", "42"}})};
  plan = PlanPipeline(p, observed, kT0 + seconds{5});
  EXPECT_THAT(Created(plan), ElementsAre("d-b", "d-c"));
  EXPECT_EQ(plan.create[0]["spec"]["args"][0], "42") << "results are substituted at start";
  EXPECT_EQ(plan.status.progress, "1/5");

  p = PipelineFrom(kDiamond, Written(plan, p));
  observed.tasks.push_back(ChildTask("b", "Succeeded"));
  observed.tasks.push_back(ChildTask("c", "Running"));
  plan = PlanPipeline(p, observed, kT0 + seconds{10});
  EXPECT_THAT(Created(plan), IsEmpty()) << "d waits for c";

  p = PipelineFrom(kDiamond, Written(plan, p));
  observed.tasks[2] = ChildTask("c", "Succeeded");
  plan = PlanPipeline(p, observed, kT0 + seconds{15});
  EXPECT_THAT(Created(plan), ElementsAre("d-d"));

  p = PipelineFrom(kDiamond, Written(plan, p));
  observed.tasks.push_back(ChildTask("d", "Succeeded"));
  plan = PlanPipeline(p, observed, kT0 + seconds{20});
  EXPECT_THAT(Created(plan), ElementsAre("d-report"));
  EXPECT_EQ(plan.create[0]["spec"]["args"], (Json{"Succeeded", "Succeeded"}));

  p = PipelineFrom(kDiamond, Written(plan, p));
  observed.tasks.push_back(ChildTask("report", "Succeeded"));
  plan = PlanPipeline(p, observed, kT0 + seconds{25});
  EXPECT_EQ(plan.status.phase, PipelinePhase::kSucceeded);
  EXPECT_EQ(plan.status.progress, "5/5");
  EXPECT_EQ(plan.status.completion_time, kT0 + seconds{25});
  EXPECT_TRUE(PipelineStatusPatch(PipelineFrom(kDiamond, Written(plan, p)), plan.status).is_null());
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
  api::Pipeline p = PipelineFrom(yaml);
  PipelinePlan plan = PlanPipeline(p, {}, kT0);
  p = PipelineFrom(yaml, Written(plan, p));
  ObservedPipeline observed;
  observed.tasks = {ChildTask("a", "Failed", nullptr, "exit code 7"), ChildTask("b", "Running")};
  plan = PlanPipeline(p, observed, kT0 + seconds{5});
  EXPECT_THAT(plan.cancel, ElementsAre("d-b"));
  EXPECT_EQ(StepOf(plan, "c").phase, StepPhase::kCancelled);
  EXPECT_EQ(plan.status.phase, PipelinePhase::kRunning) << "until b has stopped";

  p = PipelineFrom(yaml, Written(plan, p));
  observed.tasks[1] = ChildTask("b", "Cancelled");
  observed.tasks[1]["spec"]["cancel"] = true;
  plan = PlanPipeline(p, observed, kT0 + seconds{8});
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
  api::Pipeline p = PipelineFrom(yaml);
  PipelinePlan plan = PlanPipeline(p, {}, kT0);
  p = PipelineFrom(yaml, Written(plan, p));
  ObservedPipeline observed;
  observed.tasks = {ChildTask("a", "Failed"), ChildTask("b", "Succeeded")};
  plan = PlanPipeline(p, observed, kT0 + seconds{5});
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
  api::Pipeline p = PipelineFrom(yaml);
  PipelinePlan plan = PlanPipeline(p, {}, kT0);
  p = PipelineFrom(yaml, Written(plan, p));
  ObservedPipeline observed;
  observed.tasks = {ChildTask("train", "Succeeded", {{"acc", "0.85"}})};
  plan = PlanPipeline(p, observed, kT0 + seconds{5});
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

TEST(PipelinePlan, SuspendedRunStartsWhenResumedAndIsDeletedAfterItsTtl) {
  const std::string suspended = R"(
metadata: {name: d, namespace: ml}
spec:
  suspend: true
  ttlAfterFinished: 1h
  steps: [{name: a, task: {role: Spout, image: busybox}}]
)";
  api::Pipeline p = PipelineFrom(suspended);
  PipelinePlan plan = PlanPipeline(p, {}, kT0);
  EXPECT_EQ(plan.status.phase, PipelinePhase::kSuspended);

  std::string resumed = suspended;
  resumed.replace(resumed.find("suspend: true"), 13, "suspend: false");
  p = PipelineFrom(resumed, Written(plan, p));
  plan = PlanPipeline(p, {}, kT0 + seconds{5});
  EXPECT_THAT(Created(plan), ElementsAre("d-a"));
  EXPECT_EQ(plan.status.start_time, kT0 + seconds{5});

  p = PipelineFrom(resumed, Written(plan, p));
  ObservedPipeline observed;
  observed.tasks = {ChildTask("a", "Succeeded")};
  plan = PlanPipeline(p, observed, kT0 + seconds{10});
  EXPECT_EQ(plan.status.phase, PipelinePhase::kSucceeded);
  EXPECT_EQ(plan.requeue_after, seconds{3600});
  EXPECT_FALSE(plan.delete_pipeline);

  p = PipelineFrom(resumed, Written(plan, p));
  plan = PlanPipeline(p, observed, kT0 + seconds{10 + 3600});
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
  api::Pipeline p = PipelineFrom(yaml);
  PipelinePlan plan = PlanPipeline(p, {}, kT0);
  p = PipelineFrom(yaml, Written(plan, p));
  ObservedPipeline observed;
  observed.tasks = {ChildTask("train", "Succeeded", {{"uri", "s3://m/8"}, {"acc", "0.93"}})};
  plan = PlanPipeline(p, observed, kT0 + seconds{5});
  EXPECT_THAT(plan.register_models, IsEmpty());
  p = PipelineFrom(yaml, Written(plan, p));
  observed.tasks.push_back(ChildTask("register", "Succeeded"));
  plan = PlanPipeline(p, observed, kT0 + seconds{10});
  ASSERT_EQ(plan.register_models.size(), 1u);
  const Json& mv = plan.register_models[0];
  EXPECT_EQ(mv["metadata"]["name"], "churn-8");
  EXPECT_EQ(mv["spec"]["artifact"]["uri"], "s3://m/8");
  EXPECT_EQ(mv["spec"]["metrics"]["accuracy"], 0.93);
  EXPECT_EQ(mv["spec"]["lineage"]["pipeline"], "d");
  EXPECT_EQ(mv["spec"]["lineage"]["step"], "register");
  EXPECT_EQ(plan.status.phase, PipelinePhase::kSucceeded);

  plan = PlanPipeline(PipelineFrom(yaml, Written(plan, p)), observed, kT0 + seconds{15});
  EXPECT_THAT(plan.register_models, IsEmpty()) << "a recorded success registers no more";
}

TEST(PipelinePlan, AStepWhoseTaskWasDeletedFails) {
  const std::string yaml = R"(
metadata: {name: d, namespace: ml}
spec:
  steps: [{name: a, task: {role: Spout, image: busybox}}]
)";
  api::Pipeline p = PipelineFrom(yaml);
  const PipelinePlan first = PlanPipeline(p, {}, kT0);
  const PipelinePlan plan = PlanPipeline(PipelineFrom(yaml, Written(first, p)), {}, kT0);
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
  api::Pipeline p = PipelineFrom(yaml);
  const PipelinePlan first = PlanPipeline(p, {}, kT0);
  ObservedPipeline observed;
  for (int i = 0; i < 200; ++i) {
    Json t = ChildTask("step-number-" + std::to_string(i), "Succeeded", {{"r", "s3://bucket/x"}});
    t["metadata"]["name"] = "big-pipeline-name-step-number-" + std::to_string(i);
    t["status"]["startTime"] = "2026-11-23T10:00:00Z";
    t["status"]["completionTime"] = "2026-11-23T10:00:09Z";
    observed.tasks.push_back(t);
  }
  const PipelinePlan done = PlanPipeline(PipelineFrom(yaml, Written(first, p)), observed, kT0);
  EXPECT_EQ(done.status.phase, PipelinePhase::kSucceeded);
  EXPECT_LT(Written(done, p).dump().size(), 64u * 1024);
}

}  // namespace
}  // namespace millrace::reconcilers
