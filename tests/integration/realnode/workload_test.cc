// Tasks and Pipelines whose containers really run: the real millrace-controller binary against a
// control plane with a real node (scripts/cluster up --real-node: containerd, runc, a kubelet), so
// exit codes, termination messages, the kubelet's 4096-byte cut and OOM kills are the real ones.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/cluster.h"
#include "tests/support/operator_test.h"

namespace millrace::testing {
namespace {

// A batch task's spec that runs `script` with sh (and `args` as $0, $1 ...) on the real node, in
// the workload image scripts/testbed/build-images makes (Debian's busybox-static, user 65534).
json ShellTask(const std::string& role, const std::string& script,
               const std::vector<std::string>& args = {}) {
  json command = json::array({"sh", "-c", script});
  for (const auto& a : args) command.push_back(a);
  return {{"role", role},
          {"image", "docker.io/library/busybox:1.35"},
          {"imagePullPolicy", "IfNotPresent"},
          {"command", command}};
}

class RealNodeTest : public OperatorTest {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(C().Kubectl({"get", "node", "millrace-node"}).exit_code, 0)
        << "this binary needs a cluster with a real node (MILLRACE_TEST_CLUSTER_ARGS=--real-node)";
    StartSuite("realnode-operator.log");
  }

  // Creates Task `name` with `spec` (JSON is YAML) and waits until it reaches `phase`.
  json RunTask(const std::string& name, const json& spec, const std::string& phase) const {
    C().Apply("apiVersion: millrace.io/v1alpha1\nkind: Task\nmetadata: {name: " + name +
                  "}\nspec: " + spec.dump() + "\n",
              ns_);
    return WaitForPhase("task", name, phase, seconds{120});
  }
};

TEST_F(RealNodeTest, TheNodeIsAKubeletOnContainerdNotKwok) {
  const json node = C().KubectlJson({"get", "node", "millrace-node", "-o", "json"});
  EXPECT_THAT(node["status"]["nodeInfo"]["containerRuntimeVersion"].get<std::string>(),
              ::testing::StartsWith("containerd://"));
  EXPECT_EQ(node["metadata"]["annotations"].value("kwok.x-k8s.io/node", ""), "")
      << "not a kwok node";
}

TEST_F(RealNodeTest, AStepExitingThreeFailsWithExitCodeThreeAndTheContainersMessage) {
  const json task = RunTask(
      "exits-3", ShellTask("Spout", "echo 'bad input: row 17' >/dev/termination-log; exit 3"),
      "Failed");
  ASSERT_EQ(Phase(task), "Failed") << task.dump();
  EXPECT_EQ(task["status"]["failure"]["reason"], "Error");
  EXPECT_EQ(task["status"]["failure"]["exitCode"], 3);
  EXPECT_THAT(task["status"]["failure"]["message"].get<std::string>(),
              HasSubstr("bad input: row 17"));
}

TEST_F(RealNodeTest, AContainerOverItsMemoryLimitIsOOMKilledAndRetried) {
  // The shell holds 64 MiB in a variable under a 16 MiB limit: the kernel kills it.
  json spec = ShellTask("Spout", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo ${#x}");
  spec["resources"] = {{"limits", {{"memory", "16Mi"}}}};
  spec["retries"] = {{"limit", 1}, {"onFailure", {"OOMKilled"}}, {"backoff", {{"duration", "1s"}}}};
  const json task = RunTask("oom", spec, "Failed");
  ASSERT_EQ(Phase(task), "Failed") << task.dump();
  EXPECT_EQ(task["status"]["failure"]["reason"], "OOMKilled");
  EXPECT_EQ(task["status"]["attempts"], 2) << "OOMKilled is in onFailure: retried once";
}

TEST_F(RealNodeTest, AResultOverTheKubeletsLimitFailsWithResultsTooLarge) {
  // 5,000 bytes of results: the kubelet keeps only the last 4096.
  json spec = ShellTask("Spout", R"(printf '{"r":"%05000d"}' 7 >/dev/termination-log)");
  spec["results"] = {{{"name", "r"}}};
  const json task = RunTask("too-large", spec, "Failed");
  ASSERT_EQ(Phase(task), "Failed") << task.dump();
  EXPECT_EQ(task["status"]["failure"]["reason"], "ResultsTooLarge");
  EXPECT_THAT(task["status"]["failure"]["message"].get<std::string>(),
              HasSubstr("reached the kubelet's limit of 4096 bytes"));
}

TEST_F(RealNodeTest, APipelineOfShellStepsPassesResultsThroughTerminationMessages) {
  json count =
      ShellTask("Spout", R"(printf '{"n":"%s"}' "$0" >/dev/termination-log)", {"{{params.rows}}"});
  count["results"] = {{{"name", "n"}}};
  json twice = ShellTask(
      "Bolt", R"(test "$0" = 21 && printf '{"n":"%s"}' $(($0 * 2)) >/dev/termination-log)",
      {"{{steps.count.results.n}}"});
  twice["results"] = {{{"name", "n"}}};
  C().Apply(
      "apiVersion: millrace.io/v1alpha1\nkind: Pipeline\nmetadata: {name: shell}\nspec:\n"
      "  params: [{name: rows, value: \"21\"}]\n"
      "  steps:\n"
      "  - {name: count, task: " +
          count.dump() +
          "}\n"
          "  - {name: double, dependsOn: [count], task: " +
          twice.dump() + "}\n",
      ns_);
  const json pipeline = WaitForPhase("pipeline", "shell", "Succeeded", seconds{180});
  ASSERT_EQ(Phase(pipeline), "Succeeded") << pipeline.dump();
  const json doubled = Get("task", "shell-double");
  EXPECT_EQ(doubled["status"]["results"]["n"], "42") << doubled.dump();
}

}  // namespace
}  // namespace millrace::testing
