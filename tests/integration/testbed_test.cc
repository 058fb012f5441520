// The test bed itself: the control plane built by scripts/ behaves like a real cluster, because
// every other integration test relies on it doing so.
#include <chrono>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/cluster.h"

namespace millrace::testing {
namespace {

using std::chrono::seconds;
using ::testing::HasSubstr;

// The value of `condition` in a Job's or Deployment's status.conditions, or "" if absent.
std::string ConditionStatus(const nlohmann::json& obj, std::string_view type) {
  for (const auto& c : obj.value("/status/conditions"_json_pointer, nlohmann::json::array()))
    if (c.value("type", "") == type) return c.value("status", "");
  return "";
}

TEST(Testbed, ThreeFakeNodesAreReadyAndOneAdvertisesGpus) {
  const auto nodes = C().KubectlJson({"get", "nodes"});
  ASSERT_EQ(nodes["items"].size(), 3U);
  int gpu_nodes = 0;
  for (const auto& node : nodes["items"]) {
    EXPECT_EQ(ConditionStatus(node, "Ready"), "True") << node["metadata"]["name"];
    const auto& allocatable = node["status"]["allocatable"];
    if (allocatable.contains("nvidia.com/gpu")) {
      ++gpu_nodes;
      EXPECT_EQ(allocatable["nvidia.com/gpu"], "4");
    }
  }
  EXPECT_EQ(gpu_nodes, 1);
}

// A Job of one busybox container, run by a kwok node; `pod_metadata` is the pod template's
// metadata block (YAML lines indented by four spaces), if any.
std::string BusyboxJob(const std::string& name, const std::string& pod_metadata = "") {
  return "apiVersion: batch/v1\nkind: Job\nmetadata: {name: " + name +
         "}\nspec:\n  backoffLimit: 0\n  template:\n" + pod_metadata +
         "    spec:\n      restartPolicy: Never\n      containers: [{name: main, image: "
         "busybox}]\n";
}

TEST(Testbed, BatchJobRunsOnAFakeNodeAndCompletes) {
  const std::string ns = C().CreateNamespace();
  C().Apply(BusyboxJob("ok"), ns);
  nlohmann::json job;
  const bool complete = WaitFor(
      [&] {
        job = C().KubectlJson({"get", "job", "ok", "-n", ns});
        return ConditionStatus(job, "Complete") == "True";
      },
      seconds(60));
  ASSERT_TRUE(complete) << job.dump(2);
  const auto pods = C().KubectlJson({"get", "pods", "-n", ns, "-l", "job-name=ok"});
  ASSERT_EQ(pods["items"].size(), 1U);
  EXPECT_EQ(pods["items"][0]["status"]["phase"], "Succeeded");
  EXPECT_THAT(pods["items"][0]["spec"]["nodeName"].get<std::string>(), HasSubstr("kwok-node-"));
}

// The node lifecycle controller marks the pods of a node whose lease went stale not ready (an API
// server outage is enough); as a kubelet would once its node is back, kwok makes such a running pod
// Ready again (kwok's pod-complete stage needs Ready, so the pod can complete). The pod is kept
// running for an hour so that only the pod-ready-again stage can change it during the test.
TEST(Testbed, ARunningPodMarkedNotReadyBecomesReadyAgain) {
  const std::string ns = C().CreateNamespace();
  C().Apply(BusyboxJob("marked", "    metadata:\n      annotations: {" +
                                     KwokStageDelay("pod-complete", "1h") + "}\n"),
            ns);
  const auto ready = [&](std::string& pod) {
    const auto pods = C().KubectlJson({"get", "pods", "-n", ns, "-l", "job-name=marked"});
    if (pods["items"].size() != 1) return std::string();
    pod = pods["items"][0]["metadata"]["name"];
    return ConditionStatus(pods["items"][0], "Ready");
  };
  std::string pod;
  ASSERT_TRUE(WaitFor([&] { return ready(pod) == "True"; }, seconds(60)));
  // What the node lifecycle controller writes (MarkPodsNotReady).
  const auto marked = C().Kubectl(
      {"patch", "pod", pod, "-n", ns, "--subresource=status", "--type=strategic", "-p",
       R"({"status":{"conditions":[{"type":"Ready","status":"False","reason":"NodeNotReady"}]}})"});
  ASSERT_EQ(marked.exit_code, 0) << marked.err;
  ASSERT_TRUE(WaitFor([&] { return ready(pod) == "False"; }, seconds(10)));
  EXPECT_TRUE(WaitFor([&] { return ready(pod) == "True"; }, seconds(60)));
}

TEST(Testbed, JobWithKwokFailureLabelFailsWithTheReason) {
  const std::string ns = C().CreateNamespace();
  C().Apply(BusyboxJob("bad", R"(    metadata:
      labels: {pod-container-running-failed.stage.kwok.x-k8s.io: "true"}
      annotations:
        pod-container-running-failed.stage.kwok.x-k8s.io/exit-code: "3"
        pod-container-running-failed.stage.kwok.x-k8s.io/reason: OOMKilled
)"),
            ns);
  nlohmann::json job;
  const bool failed = WaitFor(
      [&] {
        job = C().KubectlJson({"get", "job", "bad", "-n", ns});
        return ConditionStatus(job, "Failed") == "True";
      },
      seconds(60));
  ASSERT_TRUE(failed) << job.dump(2);
  for (const auto& c : job["status"]["conditions"]) {
    if (c["type"] == "Failed") {
      EXPECT_EQ(c["reason"], "BackoffLimitExceeded");
    }
  }
  const auto pods = C().KubectlJson({"get", "pods", "-n", ns, "-l", "job-name=bad"});
  ASSERT_EQ(pods["items"].size(), 1U);
  const auto& terminated =
      pods["items"][0]["status"]["containerStatuses"][0]["state"]["terminated"];
  EXPECT_EQ(terminated["exitCode"], 3);
  EXPECT_EQ(terminated["reason"], "OOMKilled");
}

TEST(Testbed, ResourceQuotaRejectsOverQuotaPodsAndLimitRangeFillsDefaults) {
  const std::string ns = C().CreateNamespace();
  C().Apply(R"(
apiVersion: v1
kind: ResourceQuota
metadata: {name: small}
spec:
  hard: {requests.cpu: "1", requests.memory: 1Gi, limits.cpu: "2", limits.memory: 2Gi}
---
apiVersion: v1
kind: LimitRange
metadata: {name: defaults}
spec:
  limits:
  - type: Container
    default: {cpu: 500m, memory: 256Mi}
    defaultRequest: {cpu: 250m, memory: 128Mi}
)",
            ns);
  // The quota controller must have computed usage before the quota admits anything.
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto q = C().KubectlJson({"get", "resourcequota", "small", "-n", ns});
        return q.contains("status") && q["status"].contains("used");
      },
      seconds(30)));

  const auto small = C().Kubectl({"run", "small", "-n", ns, "--image=busybox", "--restart=Never"});
  ASSERT_EQ(small.exit_code, 0) << small.err;
  const auto pod = C().KubectlJson({"get", "pod", "small", "-n", ns});
  const auto& resources = pod["spec"]["containers"][0]["resources"];
  EXPECT_EQ(resources["requests"]["cpu"], "250m");
  EXPECT_EQ(resources["requests"]["memory"], "128Mi");
  EXPECT_EQ(resources["limits"]["cpu"], "500m");

  const auto big = C().Kubectl({"apply", "-n", ns, "-f", "-"}, R"(
apiVersion: v1
kind: Pod
metadata: {name: big}
spec:
  containers:
  - name: main
    image: busybox
    resources: {requests: {cpu: "4"}, limits: {cpu: "4"}}
)");
  EXPECT_NE(big.exit_code, 0);
  EXPECT_THAT(big.err, HasSubstr("Forbidden"));
  EXPECT_THAT(big.err, HasSubstr("exceeded quota: small"));
}

TEST(Testbed, RbacIsEnforcedUntilARoleBindingGrantsAccess) {
  const std::string ns = C().CreateNamespace();
  const auto denied = C().Kubectl({"--as=some-user", "get", "pods", "-n", ns});
  EXPECT_NE(denied.exit_code, 0);
  EXPECT_THAT(denied.err, HasSubstr("Forbidden"));
  EXPECT_THAT(denied.err, HasSubstr("User \"some-user\" cannot list resource \"pods\""));

  C().Apply(R"(
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: some-user-view}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: some-user}]
)",
            ns);
  // The RBAC authorizer reads through an informer: the grant takes effect shortly after the write.
  ProcessResult allowed;
  EXPECT_TRUE(WaitFor(
      [&] {
        allowed = C().Kubectl({"--as=some-user", "get", "pods", "-n", ns});
        return allowed.exit_code == 0;
      },
      seconds(20)))
      << allowed.err;
  // The grant is scoped to its namespace.
  const auto elsewhere = C().Kubectl({"--as=some-user", "get", "pods", "-n", "default"});
  EXPECT_NE(elsewhere.exit_code, 0);
}

TEST(Testbed, DeploymentBecomesAvailableAndItsChildrenAreGarbageCollected) {
  const std::string ns = C().CreateNamespace();
  C().Apply(R"(
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: main, image: nginx}]
)",
            ns);
  nlohmann::json deploy;
  ASSERT_TRUE(WaitFor(
      [&] {
        deploy = C().KubectlJson({"get", "deployment", "web", "-n", ns});
        return deploy["status"].value("availableReplicas", 0) == 3;
      },
      seconds(90)))
      << deploy["status"].dump(2);

  const auto del = C().Kubectl({"delete", "deployment", "web", "-n", ns, "--wait=false"});
  ASSERT_EQ(del.exit_code, 0) << del.err;
  size_t replicasets = 0, pods = 0;
  EXPECT_TRUE(WaitFor(
      [&] {
        replicasets = C().KubectlJson({"get", "replicasets", "-n", ns})["items"].size();
        pods = C().KubectlJson({"get", "pods", "-n", ns})["items"].size();
        return replicasets == 0 && pods == 0;
      },
      seconds(60)))
      << replicasets << " ReplicaSets and " << pods << " Pods left";
}

TEST(Testbed, SecondBuildOfTheControlPlaneIsACacheHit) {
  // The fixture already built (or found) the binaries; asking again must build no Go code.
  const auto r = RunProcess({SourceDir() + "/scripts/testbed/build"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("building")));
  EXPECT_EQ(r.out, C().testbed_bin() + "\n");
}

}  // namespace
}  // namespace millrace::testing
