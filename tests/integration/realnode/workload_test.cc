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

// A streaming task's spec: busybox's httpd answers `body` on port 8080, behind the task's Service.
json WebTask(const std::string& image, const std::string& body) {
  json spec = ShellTask("Bolt",
                        "mkdir -p /tmp/www && echo \"$0\" >/tmp/www/index.html && "
                        "exec httpd -f -p 8080 -h /tmp/www",
                        {body});
  spec["image"] = image;
  spec["input"] = {{"stream", {{"topic", "requests"}}}};
  spec["service"] = {{"port", 8080}};
  return spec;
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

  // What pod `client` in namespace `ns` gets over HTTP from host:port (an address, or a name the
  // cluster DNS resolves): it asks until the body is `want`, `tries` times at most (one try a
  // second, each giving up after 2 s: a condition with a deadline, inside the pod; kube-proxy takes
  // a moment to follow a Service's endpoints), and reports the last body through its termination
  // message, empty when nothing answered. busybox's nc speaks the HTTP: Debian 12's busybox-static
  // wget crashes (SIGSEGV) on any URL. The test waits on the pod's phase.
  std::string Fetch(const std::string& ns, const std::string& client, const std::string& host,
                    int port, const std::string& want, int tries = 30) const {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", client}}},
                {"spec",
                 {{"restartPolicy", "Never"},
                  {"containers",
                   {ShellTask("", R"sh(for i in $(seq "$3"); do
  printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 "$0" "$1" | tail -n 1 >/tmp/body
  cp /tmp/body /dev/termination-log
  [ "$(cat /tmp/body)" = "$2" ] && exit 0
  sleep 1
done; exit 1)sh",
                              {host, std::to_string(port), want, std::to_string(tries)})}}}}};
    pod["spec"]["containers"][0].erase("role");
    pod["spec"]["containers"][0]["name"] = "client";
    C().Apply(pod.dump(), ns);
    json done;
    WaitFor(
        [&] {
          const auto r = C().Kubectl({"get", "pod", client, "-n", ns, "-o", "json"});
          done = r.exit_code == 0 ? json::parse(r.out) : json();
          const std::string phase = StatusField(done, "phase");
          return phase == "Succeeded" || phase == "Failed";
        },
        seconds{30 + 4 * tries});
    const json& state = done["status"]["containerStatuses"][0]["state"];
    return state.contains("terminated") ? state["terminated"].value("message", "") : "";
  }

  static std::string ReadyReason(const json& task) {
    for (const auto& c : task["status"].value("conditions", json::array())) {
      if (c["type"] == "Ready")
        return c["status"].get<std::string>() + "/" + c["reason"].get<std::string>();
    }
    return "";
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

TEST_F(RealNodeTest, AStreamingTaskServesThroughItsServiceAndItsReadyFollowsTheRollout) {
  const std::string image = "docker.io/library/busybox:1.35";
  const json v1 = RunTask("web", WebTask(image, "v1"), "Ready");
  ASSERT_EQ(ReadyReason(v1), "True/Ready") << v1.dump();
  const std::string ip =
      C().Kubectl({"get", "service", "web", "-n", ns_, "-o", "jsonpath={.spec.clusterIP}"}).out;
  ASSERT_FALSE(ip.empty());
  EXPECT_EQ(Fetch(ns_, "client-1", ip, 8080, "v1"), "v1\n")
      << "another pod reaches the task through its Service";

  // A new image that cannot be pulled (no registry): the rollout is stuck, the task is not Ready,
  // and the old pod keeps serving.
  ASSERT_EQ(
      MergePatch("task", "web", R"({"spec":{"image":"docker.io/library/busybox:no-such-tag"}})"),
      0);
  const json stuck = WaitForObject(
      "task", "web", [](const json& t) { return ReadyReason(t) == "False/ImagePullBackOff"; },
      seconds{120});
  EXPECT_EQ(ReadyReason(stuck), "False/ImagePullBackOff") << stuck.dump();
  EXPECT_EQ(Fetch(ns_, "client-2", ip, 8080, "v1"), "v1\n")
      << "the old pod serves while the rollout is stuck";

  // The fix rolls out for real: Ready again once the new pod serves.
  ASSERT_EQ(C().Kubectl({"patch", "task", "web", "-n", ns_, "--type=merge", "-p",
                         json{{"spec", WebTask(image, "v2")}}.dump()})
                .exit_code,
            0);
  const json v2 = WaitForObject(
      "task", "web",
      [](const json& t) {
        return ReadyReason(t) == "True/Ready" &&
               t["status"].value("observedGeneration", 0) == t["metadata"]["generation"];
      },
      seconds{120});
  EXPECT_EQ(ReadyReason(v2), "True/Ready") << v2.dump();
  EXPECT_EQ(Fetch(ns_, "client-3", ip, 8080, "v2"), "v2\n");
}

TEST_F(RealNodeTest, AZonesPodsReachItsServicesByNameAndNoOtherZoneReachesThem) {
  const std::string a = ns_ + "-a";
  const std::string b = ns_ + "-b";
  ASSERT_TRUE(C().CreateZone(a));
  ASSERT_TRUE(C().CreateZone(b));
  C().Apply("apiVersion: millrace.io/v1alpha1\nkind: Task\nmetadata: {name: web}\nspec: " +
                WebTask("docker.io/library/busybox:1.35", "zone-b").dump() + "\n",
            b);
  json web;
  WaitFor(
      [&] {
        web = C().KubectlJson({"get", "task", "web", "-n", b, "-o", "json"});
        return ReadyReason(web) == "True/Ready";
      },
      seconds{120});
  ASSERT_EQ(ReadyReason(web), "True/Ready") << web.dump();
  const std::string service_ip =
      C().Kubectl({"get", "service", "web", "-n", b, "-o", "jsonpath={.spec.clusterIP}"}).out;
  const std::string pod_ip = C().Kubectl({"get", "pods", "-n", b, "-l", "millrace.io/task=web",
                                          "-o", "jsonpath={.items[0].status.podIP}"})
                                 .out;
  ASSERT_FALSE(service_ip.empty());
  ASSERT_FALSE(pod_ip.empty());

  // Zone B's own pods: the Service by its short name and by its full name, through the cluster DNS.
  EXPECT_EQ(Fetch(b, "by-name", "web", 8080, "zone-b"), "zone-b\n");
  EXPECT_EQ(Fetch(b, "by-fqdn", "web." + b + ".svc.cluster.local", 8080, "zone-b"), "zone-b\n");

  // Zone A: neither the Service nor the pod answers (the zone-isolation NetworkPolicy, enforced):
  // the client ran all its tries and got nothing.
  const std::vector<std::pair<std::string, std::string>> targets{{"to-service", service_ip},
                                                                 {"to-pod", pod_ip}};
  for (const auto& [client, host] : targets) {
    EXPECT_EQ(Fetch(a, client, host, 8080, "zone-b", 5), "") << client;
    EXPECT_EQ(C().Kubectl({"get", "pod", client, "-n", a, "-o",
                           "jsonpath={.status.containerStatuses[0].state.terminated.exitCode}"})
                  .out,
              "1")
        << client << " ran and gave up";
  }

  // The control: with zone B's isolation turned off (its NetworkPolicy removed), zone A gets in,
  // so what stopped it was the policy.
  ASSERT_EQ(C().Kubectl({"patch", "zone", b, "--type=merge", "-p",
                         R"({"spec":{"networkIsolation":false}})"})
                .exit_code,
            0);
  EXPECT_TRUE(WaitFor(
      [&] {
        return C().Kubectl({"get", "networkpolicy", "zone-isolation", "-n", b}).exit_code != 0;
      },
      seconds{30}))
      << "the operator removes zone B's NetworkPolicy";
  EXPECT_EQ(Fetch(a, "after-to-pod", pod_ip, 8080, "zone-b"), "zone-b\n");
  EXPECT_EQ(Fetch(a, "after-to-service", service_ip, 8080, "zone-b"), "zone-b\n");
  C().Kubectl({"delete", "zone", a, b, "--wait=false"});
}

}  // namespace
}  // namespace millrace::testing
