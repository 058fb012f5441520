// Pipelines end to end: the real millrace-controller binary against a real control plane whose
// pods run on kwok nodes. A step's metadata reaches its Task and pods, so kwok's stage labels and
// annotations (and the test bed's termination-message annotation) shape each step's run.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crds/duration.h"
#include "tests/support/cluster.h"
#include "tests/support/operator_test.h"
#include "tests/support/process.h"

namespace millrace::testing {
namespace {

api::Time TimeOf(const json& j, const char* key) {
  return *api::ParseTime(j.at(key).get<std::string>());
}

// Pipelines create objects in bursts: the operator gets a higher client rate limit.
const std::vector<std::string> kOperatorFlags = {"--kube-api-qps=200", "--kube-api-burst=400"};

class PipelineTest : public OperatorTest {
 protected:
  static void SetUpTestSuite() { StartSuite("pipeline-operator.log", kOperatorFlags); }

  json WaitForPhase(const std::string& name, const std::string& phase,
                    seconds timeout = seconds(90)) const {
    return OperatorTest::WaitForPhase("pipeline", name, phase, timeout);
  }

  static std::map<std::string, json> Steps(const json& pipeline) {
    std::map<std::string, json> steps;
    for (const auto& s : pipeline["status"]["steps"]) steps[s["name"]] = s;
    return steps;
  }

  // The names (sorted) of the Tasks labelled as pipeline `pipeline`'s, whoever owns them.
  std::vector<std::string> PipelineTasks(const std::string& pipeline) const {
    const json list = C().KubectlJson(
        {"get", "tasks", "-n", ns_, "-l", "millrace.io/pipeline=" + pipeline, "-o", "json"});
    std::vector<std::string> names;
    for (const json& t : list["items"]) names.push_back(t["metadata"]["name"]);
    std::ranges::sort(names);
    return names;
  }
};

// The most runs under way at one instant: at each start, the runs [start, end) it falls in.
// Times are whole seconds; a run that starts once another finished (a step after its dependency,
// a child within a parallelism) starts no earlier than the other's end, so it does not count it.
size_t MostAtOnce(const std::vector<std::pair<api::Time, api::Time>>& runs) {
  size_t most = 0;
  for (const auto& run : runs) {
    const auto at = std::ranges::count_if(
        runs, [&](const auto& r) { return r.first <= run.first && run.first < r.second; });
    most = std::max(most, static_cast<size_t>(at));
  }
  return most;
}

// A step; `extra` is YAML at the step's indentation (dependsOn, when, metadata ...).
std::string Step(const std::string& name, const std::string& extra = "",
                 const std::string& task_extra = "") {
  return "  - name: " + name + "\n" + extra + "    task: {role: Bolt, image: busybox" + task_extra +
         "}\n";
}

// Step metadata that keeps the step's pod running for `delay`.
std::string RunFor(const std::string& delay) {
  return "    metadata: {annotations: {" + KwokStageDelay("pod-complete", delay) + "}}\n";
}

// Step metadata that has kwok create the step's pod, make it ready and complete it after `delay`
// without the test bed's default wait of 1 to 5 s at each stage: the step runs for about `delay`.
std::string Promptly(const std::string& delay = "0s") {
  std::string stages;
  for (const char* stage : {"pod-create", "pod-ready"}) {
    stages += KwokStageDelay(stage, "0s") + ", ";
  }
  return "    metadata: {annotations: {" + stages + KwokStageDelay("pod-complete", delay) + "}}\n";
}

// Step metadata that makes kwok fail the step's pod with exit code 7.
const std::string kFails =
    "    metadata:\n"
    "      labels: {pod-container-running-failed.stage.kwok.x-k8s.io: \"true\"}\n"
    "      annotations: {pod-container-running-failed.stage.kwok.x-k8s.io/exit-code: \"7\", "
    "pod-container-running-failed.stage.kwok.x-k8s.io/reason: Error}\n";

std::string Pipeline(const std::string& name, const std::string& spec_extra,
                     const std::string& steps, const std::string& finally = "") {
  return "apiVersion: millrace.io/v1alpha1\nkind: Pipeline\nmetadata: {name: " + name +
         "}\nspec:\n" + spec_extra + "  steps:\n" + steps +
         (finally.empty() ? "" : "  finally:\n" + finally);
}

TEST_F(PipelineTest, DiamondRunsTheMiddleStepsConcurrentlyAndTheLastAfterBoth) {
  C().Apply(Pipeline("diamond", "",
                     Step("a") + Step("b", "    dependsOn: [a]\n" + RunFor("3s")) +
                         Step("c", "    dependsOn: [a]\n" + RunFor("3s")) +
                         Step("d", "    dependsOn: [b, c]\n")),
            ns_);
  const json p = WaitForPhase("diamond", "Succeeded");
  ASSERT_EQ(Phase(p), "Succeeded") << p.dump(2);
  EXPECT_EQ(p["status"]["progress"], "4/4");
  auto steps = Steps(p);
  // b and c ran side by side: each started before the other finished.
  EXPECT_LT(TimeOf(steps["b"], "startTime"), TimeOf(steps["c"], "completionTime"));
  EXPECT_LT(TimeOf(steps["c"], "startTime"), TimeOf(steps["b"], "completionTime"));
  EXPECT_GE(TimeOf(steps["b"], "startTime"), TimeOf(steps["a"], "completionTime"));
  EXPECT_GE(TimeOf(steps["d"], "startTime"), TimeOf(steps["b"], "completionTime"));
  EXPECT_GE(TimeOf(steps["d"], "startTime"), TimeOf(steps["c"], "completionTime"));
  const json task = Get("task", "diamond-d");
  ASSERT_TRUE(task.is_object());
  EXPECT_EQ(task["metadata"]["ownerReferences"][0]["kind"], "Pipeline");
  EXPECT_EQ(task["metadata"]["labels"]["millrace.io/step"], "d");
}

TEST_F(PipelineTest, FailFastCancelsRunningSiblingsRunsFinallyAndNamesTheFailedStep) {
  C().Apply(
      Pipeline("fast", "  failFast: true\n",
               Step("bad", kFails) + Step("slow", RunFor("120s")) +
                   Step("after", "    dependsOn: [bad]\n"),
               Step("report", "", ", args: [\"{{pipeline.phase}}\", \"{{steps.bad.phase}}\"]")),
      ns_);
  const json p = WaitForPhase("fast", "Failed", seconds(120));
  ASSERT_EQ(Phase(p), "Failed") << p.dump(2);
  EXPECT_EQ(p["status"]["failure"]["step"], "bad");
  EXPECT_EQ(p["status"]["failure"]["reason"], "StepFailed");
  EXPECT_THAT(p["status"]["failure"]["message"].get<std::string>(), HasSubstr("exit code 7"));
  auto steps = Steps(p);
  EXPECT_EQ(steps["slow"]["phase"], "Cancelled");
  EXPECT_EQ(steps["after"]["phase"], "Cancelled");
  EXPECT_EQ(steps["report"]["phase"], "Succeeded");
  const json report = Get("task", "fast-report");
  EXPECT_EQ(report["spec"]["args"], (json{"Failed", "Failed"}))
      << "finally steps read the outcome and the steps' phases";
  EXPECT_EQ(Phase(Get("task", "fast-slow")), "Cancelled");
}

TEST_F(PipelineTest, WithoutFailFastIndependentBranchesFinish) {
  C().Apply(
      Pipeline("branches", "",
               Step("bad", kFails) + Step("after", "    dependsOn: [bad]\n") +
                   Step("other", RunFor("2s")) + Step("other-next", "    dependsOn: [other]\n")),
      ns_);
  const json p = WaitForPhase("branches", "Failed", seconds(120));
  ASSERT_EQ(Phase(p), "Failed") << p.dump(2);
  auto steps = Steps(p);
  EXPECT_EQ(steps["other"]["phase"], "Succeeded");
  EXPECT_EQ(steps["other-next"]["phase"], "Succeeded");
  EXPECT_EQ(steps["after"]["phase"], "Cancelled");
  EXPECT_THAT(steps["after"]["message"].get<std::string>(), HasSubstr("bad did not succeed"));
  EXPECT_EQ(p["status"]["progress"], "2/4");
}

TEST_F(PipelineTest, WhenOnAResultSkipsOrRunsAndParametersAreSubstituted) {
  const std::string train =
      "    metadata: {annotations: {kwok.millrace.io/termination-message: "
      "'{\"accuracy\": \"0.93\"}'}}\n";
  C().Apply(
      Pipeline(
          "gated", "  params: [{name: date, value: \"2026-11-22\"}]\n",
          Step("train", train,
               ", results: [{name: accuracy}], output: {batch: {uri: \"s3://m\", "
               "partition: \"date={{params.date}}\"}}") +
              Step("deploy",
                   "    dependsOn: [train]\n    when: [{input: "
                   "\"{{steps.train.results.accuracy}}\", operator: Ge, values: [\"0.9\"]}]\n",
                   ", args: [\"--accuracy={{steps.train.results.accuracy}}\"]") +
              Step("alert",
                   "    dependsOn: [train]\n    when: [{input: "
                   "\"{{steps.train.results.accuracy}}\", operator: Lt, values: [\"0.5\"]}]\n")),
      ns_);
  const json p = WaitForPhase("gated", "Succeeded");
  ASSERT_EQ(Phase(p), "Succeeded") << p.dump(2);
  auto steps = Steps(p);
  EXPECT_EQ(steps["train"]["results"]["accuracy"], "0.93");
  EXPECT_EQ(steps["deploy"]["phase"], "Succeeded");
  EXPECT_EQ(steps["alert"]["phase"], "Skipped");
  EXPECT_THAT(steps["alert"]["message"].get<std::string>(), HasSubstr("when is false"));
  EXPECT_EQ(Get("task", "gated-deploy")["spec"]["args"][0], "--accuracy=0.93");
  EXPECT_EQ(Get("task", "gated-train")["spec"]["output"]["batch"]["partition"], "date=2026-11-22");
  EXPECT_FALSE(Get("task", "gated-alert").is_object()) << "a skipped step makes no Task";
  EXPECT_EQ(p["status"]["progress"], "3/3");
}

TEST_F(PipelineTest, ARegisterStepCreatesAModelVersionWithLineageAndResults) {
  const std::string train =
      "    metadata: {annotations: {kwok.millrace.io/termination-message: "
      "'{\"uri\": \"s3://models/churn/8/model.onnx\", \"accuracy\": \"0.93\"}'}}\n";
  const std::string register_model =
      "    dependsOn: [train]\n"
      "    registerModel:\n"
      "      model: churn\n"
      "      version: \"8\"\n"
      "      artifactUri: \"{{steps.train.results.uri}}\"\n"
      "      format: onnx\n"
      "      metrics: {accuracy: \"{{steps.train.results.accuracy}}\"}\n";
  C().Apply(Pipeline("train-churn", "",
                     Step("train", train, ", results: [{name: uri}, {name: accuracy}]") +
                         Step("register", register_model)),
            ns_);
  const json p = WaitForPhase("train-churn", "Succeeded");
  ASSERT_EQ(Phase(p), "Succeeded") << p.dump(2);
  const json mv = Get("modelversion", "churn-8");
  ASSERT_TRUE(mv.is_object()) << "the register step made ModelVersion churn-8";
  EXPECT_EQ(mv["spec"]["lineage"]["pipeline"], "train-churn");
  EXPECT_EQ(mv["spec"]["lineage"]["step"], "register");
  EXPECT_EQ(mv["spec"]["lineage"]["image"], "busybox");
  EXPECT_EQ(mv["spec"]["artifact"]["uri"], "s3://models/churn/8/model.onnx");
  EXPECT_DOUBLE_EQ(mv["spec"]["metrics"]["accuracy"].get<double>(), 0.93);
  EXPECT_FALSE(mv["metadata"].contains("ownerReferences")) << "the registry entry outlives the run";
}

TEST_F(PipelineTest, TwoHundredStepsFinishWithASmallStatus) {
  // A fan-out of 180 steps from a root, and a chain of 19 after the root; pods finish at once.
  const std::string quick = Promptly();
  std::string steps = Step("root", quick);
  for (int i = 0; i < 180; ++i) {
    steps += Step("wide-" + std::to_string(i), "    dependsOn: [root]\n" + quick);
  }
  std::string previous = "root";
  for (int i = 0; i < 19; ++i) {
    const std::string name = "chain-" + std::to_string(i);
    steps += Step(name, "    dependsOn: [" + previous + "]\n" + quick);
    previous = name;
  }
  C().Apply(Pipeline("big", "", steps), ns_);
  const json p = WaitForPhase("big", "Succeeded", seconds(600));
  ASSERT_EQ(Phase(p), "Succeeded") << p["status"].value("progress", "");
  EXPECT_EQ(p["status"]["progress"], "200/200");
  const size_t bytes = p["status"].dump().size();
  EXPECT_LT(bytes, 64u * 1024) << "status is " << bytes << " bytes";
  std::cout << "status of a 200-step pipeline: " << bytes << " bytes\n";
}

TEST_F(PipelineTest, OperatorKilledMidPipelineRunsNoStepTwice) {
  C().Apply(Pipeline("survive", "",
                     Step("a") + Step("b", "    dependsOn: [a]\n" + RunFor("6s")) +
                         Step("c", "    dependsOn: [b]\n")),
            ns_);
  ASSERT_TRUE(WaitFor([&] { return Phase(Get("task", "survive-b")) == "Running"; }, seconds(60)));
  op_->Signal(SIGKILL);
  ASSERT_TRUE(op_->Wait(seconds(10)).has_value());
  op_ = StartOperator("pipeline-operator-2.log", kOperatorFlags);

  const json p = WaitForPhase("survive", "Succeeded");
  ASSERT_EQ(Phase(p), "Succeeded") << p.dump(2);
  const json tasks =
      C().KubectlJson({"get", "tasks", "-n", ns_, "-l", "millrace.io/pipeline=survive"});
  EXPECT_EQ(tasks["items"].size(), 3u);
  for (const auto& t : tasks["items"]) {
    EXPECT_EQ(t["status"]["attempts"], 1) << t["metadata"]["name"];
  }
  const json jobs = C().KubectlJson({"get", "jobs", "-n", ns_});
  EXPECT_EQ(jobs["items"].size(), 3u) << "one Job per step";
}

// A Pipeline deleted and created again under the same name while its old step Task is still
// being deleted (a finalizer holds it here): the new run waits for the name, then runs the step,
// instead of failing it as deleted.
TEST_F(PipelineTest, ARecreatedPipelineWaitsForItsPredecessorsTaskInsteadOfFailing) {
  C().Apply(Pipeline("rerun", "", Step("only", RunFor("60s"))), ns_);
  ASSERT_TRUE(WaitFor([&] { return Phase(Get("task", "rerun-only")) == "Running"; }, seconds(60)));
  ASSERT_EQ(Hold("task", "rerun-only", true), 0);
  ASSERT_EQ(C().Kubectl({"delete", "pipeline", "rerun", "-n", ns_, "--wait=true"}).exit_code, 0);
  ASSERT_TRUE(Terminating(WaitForObject("task", "rerun-only", Terminating, seconds(30))));
  C().Apply(Pipeline("rerun", "", Step("only")), ns_);
  ASSERT_TRUE(WaitFor(
      [&] {
        return LogLine(*op_, "waiting for Task rerun-only of an earlier Pipeline to be deleted")
            .is_object();
      },
      seconds(30)))
      << Tail(op_->Log());
  const json waiting = Get("pipeline", "rerun");
  EXPECT_NE(Phase(waiting), "Failed") << waiting.dump(2);
  ASSERT_EQ(Hold("task", "rerun-only", false), 0);
  const json p = WaitForPhase("rerun", "Succeeded", seconds(90));
  ASSERT_EQ(Phase(p), "Succeeded") << p.dump(2) << waiting.dump(2);
  EXPECT_EQ(Get("task", "rerun-only")["metadata"]["ownerReferences"][0]["uid"],
            p["metadata"]["uid"]);
}

TEST_F(PipelineTest, CancelStopsRunningStepsAndStillRunsFinally) {
  C().Apply(
      Pipeline("stop", "", Step("long", RunFor("120s")) + Step("next", "    dependsOn: [long]\n"),
               Step("cleanup")),
      ns_);
  ASSERT_TRUE(WaitFor([&] { return Phase(Get("task", "stop-long")) == "Running"; }, seconds(60)));
  ASSERT_EQ(MergePatch("pipeline", "stop", R"({"spec":{"cancel":true}})"), 0);
  const json p = WaitForPhase("stop", "Cancelled");
  ASSERT_EQ(Phase(p), "Cancelled") << p.dump(2);
  auto steps = Steps(p);
  EXPECT_EQ(steps["long"]["phase"], "Cancelled");
  EXPECT_EQ(steps["next"]["phase"], "Cancelled");
  EXPECT_EQ(steps["cleanup"]["phase"], "Succeeded");
}

TEST_F(PipelineTest, TimeoutFailsTheRunAndStillRunsFinally) {
  C().Apply(Pipeline("late", "  timeout: 4s\n", Step("long", RunFor("120s")), Step("cleanup")),
            ns_);
  const json p = WaitForPhase("late", "Failed");
  ASSERT_EQ(Phase(p), "Failed") << p.dump(2);
  EXPECT_EQ(p["status"]["failure"]["reason"], "DeadlineExceeded");
  auto steps = Steps(p);
  EXPECT_EQ(steps["long"]["phase"], "Cancelled");
  EXPECT_EQ(steps["cleanup"]["phase"], "Succeeded");
}

// The timeout bounds the regular steps only: a finally step may run past it.
TEST_F(PipelineTest, AFinallyStepRunningPastTheTimeoutLeavesARunWhoseStepsFinishedInTimeSucceeded) {
  C().Apply(Pipeline("overtime", "  timeout: 10s\n", Step("quick", Promptly()),
                     Step("report", Promptly("13s"), ", args: [\"{{pipeline.phase}}\"]")),
            ns_);
  const json p = WaitForPhase("overtime", "Succeeded", seconds(120));
  ASSERT_EQ(Phase(p), "Succeeded") << p.dump(2);
  EXPECT_FALSE(p["status"].contains("failure")) << p.dump(2);
  auto steps = Steps(p);
  const api::Time start = TimeOf(p["status"], "startTime");
  ASSERT_LT(TimeOf(steps["quick"], "completionTime"), start + seconds(10))
      << "the regular step ended within the timeout: " << p.dump(2);
  EXPECT_GT(TimeOf(steps["report"], "completionTime"), start + seconds(11))
      << "the finally step ran past the timeout (the operator's deadline is a second later)";
  EXPECT_EQ(steps["report"]["phase"], "Succeeded");
  EXPECT_EQ(Get("task", "overtime-report")["spec"]["args"][0], "Succeeded");
}

TEST_F(PipelineTest, AnInvalidPipelineFailsWithTheReason) {
  C().Apply(
      Pipeline("loop", "", Step("a", "    dependsOn: [b]\n") + Step("b", "    dependsOn: [a]\n")),
      ns_);
  const json p = WaitForPhase("loop", "Failed", seconds(30));
  ASSERT_EQ(Phase(p), "Failed") << p.dump(2);
  EXPECT_EQ(p["status"]["failure"]["reason"], "InvalidSpec");
  EXPECT_THAT(p["status"]["failure"]["message"].get<std::string>(), HasSubstr("cycle"));
}

// The child Tasks of fan-out step `step` of pipeline `pipeline`, by name.
std::map<std::string, json> Children(const std::string& ns, const std::string& pipeline,
                                     const std::string& step) {
  const json list = Cluster::Get().KubectlJson(
      {"get", "tasks", "-n", ns, "-l",
       "millrace.io/pipeline=" + pipeline + ",millrace.io/step=" + step, "-o", "json"});
  std::map<std::string, json> children;
  for (const json& t : list["items"]) children[t["metadata"]["name"]] = t;
  return children;
}

TEST_F(PipelineTest, AMatrixSweepRunsTwelveChildrenAtMostFiveAtOnceAndTheFanInReadsAllResults) {
  const std::string train =
      "    matrix:\n"
      "    - {name: lr, values: [\"0.1\", \"0.01\", \"0.001\"]}\n"
      "    - {name: batch, values: [\"16\", \"32\", \"64\", \"128\"]}\n"
      "    parallelism: 5\n"
      "    metadata:\n"
      "      annotations: {" +
      KwokStageDelay("pod-complete", "2s") +
      ", kwok.millrace.io/termination-message: '{\"acc\": \"{{item.lr}}/{{item.batch}}\"}'}\n";
  C().Apply(Pipeline("sweep", "",
                     Step("train", train,
                          ", args: [\"--lr={{item.lr}}\", \"--batch={{item.batch}}\"], "
                          "results: [{name: acc}]") +
                         Step("pick", "    dependsOn: [train]\n",
                              ", args: [\"{{steps.train.results.acc}}\"]")),
            ns_);
  const json p = WaitForPhase("sweep", "Succeeded", seconds(240));
  ASSERT_EQ(Phase(p), "Succeeded") << p.dump(2);
  auto steps = Steps(p);
  EXPECT_EQ(steps["train"]["children"], (json{{"total", 12},
                                              {"started", 12},
                                              {"running", 0},
                                              {"succeeded", 12},
                                              {"failed", 0},
                                              {"cancelled", 0}}));
  json want = json::array();
  for (const char* lr : {"0.1", "0.01", "0.001"}) {
    for (const char* batch : {"16", "32", "64", "128"}) {
      want.push_back(std::string(lr) + "/" + batch);
    }
  }
  EXPECT_EQ(json::parse(steps["train"]["results"]["acc"].get<std::string>()), want);
  const json pick = Get("task", "sweep-pick");
  ASSERT_TRUE(pick.is_object());
  EXPECT_EQ(json::parse(pick["spec"]["args"][0].get<std::string>()), want)
      << "the fan-in step receives all 12 results, in item order";

  const auto children = Children(ns_, "sweep", "train");
  ASSERT_EQ(children.size(), 12u);
  std::vector<std::pair<api::Time, api::Time>> runs;
  for (int i = 0; i < 12; ++i) {
    const std::string name = "sweep-train-" + std::to_string(i);
    ASSERT_TRUE(children.contains(name)) << name;
    const json& child = children.at(name);
    const std::string acc = want[static_cast<size_t>(i)];
    EXPECT_EQ(child["spec"]["args"][0], "--lr=" + acc.substr(0, acc.find('/'))) << name;
    runs.emplace_back(TimeOf(child["status"], "startTime"),
                      TimeOf(child["status"], "completionTime"));
  }
  const size_t most = MostAtOnce(runs);
  EXPECT_LE(most, 5u) << "parallelism 5";
  EXPECT_GE(most, 2u) << "the children ran side by side";
}

TEST_F(PipelineTest, WithParamFansOutOverAnEarlierResultAndOddItemsKeepValidNames) {
  const std::string odd(300, 'x');
  const std::string list =
      "    metadata:\n"
      "      annotations:\n"
      "        kwok.millrace.io/termination-message: '{\"items\": \"[\\\"a b/c?&\\\", \\\"" +
      odd + "\\\", \\\"Ünï {x}\\\"]\"}'\n";
  C().Apply(Pipeline("fan", "",
                     Step("list", list, ", results: [{name: items}]") +
                         Step("each",
                              "    dependsOn: [list]\n"
                              "    withParam: \"{{steps.list.results.items}}\"\n",
                              ", args: [\"{{item}}\"]")),
            ns_);
  const json p = WaitForPhase("fan", "Succeeded", seconds(120));
  ASSERT_EQ(Phase(p), "Succeeded") << p.dump(2);
  const auto children = Children(ns_, "fan", "each");
  ASSERT_EQ(children.size(), 3u);
  EXPECT_EQ(children.at("fan-each-0")["spec"]["args"][0], "a b/c?&");
  EXPECT_EQ(children.at("fan-each-1")["spec"]["args"][0], odd);
  EXPECT_EQ(children.at("fan-each-2")["spec"]["args"][0], "Ünï {x}");
  for (const auto& [name, child] : children) EXPECT_EQ(Phase(child), "Succeeded") << name;
}

TEST_F(PipelineTest, ParallelismTwoRunsFourIndependentStepsAtMostTwoAtOnce) {
  std::string steps;
  for (const char* name : {"p0", "p1", "p2", "p3"}) steps += Step(name, Promptly("3s"));
  C().Apply(Pipeline("capped", "  parallelism: 2\n", steps), ns_);
  const json p = WaitForPhase("capped", "Succeeded", seconds(120));
  ASSERT_EQ(Phase(p), "Succeeded") << p.dump(2);
  EXPECT_EQ(p["status"]["progress"], "4/4");
  std::vector<std::pair<api::Time, api::Time>> runs;
  for (const auto& [name, step] : Steps(p)) {
    ASSERT_EQ(step["phase"], "Succeeded") << name;
    runs.emplace_back(TimeOf(step, "startTime"), TimeOf(step, "completionTime"));
  }
  ASSERT_EQ(runs.size(), 4u);
  const size_t most = MostAtOnce(runs);
  EXPECT_LE(most, 2u) << "parallelism 2: " << p["status"]["steps"].dump(2);
  EXPECT_GE(most, 2u) << "the steps ran side by side: " << p["status"]["steps"].dump(2);
}

TEST_F(PipelineTest, ASuspendedPipelineCreatesNoTaskUntilResumedThenRunsToSuccess) {
  C().Apply(Pipeline("held", "  suspend: true\n",
                     Step("a", Promptly()) + Step("b", "    dependsOn: [a]\n" + Promptly())),
            ns_);
  json p = WaitForPhase("held", "Suspended", seconds(60));
  ASSERT_EQ(Phase(p), "Suspended") << p.dump(2);
  EXPECT_EQ(PipelineTasks("held"), std::vector<std::string>{}) << "suspended: no Task";
  // A spec change the operator reconciles (status.observedGeneration follows it): still held.
  ASSERT_EQ(MergePatch("pipeline", "held", R"({"spec":{"parallelism":1}})"), 0);
  p = WaitForObject(
      "pipeline", "held",
      [](const json& o) {
        return o.is_object() && o.contains("status") &&
               o["status"].value("observedGeneration", int64_t{0}) ==
                   o["metadata"].value("generation", int64_t{-1});
      },
      seconds(30));
  ASSERT_EQ(p["status"].value("observedGeneration", int64_t{0}),
            p["metadata"].value("generation", int64_t{-1}))
      << p.dump(2);
  EXPECT_EQ(Phase(p), "Suspended") << p.dump(2);
  EXPECT_FALSE(p["status"].contains("startTime")) << "it never started";
  EXPECT_EQ(PipelineTasks("held"), std::vector<std::string>{}) << "still suspended: no Task";

  ASSERT_EQ(MergePatch("pipeline", "held", R"({"spec":{"suspend":false}})"), 0);
  p = WaitForPhase("held", "Succeeded");
  ASSERT_EQ(Phase(p), "Succeeded") << p.dump(2);
  EXPECT_EQ(p["status"]["progress"], "2/2");
  EXPECT_EQ(PipelineTasks("held"), (std::vector<std::string>{"held-a", "held-b"}));
}

TEST_F(PipelineTest, TtlAfterFinishedDeletesThePipelineAndItsTasksFiveSecondsAfterItSucceeded) {
  C().Apply(Pipeline("brief", "  ttlAfterFinished: 5s\n",
                     Step("a", Promptly()) + Step("b", "    dependsOn: [a]\n" + Promptly())),
            ns_);
  const json p = WaitForPhase("brief", "Succeeded");
  ASSERT_EQ(Phase(p), "Succeeded") << p.dump(2);
  const api::Time completed = TimeOf(p["status"], "completionTime");
  std::vector<std::string> tasks;
  for (const auto& [name, step] : Steps(p)) tasks.push_back(step["task"]);
  ASSERT_EQ(tasks, (std::vector<std::string>{"brief-a", "brief-b"})) << p.dump(2);

  ASSERT_TRUE(WaitFor([&] { return !Get("pipeline", "brief").is_object(); }, seconds(60)))
      << Get("pipeline", "brief").dump(2);
  EXPECT_GE(std::chrono::system_clock::now(), completed + seconds(5))
      << "deleted before its ttlAfterFinished";
  // Its Tasks follow by their ownerReferences (the garbage collector).
  EXPECT_TRUE(WaitFor(
      [&] {
        return std::ranges::none_of(
            tasks, [&](const std::string& t) { return Get("task", t).is_object(); });
      },
      seconds(60)))
      << C().Kubectl({"get", "tasks", "-n", ns_, "-o", "yaml"}).out;
  EXPECT_EQ(PipelineTasks("brief"), std::vector<std::string>{});
}

// A streaming step (a Task with a stream input: a Deployment and a Service) counts as done for
// its dependants once Ready but keeps serving: the run is a live topology until cancelled.
TEST_F(PipelineTest, AStreamingStepIsReadyItsDependantRunsAndTheRunStaysRunningUntilCancelled) {
  C().Apply(Pipeline("live", "",
                     Step("serve", "", ", input: {stream: {topic: clicks}}") +
                         Step("enrich", "    dependsOn: [serve]\n" + Promptly())),
            ns_);
  json p = WaitForObject(
      "pipeline", "live",
      [](const json& o) {
        if (!o.is_object() || !o.contains("status")) return false;
        const auto steps = Steps(o);
        return steps.contains("serve") && steps.contains("enrich") &&
               steps.at("serve").value("phase", "") == "Ready" &&
               steps.at("enrich").value("phase", "") == "Succeeded";
      },
      seconds(120));
  auto steps = Steps(p);
  ASSERT_EQ(steps["enrich"]["phase"], "Succeeded") << p.dump(2);
  EXPECT_EQ(steps["serve"]["phase"], "Ready");
  EXPECT_EQ(Phase(p), "Running") << "a live topology: " << p.dump(2);
  EXPECT_EQ(p["status"]["progress"], "2/2") << "a Ready streaming step counts as done";
  EXPECT_FALSE(p["status"].contains("completionTime"));

  const json serve = Get("task", "live-serve");
  ASSERT_EQ(Phase(serve), "Ready") << serve.dump(2);
  EXPECT_TRUE(Get("deployment", "live-serve").is_object());
  // enrich started once serve was Ready.
  std::string ready_since;
  for (const auto& c : serve["status"]["conditions"]) {
    if (c["type"] == "Ready" && c["status"] == "True") ready_since = c["lastTransitionTime"];
  }
  ASSERT_FALSE(ready_since.empty()) << serve.dump(2);
  EXPECT_GE(TimeOf(steps["enrich"], "startTime"), *api::ParseTime(ready_since));

  ASSERT_EQ(MergePatch("pipeline", "live", R"({"spec":{"cancel":true}})"), 0);
  p = WaitForPhase("live", "Cancelled");
  ASSERT_EQ(Phase(p), "Cancelled") << p.dump(2);
  steps = Steps(p);
  EXPECT_EQ(steps["serve"]["phase"], "Cancelled");
  EXPECT_EQ(steps["enrich"]["phase"], "Succeeded");
  EXPECT_EQ(Phase(Get("task", "live-serve")), "Cancelled");
  EXPECT_TRUE(WaitFor([&] { return !Get("deployment", "live-serve").is_object(); }, seconds(60)))
      << "the cancelled streaming Task stops serving";
}

}  // namespace
}  // namespace millrace::testing
