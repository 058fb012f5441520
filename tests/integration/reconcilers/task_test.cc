// Tasks end to end: the real millrace-controller binary against a real control plane whose pods
// run on kwok nodes (kwok's stage labels and annotations on a Task reach its pods).
#include <algorithm>
#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crds/duration.h"
#include "tests/support/cluster.h"
#include "tests/support/operator_test.h"
#include "tests/support/process.h"

namespace millrace::testing {
namespace {

class TaskTest : public OperatorTest {
 protected:
  static void SetUpTestSuite() { StartSuite("task-operator.log"); }

  json WaitForPhase(const std::string& name, const std::string& phase,
                    seconds timeout = seconds(60)) const {
    return OperatorTest::WaitForPhase("task", name, phase, timeout);
  }

  std::string ReadyReason(const json& task) const {
    if (!task.is_object() || !task.contains("status")) return "";
    for (const auto& c : task["status"].value("conditions", json::array())) {
      if (c["type"] == "Ready") return c.value("reason", "");
    }
    return "";
  }

  void CancelKilledAt(const std::string& failpoint, bool status_written);

  std::vector<json> Jobs(const std::string& task) const {
    const json jobs = C().KubectlJson({"get", "jobs", "-n", ns_, "-l", "millrace.io/task=" + task});
    return jobs["items"].get<std::vector<json>>();
  }
};

// A batch task; `extra_meta` and `extra_spec` are YAML lines added to metadata and spec.
std::string BatchTask(const std::string& name, const std::string& extra_meta = "",
                      const std::string& extra_spec = "") {
  return "apiVersion: millrace.io/v1alpha1\nkind: Task\nmetadata:\n  name: " + name + "\n" +
         extra_meta + R"(spec:
  role: Spout
  output: {batch: {uri: "s3://lake/raw", partition: date=2026-11-22}}
  image: busybox
)" + extra_spec;
}

// Keeps the task's pod running for `delay` (kwok's pod-complete stage waits that long).
std::string RunFor(const std::string& delay) {
  return "  annotations: {" + KwokStageDelay("pod-complete", delay) + "}\n";
}

api::Time CreationOf(const json& object) {
  return *api::ParseTime(object["metadata"]["creationTimestamp"].get<std::string>());
}

TEST_F(TaskTest, BatchTaskRunsItsJobToSucceeded) {
  C().Apply(BatchTask("ingest"), ns_);
  const json task = WaitForPhase("ingest", "Succeeded");
  ASSERT_EQ(Phase(task), "Succeeded") << task.dump(2);
  EXPECT_EQ(task["status"]["attempts"], 1);
  EXPECT_EQ(task["status"]["children"]["job"], "ingest-1");
  EXPECT_TRUE(task["status"].contains("startTime"));
  EXPECT_TRUE(task["status"].contains("completionTime"));
  EXPECT_EQ(ReadyReason(task), "Succeeded");

  const json job = Get("job", "ingest-1");
  ASSERT_TRUE(job.is_object());
  EXPECT_EQ(job["metadata"]["ownerReferences"][0]["kind"], "Task");
  EXPECT_EQ(job["metadata"]["ownerReferences"][0]["uid"], task["metadata"]["uid"]);
  std::map<std::string, std::string> env;
  for (const auto& e : job["spec"]["template"]["spec"]["containers"][0]["env"]) {
    env[e["name"]] = e.value("value", "");
  }
  EXPECT_EQ(env["MILLRACE_OUTPUT_PARTITION"], "date=2026-11-22");
  EXPECT_EQ(env["MILLRACE_OUTPUT_RUN_URI"], "s3://lake/raw/date=2026-11-22/run=" +
                                                task["metadata"]["uid"].get<std::string>() + "/");

  ASSERT_TRUE(WaitFor(
      [&] {
        const auto r = EventReasons("ingest");
        return std::find(r.begin(), r.end(), "Succeeded") != r.end();
      },
      seconds(30)));
  const auto reasons = EventReasons("ingest");
  EXPECT_NE(std::find(reasons.begin(), reasons.end(), "AttemptStarted"), reasons.end());
}

// kwok's pod-complete stage in the test bed writes this annotation as the termination message,
// as a container writing /dev/termination-log would.
std::string TerminationMessage(const std::string& message) {
  return "  annotations:\n    kwok.millrace.io/termination-message: '" + message + "'\n";
}

TEST_F(TaskTest, ResultsFromTheTerminationMessageArePublishedAndOversizedOnesRefused) {
  C().Apply(BatchTask("counted", TerminationMessage(R"({"rows": "42", "uri": "s3://x/y"})"),
                      "  results: [{name: rows}, {name: uri}]\n"),
            ns_);
  json task = WaitForPhase("counted", "Succeeded");
  ASSERT_EQ(Phase(task), "Succeeded") << task.dump(2);
  EXPECT_EQ(task["status"]["results"], (json{{"rows", "42"}, {"uri", "s3://x/y"}}));

  const std::string big = R"({"blob": ")" + std::string(5000, 'x') + R"("})";
  C().Apply(BatchTask("chatty", TerminationMessage(big)), ns_);
  task = WaitForPhase("chatty", "Failed");
  ASSERT_EQ(Phase(task), "Failed") << task.dump(2);
  EXPECT_EQ(task["status"]["failure"]["reason"], "ResultsTooLarge");
  EXPECT_THAT(task["status"]["failure"]["message"].get<std::string>(),
              HasSubstr("the limit is 4096"));
}

TEST_F(TaskTest, FailingTaskRetriesWithGrowingDelaysThenFails) {
  C().Apply(BatchTask("flaky",
                      "  labels: {pod-container-running-failed.stage.kwok.x-k8s.io: \"true\"}\n"
                      "  annotations: {pod-container-running-failed.stage.kwok.x-k8s.io/exit-code: "
                      "\"3\", pod-container-running-failed.stage.kwok.x-k8s.io/reason: Error}\n",
                      "  retries: {limit: 2, backoff: {duration: 2s, factor: 2}}\n"),
            ns_);
  const json task = WaitForPhase("flaky", "Failed", seconds(90));
  ASSERT_EQ(Phase(task), "Failed") << task.dump(2);
  EXPECT_EQ(task["status"]["attempts"], 3);
  EXPECT_EQ(task["status"]["failure"]["exitCode"], 3);
  EXPECT_EQ(task["status"]["failure"]["reason"], "Error");
  EXPECT_EQ(ReadyReason(task), "Error");

  // One Job per attempt, each started at least the backoff after the one before: 2s, then 4s.
  std::vector<json> jobs = Jobs("flaky");
  ASSERT_EQ(jobs.size(), 3u);
  std::sort(jobs.begin(), jobs.end(), [](const json& a, const json& b) {
    return a["metadata"]["name"] < b["metadata"]["name"];
  });
  const auto gap1 = CreationOf(jobs[1]) - CreationOf(jobs[0]);
  const auto gap2 = CreationOf(jobs[2]) - CreationOf(jobs[1]);
  EXPECT_GE(gap1, seconds(2));
  EXPECT_GE(gap2, seconds(4));

  ASSERT_TRUE(WaitFor(
      [&] {
        const auto r = EventReasons("flaky");
        return std::count(r.begin(), r.end(), "AttemptFailed") == 2 &&
               std::find(r.begin(), r.end(), "Failed") != r.end();
      },
      seconds(30)))
      << ::testing::PrintToString(EventReasons("flaky"));
  const json events = C().KubectlJson(
      {"get", "events", "-n", ns_, "--field-selector", "involvedObject.name=flaky,reason=Failed"});
  ASSERT_EQ(events["items"].size(), 1u);
  EXPECT_THAT(events["items"][0]["message"].get<std::string>(), HasSubstr("exit code 3"));
  EXPECT_EQ(events["items"][0]["type"], "Warning");
}

TEST_F(TaskTest, TaskOverQuotaWaitsWithTheReasonAndRunsWhenTheQuotaAllows) {
  C().Apply(R"(
apiVersion: v1
kind: ResourceQuota
metadata: {name: small}
spec: {hard: {requests.cpu: 500m}}
)",
            ns_);
  ASSERT_TRUE(WaitFor([&] { return Get("resourcequota", "small")["status"].contains("used"); },
                      seconds(30)));
  C().Apply(BatchTask("big", "", "  resources: {requests: {cpu: \"1\"}, limits: {cpu: \"1\"}}\n"),
            ns_);
  json task = WaitForObject(
      "task", "big", [&](const json& t) { return ReadyReason(t) == "QuotaExceeded"; }, seconds(30));
  ASSERT_EQ(ReadyReason(task), "QuotaExceeded") << task.dump(2);
  EXPECT_EQ(task["status"]["phase"], "Pending");
  std::string message;
  for (const auto& c : task["status"]["conditions"]) {
    if (c["type"] == "Ready") message = c["message"];
  }
  EXPECT_THAT(message, HasSubstr("exceeded quota \"small\": requested requests.cpu=1"));
  EXPECT_TRUE(Jobs("big").empty());

  C().Apply(R"(
apiVersion: v1
kind: ResourceQuota
metadata: {name: small}
spec: {hard: {requests.cpu: "2"}}
)",
            ns_);
  task = WaitForPhase("big", "Succeeded");
  EXPECT_EQ(Phase(task), "Succeeded") << task.dump(2);
  const auto reasons = EventReasons("big");
  EXPECT_NE(std::find(reasons.begin(), reasons.end(), "QuotaExceeded"), reasons.end());
}

TEST_F(TaskTest, AFourWorkerTaskIsAnIndexedJobWithRanksAndAHeadlessServiceAndWaitsForQuota) {
  const std::string gang = "  workers: 4\n  resources: {requests: {cpu: 100m}}\n";
  C().Apply(BatchTask("ddp", RunFor("5s"), gang), ns_);
  // While it runs: four pods of one Indexed Job, each with its rank, behind a headless Service.
  std::vector<json> pods;
  ASSERT_TRUE(WaitFor(
      [&] {
        pods = C().KubectlJson({"get", "pods", "-n", ns_, "-l", "millrace.io/task=ddp"})["items"]
                   .get<std::vector<json>>();
        return pods.size() == 4;
      },
      seconds(60)))
      << pods.size();
  const json job = Get("job", "ddp-1");
  ASSERT_TRUE(job.is_object());
  EXPECT_EQ(job["spec"]["completionMode"], "Indexed");
  EXPECT_EQ(job["spec"]["completions"], 4);
  EXPECT_EQ(job["spec"]["parallelism"], 4);
  const json service = Get("service", "ddp");
  ASSERT_TRUE(service.is_object());
  EXPECT_EQ(service["spec"]["clusterIP"], "None");
  std::set<std::string> ranks;
  for (const json& pod : pods) {
    ranks.insert(pod["metadata"]["annotations"].value("batch.kubernetes.io/job-completion-index",
                                                      std::string()));
    EXPECT_EQ(pod["spec"]["subdomain"], "ddp");
    std::map<std::string, json> env;
    for (const auto& e : pod["spec"]["containers"][0]["env"]) env[e["name"]] = e;
    EXPECT_EQ(env["RANK"]["valueFrom"]["fieldRef"]["fieldPath"],
              "metadata.annotations['batch.kubernetes.io/job-completion-index']");
    EXPECT_EQ(env["WORLD_SIZE"].value("value", ""), "4");
    EXPECT_EQ(env["MASTER_ADDR"].value("value", ""), "ddp-1-0.ddp");
    EXPECT_EQ(env["MASTER_PORT"].value("value", ""), "29500");
  }
  EXPECT_EQ(ranks, (std::set<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(Phase(WaitForPhase("ddp", "Succeeded")), "Succeeded");
  EXPECT_TRUE(WaitFor([&] { return Get("service", "ddp").is_null(); }, seconds(30)))
      << "a finished gang's Service is removed";

  // A quota that fits three workers: none starts.
  C().Apply(R"(
apiVersion: v1
kind: ResourceQuota
metadata: {name: three-workers}
spec: {hard: {requests.cpu: 300m}}
)",
            ns_);
  ASSERT_TRUE(
      WaitFor([&] { return Get("resourcequota", "three-workers")["status"].contains("hard"); },
              seconds(30)));
  C().Apply(BatchTask("ddp-big", "", gang), ns_);
  const json waiting = WaitForObject(
      "task", "ddp-big", [&](const json& t) { return ReadyReason(t) == "QuotaExceeded"; },
      seconds(30));
  ASSERT_EQ(ReadyReason(waiting), "QuotaExceeded") << waiting.dump(2);
  EXPECT_EQ(waiting["status"]["phase"], "Pending");
  EXPECT_TRUE(Jobs("ddp-big").empty());
  EXPECT_TRUE(C().KubectlJson({"get", "pods", "-n", ns_, "-l", "millrace.io/task=ddp-big"})["items"]
                  .empty())
      << "no worker of a gang that does not fit starts";
}

TEST_F(TaskTest, StreamingTaskGetsDeploymentServiceAndAutoscalerAndRollsOut) {
  const auto manifest = [](const std::string& image) {
    return R"(
apiVersion: millrace.io/v1alpha1
kind: Task
metadata: {name: scorer}
spec:
  role: Bolt
  input: {stream: {topic: clicks, endpoint: "kafka.data.svc:9092"}}
  image: )" +
           image + R"(
  service: {port: 8080}
  scaling: {minReplicas: 2, maxReplicas: 4, targetCPUUtilization: 70}
)";
  };
  C().Apply(manifest("scorer:1"), ns_);
  json task = WaitForPhase("scorer", "Ready", seconds(90));
  ASSERT_EQ(Phase(task), "Ready") << task.dump(2);
  EXPECT_EQ(task["status"]["endpoint"], "http://scorer." + ns_ + ".svc:8080");
  EXPECT_GE(task["status"]["readyReplicas"].get<int>(), 1);

  const json deployment = Get("deployment", "scorer");
  const json service = Get("service", "scorer");
  const json hpa = Get("hpa", "scorer");
  ASSERT_TRUE(deployment.is_object() && service.is_object() && hpa.is_object());
  for (const json* child : {&deployment, &service, &hpa}) {
    EXPECT_EQ((*child)["metadata"]["ownerReferences"][0]["uid"], task["metadata"]["uid"]);
  }
  EXPECT_EQ(service["spec"]["ports"][0]["port"], 8080);
  EXPECT_EQ(hpa["spec"]["maxReplicas"], 4);

  // A new image rolls out.
  C().Apply(manifest("scorer:2"), ns_);
  ASSERT_TRUE(WaitFor(
      [&] {
        const json d = Get("deployment", "scorer");
        if (!d.is_object()) return false;
        const json status = d.value("status", json::object());
        return d["spec"]["template"]["spec"]["containers"][0]["image"] == "scorer:2" &&
               status.value("updatedReplicas", 0) >= 1 &&
               status.value("observedGeneration", 0) == d["metadata"].value("generation", -1);
      },
      seconds(60)));
  task = WaitForPhase("scorer", "Ready", seconds(60));
  EXPECT_EQ(Phase(task), "Ready") << task.dump(2);

  // Deleting the task removes its children.
  ASSERT_EQ(C().Kubectl({"delete", "task", "scorer", "-n", ns_, "--wait=true"}).exit_code, 0);
  EXPECT_TRUE(WaitFor(
      [&] {
        return !Get("deployment", "scorer").is_object() && !Get("service", "scorer").is_object() &&
               !Get("hpa", "scorer").is_object();
      },
      seconds(60)));
}

// An image change on a serving Task: kwok holds the new pod unready for 10 s while the old pod
// keeps serving. The Task says RollingOut meanwhile, is Ready again only once a pod of the new
// image is ready, and never says Degraded or warns.
TEST_F(TaskTest, AnImageChangeIsRollingOutNotReadyUntilANewPodIsReady) {
  const auto manifest = [](const std::string& image, const std::string& ready_delay) {
    std::string meta = "metadata:\n  name: ranker\n";
    if (!ready_delay.empty()) {
      meta += "  annotations:\n    pod-ready.stage.kwok.x-k8s.io/delay: \"" + ready_delay +
              "\"\n    pod-ready.stage.kwok.x-k8s.io/jitter-delay: \"" + ready_delay + "\"\n";
    }
    return "apiVersion: millrace.io/v1alpha1\nkind: Task\n" + meta + R"(spec:
  role: Bolt
  input: {stream: {topic: clicks, endpoint: "kafka.data.svc:9092"}}
  image: )" +
           image + R"(
  service: {port: 8080}
)";
  };
  C().Apply(manifest("ranker:1", ""), ns_);
  ASSERT_EQ(Phase(WaitForPhase("ranker", "Ready", seconds(90))), "Ready");

  // Every phase the Task shows from now on, in the API server's order.
  const auto watch = std::make_unique<Subprocess>(
      std::vector<std::string>{C().testbed_bin() + "/kubectl", "--kubeconfig=" + C().kubeconfig(),
                               "get", "task", "ranker", "-n", ns_, "--watch", "-o",
                               R"(jsonpath={.status.phase}{"\n"})"},
      C().state_dir() + "/ranker-watch-" + ns_ + ".log");
  ASSERT_TRUE(
      WaitFor([&] { return watch->Log().find("Ready") != std::string::npos; }, seconds(10)));
  C().Apply(manifest("ranker:2", "10s"), ns_);

  // The new pod becomes ready 10 s after it starts; the Task is Ready after that, not before.
  json new_pod;
  ASSERT_TRUE(WaitFor(
      [&] {
        const json pods = C().KubectlJson({"get", "pods", "-n", ns_});
        for (const auto& pod : pods["items"]) {
          if (pod["spec"]["containers"][0]["image"] != "ranker:2") continue;
          for (const auto& c : pod["status"].value("conditions", json::array())) {
            if (c["type"] == "Ready" && c["status"] == "True") {
              new_pod = pod;
              return true;
            }
          }
        }
        return false;
      },
      seconds(90)))
      << C().Kubectl({"get", "pods,deployments,tasks", "-n", ns_, "-o", "yaml"}).out;
  const json task = WaitForPhase("ranker", "Ready", seconds(60));
  ASSERT_EQ(Phase(task), "Ready") << task.dump(2);
  std::string task_ready, pod_ready;
  for (const auto& c : task["status"]["conditions"]) {
    if (c["type"] == "Ready") task_ready = c["lastTransitionTime"];
  }
  for (const auto& c : new_pod["status"]["conditions"]) {
    if (c["type"] == "Ready") pod_ready = c["lastTransitionTime"];
  }
  EXPECT_GE(task_ready, pod_ready)
      << "the Task said Ready at " << task_ready << ", its new pod became ready at " << pod_ready;

  // Shown: Ready, then RollingOut until Ready again; no Degraded, and no Warning event.
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string log = watch->Log();
        return log.find("RollingOut") != std::string::npos &&
               log.rfind("Ready\n") > log.find("RollingOut");
      },
      seconds(10)))
      << watch->Log();
  std::vector<std::string> phases;
  std::istringstream lines(watch->Log());
  for (std::string line; std::getline(lines, line);) {
    if (phases.empty() || phases.back() != line) phases.push_back(line);
  }
  EXPECT_EQ(phases, (std::vector<std::string>{"Ready", "RollingOut", "Ready"})) << watch->Log();
  const auto reasons = EventReasons("ranker");
  EXPECT_EQ(std::count(reasons.begin(), reasons.end(), "Degraded"), 0);
  EXPECT_NE(std::find(reasons.begin(), reasons.end(), "RollingOut"), reasons.end());
}

// A memory limit taken out of a streaming Task's spec is taken out of its Deployment (the cached
// Deployment still had it, so comparing it with the desired one alone saw nothing to write).
TEST_F(TaskTest, AFieldRemovedFromTheSpecIsRemovedFromTheDeployment) {
  C().Apply(R"(
apiVersion: millrace.io/v1alpha1
kind: Task
metadata: {name: limited}
spec:
  role: Bolt
  input: {stream: {topic: clicks}}
  image: limited:1
  resources: {requests: {cpu: 100m}, limits: {cpu: 500m, memory: 256Mi}}
)",
            ns_);
  const auto limits = [&] {
    const json d = Get("deployment", "limited");
    return d.is_object() ? d["spec"]["template"]["spec"]["containers"][0]
                               .value("resources", json::object())
                               .value("limits", json::object())
                         : json::object();
  };
  ASSERT_TRUE(WaitFor([&] { return limits().contains("memory"); }, seconds(60))) << limits();
  ASSERT_EQ(C().Kubectl({"patch", "task", "limited", "-n", ns_, "--type=json", "-p",
                         R"([{"op":"remove","path":"/spec/resources/limits/memory"}])"})
                .exit_code,
            0);
  EXPECT_TRUE(WaitFor([&] { return !limits().contains("memory") && limits().contains("cpu"); },
                      seconds(30)))
      << limits();
}

// A Task deleted and created again under the same name while its old Job is still being deleted
// (a finalizer holds it here): the new Task waits for the name, saying why, then runs.
TEST_F(TaskTest, ARecreatedTaskWaitsForItsPredecessorsJobInsteadOfFailing) {
  C().Apply(BatchTask("again", RunFor("60s")), ns_);
  ASSERT_EQ(Phase(WaitForPhase("again", "Running")), "Running");
  ASSERT_EQ(Hold("job", "again-1", true), 0);
  ASSERT_EQ(C().Kubectl({"delete", "task", "again", "-n", ns_, "--wait=true"}).exit_code, 0);
  ASSERT_TRUE(Terminating(WaitForObject("job", "again-1", Terminating, seconds(30))));
  C().Apply(BatchTask("again"), ns_);
  json task = WaitForObject(
      "task", "again", [&](const json& t) { return ReadyReason(t) == "WaitingForOldJob"; },
      seconds(30));
  ASSERT_EQ(ReadyReason(task), "WaitingForOldJob") << task.dump(2);
  EXPECT_EQ(Phase(task), "Pending");
  ASSERT_EQ(Hold("job", "again-1", false), 0);
  task = WaitForPhase("again", "Succeeded", seconds(90));
  ASSERT_EQ(Phase(task), "Succeeded") << task.dump(2);
  EXPECT_EQ(task["status"]["attempts"], 1);
  const std::vector<json> jobs = Jobs("again");
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["metadata"]["ownerReferences"][0]["uid"], task["metadata"]["uid"]);
}

TEST_F(TaskTest, OperatorKilledMidRunMakesNoDuplicateJob) {
  C().Apply(BatchTask("long", RunFor("6s")), ns_);
  json task = WaitForPhase("long", "Running");
  ASSERT_EQ(Phase(task), "Running") << task.dump(2);

  op_->Signal(SIGKILL);
  ASSERT_TRUE(op_->Wait(std::chrono::seconds(10)).has_value());
  op_ = StartOperator("task-operator-2.log");

  task = WaitForPhase("long", "Succeeded");
  EXPECT_EQ(Phase(task), "Succeeded") << task.dump(2);
  EXPECT_EQ(task["status"]["attempts"], 1);
  EXPECT_EQ(Jobs("long").size(), 1u);
}

TEST_F(TaskTest, APodDeletedByHandIsRetriedInsteadOfLeavingTheTaskRunning) {
  C().Apply(BatchTask("lost", RunFor("8s"), "  retries: {limit: 1, backoff: {duration: 1s}}\n"),
            ns_);
  ASSERT_EQ(Phase(WaitForPhase("lost", "Running")), "Running");
  ASSERT_EQ(
      C().Kubectl({"delete", "pods", "-n", ns_, "-l", "millrace.io/task=lost", "--wait=false"})
          .exit_code,
      0);
  const json task = WaitForPhase("lost", "Succeeded", seconds(90));
  ASSERT_EQ(Phase(task), "Succeeded") << task.dump(2);
  EXPECT_EQ(task["status"]["attempts"], 2);
  const auto reasons = EventReasons("lost");
  EXPECT_NE(std::find(reasons.begin(), reasons.end(), "AttemptFailed"), reasons.end());
}

// The pod watch lags the Job watch: a failpoint (an injected fault inside the operator, not
// synchronisation; the test waits on conditions) holds each pod event 3 s before the operator's
// cache applies it, so a Job is finished long before the cache shows its pod finished. The task
// must still end on its pod's real final state: the results the pod wrote, and a real failure's
// exit code (not an eviction, which this task's retry policy would retry).
TEST_F(TaskTest, ALaggingPodWatchNeverEndsATaskOnAPartialView) {
  const OperatorSwap lagging("task-operator-lagging.log", {},
                             {"MILLRACE_FAILPOINTS=informer.pods.event=sleep(3000)"});

  C().Apply(
      BatchTask("lagged", TerminationMessage(R"({"rows": "7"})"), "  results: [{name: rows}]\n"),
      ns_);
  C().Apply(BatchTask("lagged-fail",
                      "  labels: {pod-container-running-failed.stage.kwok.x-k8s.io: \"true\"}\n"
                      "  annotations: {pod-container-running-failed.stage.kwok.x-k8s.io/exit-code: "
                      "\"3\", pod-container-running-failed.stage.kwok.x-k8s.io/reason: Error}\n",
                      "  retries: {limit: 1, onFailure: [Evicted], backoff: {duration: 1s}}\n"),
            ns_);
  json task = WaitForPhase("lagged", "Succeeded", seconds(120));
  ASSERT_EQ(Phase(task), "Succeeded") << task.dump(2);
  EXPECT_EQ(task["status"]["results"], (json{{"rows", "7"}})) << task.dump(2);

  task = WaitForPhase("lagged-fail", "Failed", seconds(120));
  ASSERT_EQ(Phase(task), "Failed") << task.dump(2);
  EXPECT_EQ(task["status"]["attempts"], 1) << task.dump(2);
  EXPECT_EQ(task["status"]["failure"]["reason"], "Error") << task.dump(2);
  EXPECT_EQ(task["status"]["failure"]["exitCode"], 3) << task.dump(2);
  EXPECT_EQ(Jobs("lagged-fail").size(), 1u);
  // The failpoint really held the pod cache back: the operator logged it armed.
  EXPECT_THAT(op_->Log(), HasSubstr("failpoints armed"));
}

TEST_F(TaskTest, TimeoutFailsTheTaskAndStopsItsJob) {
  C().Apply(BatchTask("slow", RunFor("120s"), "  timeout: 3s\n"), ns_);
  const json task = WaitForPhase("slow", "Failed");
  ASSERT_EQ(Phase(task), "Failed") << task.dump(2);
  EXPECT_EQ(task["status"]["failure"]["reason"], "DeadlineExceeded");
  EXPECT_THAT(task["status"]["failure"]["message"].get<std::string>(), HasSubstr("timeout of 3s"));
  EXPECT_TRUE(WaitFor([&] { return Jobs("slow").empty(); }, seconds(30)));
}

TEST_F(TaskTest, CancelStopsARunningTask) {
  C().Apply(BatchTask("stopme", RunFor("120s")), ns_);
  ASSERT_EQ(Phase(WaitForPhase("stopme", "Running")), "Running");
  ASSERT_EQ(MergePatch("task", "stopme", R"({"spec":{"cancel":true}})"), 0);
  const json task = WaitForPhase("stopme", "Cancelled");
  ASSERT_EQ(Phase(task), "Cancelled") << task.dump(2);
  EXPECT_EQ(ReadyReason(task), "Cancelled");
  EXPECT_TRUE(WaitFor([&] { return Jobs("stopme").empty(); }, seconds(30)));
}

// A Job created just before its status write was lost, while the Job watch lags: a cancel that
// comes then must count that Job as an attempt, not end on the cache's count of none (the full
// chaos run found "timeout-116-long: Jobs [timeout-116-long-1] for 0 attempts"). Failpoints hold
// each status write 3 s (the test cancels meanwhile, so the write that would count the attempt is
// refused as a Conflict) and each Job watch event 10 s (the cache cannot show the Job when the
// cancel is reconciled). Every status write waits, not just the first: the operator's first
// reconciles at start-up are of other tests' Tasks.
TEST_F(TaskTest, ACancelCountsTheJobOfAnUnrecordedAttempt) {
  const OperatorSwap lagging("task-operator-unrecorded.log", {},
                             {"MILLRACE_FAILPOINTS=task.before-status-patch=sleep(3000);"
                              "informer.jobs.batch.event=sleep(10000)"});
  C().Apply(BatchTask("unrecorded", RunFor("120s")), ns_);
  ASSERT_TRUE(WaitFor([&] { return Jobs("unrecorded").size() == 1; }, seconds(60)));
  ASSERT_EQ(MergePatch("task", "unrecorded", R"({"spec":{"cancel":true}})"), 0);
  const json task = WaitForPhase("unrecorded", "Cancelled", seconds(60));
  ASSERT_EQ(Phase(task), "Cancelled") << task.dump(2);
  EXPECT_EQ(task["status"]["attempts"], 1) << task.dump(2);
  EXPECT_TRUE(WaitFor([&] { return Jobs("unrecorded").empty(); }, seconds(60)));
  EXPECT_THAT(op_->Log(), HasSubstr("patching the status: Conflict"))
      << "the first status write was not refused: the test did not take the path it names";
}

// A cancel whose reconcile dies at `failpoint` (armed "1*kill"): the Job still counts as an
// attempt and is stopped. The first operator dies just after creating the Job (the attempt is not
// in status); the second, started after the cancel, dies in the reconcile that stops that Job,
// with the cancel in status or not (`status_written`) and the Job still there; a third finishes
// the work.
void TaskTest::CancelKilledAt(const std::string& failpoint, bool status_written) {
  ExpectCleanStop(*op_);
  op_ = StartOperator("task-operator-killed-after-create.log", {},
                      {"MILLRACE_FAILPOINTS=task.after-job-create=1*kill"});
  C().Apply(BatchTask("killed", RunFor("120s")), ns_);
  ASSERT_EQ(op_->Wait(seconds(90)), 128 + SIGKILL) << "the after-job-create failpoint never fired";
  ASSERT_EQ(Jobs("killed").size(), 1u);
  ASSERT_FALSE(
      C().KubectlJson({"get", "task", "killed", "-n", ns_})["status"].contains("attempts"));
  ASSERT_EQ(MergePatch("task", "killed", R"({"spec":{"cancel":true}})"), 0);

  op_ = StartOperator("task-operator-killed-stopping.log", {},
                      {"MILLRACE_FAILPOINTS=" + failpoint + "=1*kill"});
  ASSERT_EQ(op_->Wait(seconds(90)), 128 + SIGKILL) << failpoint << " never fired";
  const json killed = C().KubectlJson({"get", "task", "killed", "-n", ns_});
  EXPECT_EQ(Phase(killed) == "Cancelled", status_written) << killed.dump(2);
  ASSERT_EQ(Jobs("killed").size(), 1u);

  op_ = StartOperator("task-operator-after-kills.log");
  const json task = WaitForPhase("killed", "Cancelled", seconds(90));
  ASSERT_EQ(Phase(task), "Cancelled") << task.dump(2);
  EXPECT_EQ(task["status"]["attempts"], 1) << task.dump(2);
  EXPECT_TRUE(WaitFor([&] { return Jobs("killed").empty(); }, seconds(60)));
}

// Dies before the status write. Deleting the Job before writing the status that counts it (as
// the full chaos run's third try did: "cancel-141-long" ended with attempts 0) leaves the third
// operator no Job to count.
TEST_F(TaskTest, ACancelKilledBeforeItsStatusWriteStillCountsTheAttempt) {
  CancelKilledAt("task.before-status-patch.removing", false);
}

// Dies after the status write (Cancelled, 1 attempt) and before the Job's delete: the next
// operator plans the delete again from what it observes.
TEST_F(TaskTest, ACancelKilledBetweenItsStatusWriteAndTheDeleteStillStopsTheJob) {
  CancelKilledAt("task.after-status-patch.removing", true);
}
}  // namespace
}  // namespace millrace::testing
