// The operator installed as users install it, on the real node: its image built from the project's
// Dockerfile (scripts/testbed/build-operator-image) and loaded into the node's containerd, then
// `helm install` of charts/millrace, or `kubectl apply -k config/default`, into millrace-system,
// which enforces Pod Security "restricted". The API server reaches the webhooks through their
// Service (kube-proxy on the node), with the certificates the install made. Then the life after an
// install: `helm upgrade` to a new image while a Pipeline runs, and the uninstall in the order
// docs/operations.md gives.
#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace millrace::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kNamespace = "millrace-system";

// Prints the path a build script prints on its last line; fails the test when it fails.
std::string Built(const std::string& script) {
  const auto r = RunProcess({SourceDir() + "/scripts/testbed/" + script});
  EXPECT_EQ(r.exit_code, 0) << script << ": " << r.err;
  std::string path = r.out;
  while (!path.empty() && path.back() == '\n') path.pop_back();
  return path;
}

class RealInstallTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(C().Kubectl({"get", "node", "millrace-node"}).exit_code, 0)
        << "this binary needs a cluster with a real node (MILLRACE_TEST_CLUSTER_ARGS=--real-node)";
    const std::string archive = Built("build-operator-image");
    const auto load =
        RunProcess({SourceDir() + "/scripts/cluster", "load-image", "--name", C().name(), archive});
    ASSERT_EQ(load.exit_code, 0) << load.err;
  }

  void SetUp() override {
    ASSERT_EQ(C().Kubectl({"create", "namespace", kNamespace}).exit_code, 0);
    ASSERT_EQ(C().Kubectl({"label", "namespace", kNamespace,
                           "pod-security.kubernetes.io/enforce=restricted",
                           "pod-security.kubernetes.io/enforce-version=latest"})
                  .exit_code,
              0);
  }

  // Whatever the test installed goes, so a failure does not leave webhooks (failurePolicy Fail)
  // or the namespace behind for the next test.
  void TearDown() override {
    // Zones first, while an operator may still run to finalize them; what it cannot finalize is
    // let go by hand, so the CRDs below can go and the next test installs afresh.
    C().Kubectl({"delete", "zones", "--all", "--timeout=120s"});
    const std::string left =
        C().Kubectl({"get", "zones", "-o", "jsonpath={.items[*].metadata.name}"}).out;
    std::istringstream zones(left);
    for (std::string zone; zones >> zone;) {
      C().Kubectl(
          {"patch", "zone", zone, "--type=merge", "-p", R"({"metadata":{"finalizers":null}})"});
    }
    RunProcess({Built("build-helm"), "uninstall", "millrace", "--namespace", kNamespace,
                "--kubeconfig", C().kubeconfig(), "--wait", "--ignore-not-found"});
    C().Kubectl({"delete", "-k", SourceDir() + "/config/default", "--ignore-not-found", "--wait"});
    C().Kubectl({"delete", "namespace", kNamespace, "--ignore-not-found", "--wait"});
  }

  // `helm install` (or `helm upgrade` with `verb`) of charts/millrace into kNamespace, waiting
  // for the rollout; `extra` are more helm arguments.
  static ProcessResult Helm(const std::string& verb, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {Built("build-helm"),
                                     verb,
                                     "millrace",
                                     SourceDir() + "/charts/millrace",
                                     "--namespace",
                                     kNamespace,
                                     "--kubeconfig",
                                     C().kubeconfig(),
                                     "--wait",
                                     "--timeout",
                                     "5m"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunProcess(args);
  }

  // The operator's pods, once exactly `replicas` of them exist and are Ready, all running `image`
  // when it is given (as last seen otherwise).
  static std::vector<json> ReadyPods(size_t replicas, const std::string& image = "") {
    std::vector<json> ready;
    WaitFor(
        [&] {
          ready.clear();
          const json pods = C().KubectlJson({"get", "pods", "-n", kNamespace, "-l",
                                             "app.kubernetes.io/name=millrace", "-o", "json"});
          for (const auto& p : pods["items"]) {
            if (!image.empty() && p["spec"]["containers"][0]["image"] != image) continue;
            for (const auto& c : p["status"].value("conditions", json::array())) {
              if (c["type"] == "Ready" && c["status"] == "True") ready.push_back(p);
            }
          }
          return ready.size() == replicas && pods["items"].size() == replicas;
        },
        seconds{240});
    return ready;
  }

  // The Lease's holder names one of `pods`: one replica leads.
  static void ExpectOneLeads(const std::vector<json>& pods) {
    std::string holder;
    WaitFor(
        [&] {
          const auto r = C().Kubectl({"get", "lease", "millrace-controller", "-n", kNamespace, "-o",
                                      "jsonpath={.spec.holderIdentity}"});
          holder = r.out;
          return r.exit_code == 0 && !holder.empty();
        },
        seconds{60});
    const bool a_pod = std::ranges::any_of(pods, [&](const json& p) {
      return holder.starts_with(p["metadata"]["name"].get<std::string>());
    });
    EXPECT_TRUE(a_pod) << "lease held by " << holder;
  }

  // A Pipeline with a dependency cycle is refused at `kubectl apply` with the field and the reason:
  // only the operator's webhook, reached through its Service, says this (the schema admits cycles).
  // Until kube-proxy has the new endpoints, the Service refuses connections (the API server then
  // fails the call, InternalError); the refusal is waited for.
  static void ExpectBadSpecRefused() {
    const std::string ns = C().CreateNamespace("bad-spec");
    const std::string cycle = "spec.steps[0].dependsOn: Invalid value: dependency cycle";
    ProcessResult r;
    WaitFor(
        [&] {
          r = C().Kubectl({"apply", "-n", ns, "-f", "-"}, R"(
apiVersion: millrace.io/v1alpha1
kind: Pipeline
metadata: {name: bad}
spec:
  steps:
  - {name: a, dependsOn: [b], task: {role: Spout, image: busybox:1.35}}
  - {name: b, dependsOn: [a], task: {role: Spout, image: busybox:1.35}}
)");
          return r.exit_code == 0 || r.err.find(cycle) != std::string::npos;
        },
        seconds{60});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_THAT(r.err, HasSubstr(cycle));
  }
};

TEST_F(RealInstallTest, HelmInstallsTwoReplicasUnderRestrictedPodSecurityAndTheWebhooksAnswer) {
  const std::string helm = Built("build-helm");
  const auto install = Helm("install");
  ASSERT_EQ(install.exit_code, 0) << install.err;
  const auto pods = ReadyPods(2);
  ASSERT_EQ(pods.size(), 2U) << "two replicas Ready";
  ExpectOneLeads(pods);
  ExpectBadSpecRefused();

  const auto uninstall = RunProcess({helm, "uninstall", "millrace", "--namespace", kNamespace,
                                     "--kubeconfig", C().kubeconfig(), "--wait"});
  EXPECT_EQ(uninstall.exit_code, 0) << uninstall.err;
}

// A Pipeline of five shell steps, each adding one to the last one's result after 15 s, so it runs
// for about a minute and a half: step i+1 needs step i's result, so a lost step stalls it and a
// repeated one shows as a second attempt or Job.
std::string CountingPipeline() {
  std::string yaml =
      "apiVersion: millrace.io/v1alpha1\nkind: Pipeline\nmetadata: {name: count}\nspec:\n"
      "  steps:\n";
  for (int i = 1; i <= 5; ++i) {
    const std::string previous = "s" + std::to_string(i - 1);
    const json task = {
        {"role", "Bolt"},
        {"image", "docker.io/library/busybox:1.35"},
        {"imagePullPolicy", "IfNotPresent"},
        {"command",
         json::array({"sh", "-c",
                      R"(sleep 15; printf '{"n":"%s"}' $(($0 + 1)) >/dev/termination-log)",
                      i == 1 ? "0" : "{{steps." + previous + ".results.n}}"})},
        {"results", json::array({json{{"name", "n"}}})}};
    yaml += "  - {name: s" + std::to_string(i) + (i == 1 ? "" : ", dependsOn: [" + previous + "]") +
            ", task: " + task.dump() + "}\n";
  }
  return yaml;
}

TEST_F(RealInstallTest, HelmUpgradeToANewImageWhileAPipelineRunsLosesAndDuplicatesNothing) {
  ASSERT_EQ(Helm("install").exit_code, 0);
  const auto old_pods = ReadyPods(2);
  ASSERT_EQ(old_pods.size(), 2U);
  const std::string old_image = old_pods[0]["spec"]["containers"][0]["image"];
  ExpectBadSpecRefused();  // the webhooks answer: the install is complete

  const std::string ns = "upgrade";
  ASSERT_TRUE(C().CreateZone(ns));
  C().Apply(CountingPipeline(), ns);
  ASSERT_TRUE(WaitFor(
      [&] {
        return C().Kubectl({"get", "task", "count-s2", "-n", ns, "-o", "jsonpath={.status.phase}"})
                   .out == "Running";
      },
      seconds{120}))
      << "the second step runs";

  // A new image: the build under another tag (as a registry push of a new version would name it),
  // so the pod template changes and Helm replaces both replicas one by one.
  const std::string new_image = old_image + "-upgrade";
  const auto tag = RunProcess(
      {SourceDir() + "/scripts/cluster", "tag-image", "--name", C().name(), old_image, new_image});
  ASSERT_EQ(tag.exit_code, 0) << tag.err;
  const auto upgrade =
      Helm("upgrade", {"--set", "image.tag=" + new_image.substr(new_image.rfind(':') + 1)});
  ASSERT_EQ(upgrade.exit_code, 0) << upgrade.err;
  const json running = C().KubectlJson({"get", "pipeline", "count", "-n", ns, "-o", "json"});
  EXPECT_NE(running["status"].value("phase", ""), "Succeeded")
      << "the upgrade finished before the pipeline did";
  const auto new_pods = ReadyPods(2, new_image);
  ASSERT_EQ(new_pods.size(), 2U) << "both replicas run the new image";
  ExpectOneLeads(new_pods);
  // When the last new replica went Ready, the rolling update let the last old one go.
  std::string all_new_ready;
  for (const auto& p : new_pods) {
    for (const auto& c : p["status"]["conditions"]) {
      if (c["type"] == "Ready") {
        all_new_ready = std::max(all_new_ready, c["lastTransitionTime"].get<std::string>());
      }
    }
  }

  json done;
  WaitFor(
      [&] {
        done = C().KubectlJson({"get", "pipeline", "count", "-n", ns, "-o", "json"});
        const std::string phase = done.contains("status") ? done["status"].value("phase", "") : "";
        return phase == "Succeeded" || phase == "Failed";
      },
      seconds{240});
  ASSERT_EQ(done["status"].value("phase", ""), "Succeeded") << done.dump();
  const auto last =
      C().Kubectl({"get", "task", "count-s5", "-n", ns, "-o", "jsonpath={.status.results.n}"});
  EXPECT_EQ(last.out, "5") << "every step ran, in order, on its predecessor's result";
  EXPECT_GE(C().Kubectl({"get", "task", "count-s5", "-n", ns, "-o",
                         "jsonpath={.metadata.creationTimestamp}"})
                .out,
            all_new_ready)
      << "the new image's replicas ran the rest of the pipeline";
  const json tasks = C().KubectlJson({"get", "tasks", "-n", ns, "-o", "json"});
  ASSERT_EQ(tasks["items"].size(), 5U);
  for (const auto& t : tasks["items"]) {
    EXPECT_EQ(t["status"].value("attempts", 0), 1) << t["metadata"]["name"] << " ran once";
  }
  EXPECT_EQ(C().KubectlJson({"get", "jobs", "-n", ns, "-o", "json"})["items"].size(), 5U)
      << "one Job per step";
  EXPECT_EQ(C().KubectlJson({"get", "pods", "-n", ns, "-o", "json"})["items"].size(), 5U)
      << "one pod per step";
  EXPECT_EQ(C().Kubectl({"delete", "zone", ns, "--timeout=120s"}).exit_code, 0);
}

// docs/operations.md's order: delete the Zones while the operator runs, then uninstall the
// operator, then delete the CRDs (Helm keeps them), which takes every other Millrace object and,
// by their ownerReferences, its children with it.
TEST_F(RealInstallTest, UninstallInTheDocumentedOrderLeavesNoNamespaceStuckAndNoWebhookBehind) {
  ASSERT_EQ(Helm("install").exit_code, 0);
  ASSERT_EQ(ReadyPods(2).size(), 2U);
  ExpectBadSpecRefused();
  ASSERT_TRUE(C().CreateZone("uninstall-gone", "Delete"));
  ASSERT_TRUE(C().CreateZone("uninstall-kept", "Retain"));
  // A running pipeline in each zone.
  for (const std::string ns : {"uninstall-gone", "uninstall-kept"}) {
    C().Apply(R"(apiVersion: millrace.io/v1alpha1
kind: Pipeline
metadata: {name: long}
spec:
  steps:
  - {name: wait, task: {role: Spout, image: docker.io/library/busybox:1.35, imagePullPolicy: IfNotPresent, command: [sleep, "600"]}}
)",
              ns);
    ASSERT_TRUE(WaitFor(
        [&] {
          return C().Kubectl({"get", "pods", "-n", ns, "-l", "millrace.io/task=long-wait", "-o",
                              "jsonpath={.items[0].status.phase}"})
                     .out == "Running";
        },
        seconds{120}))
        << ns;
  }

  // 1. The Zones, while the operator runs: a Delete zone's namespace goes, with its pipeline; a
  // Retain zone's stays, its pipeline still there (and stuck: the namespace is no zone's now).
  const auto zones = C().Kubectl({"delete", "zones", "--all", "--timeout=180s"});
  ASSERT_EQ(zones.exit_code, 0) << zones.err;
  EXPECT_TRUE(WaitFor(
      [] {
        return C().Kubectl({"get", "namespace", "uninstall-gone"}).exit_code != 0;
      },
      seconds{180}))
      << "the Delete zone's namespace is gone";
  EXPECT_EQ(
      C().Kubectl({"get", "namespace", "uninstall-kept", "-o", "jsonpath={.status.phase}"}).out,
      "Active")
      << "the Retain zone's namespace stays";

  // 2. The operator: nothing of it is left to answer or to block admission.
  const auto uninstall = RunProcess({Built("build-helm"), "uninstall", "millrace", "--namespace",
                                     kNamespace, "--kubeconfig", C().kubeconfig(), "--wait"});
  ASSERT_EQ(uninstall.exit_code, 0) << uninstall.err;
  for (const std::string kind :
       {"validatingwebhookconfigurations", "mutatingwebhookconfigurations",
        "validatingadmissionpolicies", "validatingadmissionpolicybindings"}) {
    EXPECT_THAT(C().Kubectl({"get", kind, "-o", "name"}).out, Not(HasSubstr("millrace"))) << kind;
  }
  const std::string outside = C().CreateNamespace("uninstall");
  // The API server drops a deleted webhook configuration from its cache within moments.
  ProcessResult after;
  WaitFor(
      [&] {
        after = C().Kubectl({"apply", "-n", outside, "-f", "-"}, R"(
apiVersion: millrace.io/v1alpha1
kind: Pipeline
metadata: {name: after-uninstall}
spec:
  steps:
  - {name: a, task: {role: Spout, image: docker.io/library/busybox:1.35}}
)");
        return after.exit_code == 0;
      },
      seconds{30});
  EXPECT_EQ(after.exit_code, 0) << "no webhook is left to refuse or time out: " << after.err;

  // 3. The CRDs: every Millrace object goes, and its Tasks' Jobs and pods after it.
  const auto crds =
      C().Kubectl({"delete", "-f", SourceDir() + "/charts/millrace/crds/", "--timeout=180s"});
  ASSERT_EQ(crds.exit_code, 0) << crds.err;
  EXPECT_TRUE(WaitFor(
      [&] {
        return C()
            .KubectlJson({"get", "jobs,pods", "-n", "uninstall-kept", "-o", "json"})["items"]
            .empty();
      },
      seconds{180}))
      << "the garbage collector deletes the pipeline's Jobs and pods";
  const auto ns_delete =
      C().Kubectl({"delete", "namespace", outside, "uninstall-kept", "--timeout=180s"});
  EXPECT_EQ(ns_delete.exit_code, 0) << "no namespace is stuck: " << ns_delete.err;
  // The next test installs the CRDs again with its `helm install`.
}

// The waiting reason of the first container of the first pod labelled `selector` in `ns` ("" while
// there is none).
std::string WaitingReason(const std::string& ns, const std::string& selector) {
  return C()
      .Kubectl({"get", "pods", "-n", ns, "-l", selector, "-o",
                "jsonpath={.items[0].status.containerStatuses[0].state.waiting.reason}"})
      .out;
}

// The README's `kubectl apply -f config/samples/...` lines, run as written (from the repository's
// root) against the installed operator. The samples name images of a made-up registry
// (ghcr.io/acme), so their pods end waiting for an image that cannot be pulled; everything else
// they refer to exists: the pods are created (ServiceAccount), their containers configured
// (Secret), admitted and scheduled, and only the image pull fails.
TEST_F(RealInstallTest, EveryReadmeSampleLineWorksAsWritten) {
  ASSERT_EQ(Helm("install").exit_code, 0);
  ASSERT_EQ(ReadyPods(2).size(), 2U);
  ExpectBadSpecRefused();

  // The block of commands under "What a user gets today", line by line.
  std::vector<std::string> lines;
  std::ifstream readme(SourceDir() + "/README.md");
  bool in_block = false;
  for (std::string line; std::getline(readme, line);) {
    if (line.starts_with("What a user gets today")) in_block = true;
    if (!in_block || line.starts_with("```")) {
      if (in_block && line == "```" && !lines.empty()) break;
      continue;
    }
    if (line.starts_with("kubectl ")) lines.push_back(line);
  }
  ASSERT_EQ(std::ranges::count_if(lines,
                                  [](const std::string& l) {
                                    return l.starts_with("kubectl apply -f config/samples/");
                                  }),
            4)
      << "the README's sample lines";
  for (const auto& line : lines) {
    const auto r =
        RunProcess({"bash", "-c", "cd \"$0\" && PATH=\"$1:$PATH\" KUBECONFIG=\"$2\" " + line,
                    SourceDir(), C().testbed_bin(), C().kubeconfig()});
    EXPECT_EQ(r.exit_code, 0) << line << ": " << r.err;
  }

  // The zone: its namespace with quota, defaults and the members' bindings.
  json zone;
  WaitFor(
      [&] {
        zone = C().KubectlJson({"get", "zone", "churn", "-o", "json"});
        return zone.contains("status") && zone["status"].value("phase", "") == "Active";
      },
      seconds{60});
  EXPECT_EQ(zone["status"].value("phase", ""), "Active") << zone.dump();
  for (const std::string kind : {"resourcequota", "limitrange", "rolebinding"}) {
    EXPECT_FALSE(C().KubectlJson({"get", kind, "-n", "churn", "-o", "json"})["items"].empty())
        << kind;
  }
  // The task, the pipeline's first step and the served model version: only their images are
  // missing.
  for (const std::string selector :
       {"millrace.io/task=ingest-crm-2026-11-22", "millrace.io/task=train-churn-2026-11-22-ingest",
        "millrace.io/model=churn-classifier,millrace.io/model-version=7"}) {
    std::string reason;
    WaitFor(
        [&] {
          reason = WaitingReason("churn", selector);
          return reason == "ErrImagePull" || reason == "ImagePullBackOff";
        },
        seconds{120});
    EXPECT_THAT(reason, ::testing::AnyOf("ErrImagePull", "ImagePullBackOff"))
        << selector << "\n"
        << C().Kubectl({"get", "pods", "-n", "churn", "-o", "wide"}).out
        << C().Kubectl({"describe", "pods", "-n", "churn", "-l", selector}).out;
  }
  EXPECT_EQ(C().Kubectl({"get", "pipeline", "train-churn-2026-11-22", "-n", "churn", "-o",
                         "jsonpath={.status.phase}"})
                .out,
            "Running");

  EXPECT_EQ(C().Kubectl({"delete", "zone", "churn", "--timeout=120s"}).exit_code, 0);
  EXPECT_EQ(C().Kubectl({"delete", "namespace", "churn", "--timeout=180s"}).exit_code, 0);
}

TEST_F(RealInstallTest, KustomizeInstallsTheOperatorAndTheWebhooksAnswer) {
  const auto apply = C().Kubectl({"apply", "--server-side", "-k", SourceDir() + "/config/default"});
  ASSERT_EQ(apply.exit_code, 0) << apply.err;
  const auto pods = ReadyPods(1);
  ASSERT_EQ(pods.size(), 1U) << "its one replica Ready";
  ExpectOneLeads(pods);
  ExpectBadSpecRefused();
}

}  // namespace
}  // namespace millrace::testing
