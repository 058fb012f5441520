#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/process.h"

namespace millrace::testing {

// One real local control plane per test binary (scripts/cluster), shared by its tests; each test
// works in namespaces of its own. Started by the gtest environment in cluster_main.cc and taken
// down when the binary exits (or by scripts/cluster's watchdog if the binary crashes).
class Cluster {
 public:
  // The running cluster of this test binary.
  static Cluster& Get();

  // Starts a cluster named after the test binary, with the `scripts/cluster up` flags in
  // MILLRACE_TEST_CLUSTER_ARGS (e.g. --real-node); blocks until nodes are Ready.
  static void Start(std::string_view binary_name);
  static void Stop();

  const std::string& name() const { return name_; }
  const std::string& kubeconfig() const { return kubeconfig_; }
  const std::string& state_dir() const { return state_dir_; }
  // The directory holding etcd, kube-apiserver, kubectl, kwok ... for this cluster.
  const std::string& testbed_bin() const { return bin_; }
  const std::string& apiserver_url() const { return apiserver_; }
  const std::string& etcd_url() const { return etcd_; }

  // kubectl against this cluster with the admin identity.
  ProcessResult Kubectl(std::vector<std::string> args, std::string_view input = {}) const;
  // kubectl ... -o json; fails the current test (and returns null) on a non-zero exit.
  nlohmann::json KubectlJson(std::vector<std::string> args) const;
  // kubectl apply -f - with `manifest`; fails the current test on error.
  void Apply(std::string_view manifest, std::string_view ns = {}) const;

  // The static bearer token of test-token-user (no groups, no RBAC until a test binds some), and a
  // kubeconfig file (written once into the state directory) that authenticates with it.
  std::string TestToken() const;
  std::string TokenKubeconfig() const;
  // A kubeconfig file `file` in the state directory that authenticates with bearer `token`.
  std::string KubeconfigFor(const std::string& token, const std::string& file) const;

  // The API server's audit log so far (scripts/testbed/audit-policy.yaml: every write, at Metadata
  // level), one JSON event per line, oldest first, across the files it rotated into.
  std::vector<nlohmann::json> AuditLog() const;

  // Applies Millrace's CRDs (crds/manifests) and waits until they are Established. Idempotent.
  void InstallCrds() const;

  // A fresh namespace named after the current test, with its default ServiceAccount ready.
  std::string CreateNamespace(std::string_view suffix = {}) const;

  // Creates Development Zone `name` (owner dev; its namespace has the same name) with
  // `deletion_policy` and waits until it is Active; false (and a test failure) if it never is.
  // Needs an operator running.
  bool CreateZone(const std::string& name, std::string_view deletion_policy = "Delete") const;

  // Stops or restarts one component (etcd, kube-apiserver, kube-controller-manager, ...).
  void StopComponent(std::string_view component) const;
  void StartComponent(std::string_view component) const;

  // POSTs `body` to etcd's v3 HTTP gateway (e.g. "/v3/kv/compaction") and returns the answer;
  // fails the current test when etcd does not answer. Keys and values are base64 in the JSON.
  nlohmann::json Etcd(std::string_view path, const nlohmann::json& body) const;
  // Writes `value` at etcd key `key` behind the API server's back (an object as stored, say).
  void EtcdPut(std::string_view key, std::string_view value) const;
  // Deletes one object behind the API server's back: etcd key /registry/<resource>/<ns>/<name>.
  void EtcdDelete(std::string_view resource, std::string_view ns, std::string_view name) const;
  // Compacts etcd up to its current revision; returns that revision.
  int64_t EtcdCompact() const;

 private:
  Cluster() = default;
  std::string name_, state_dir_, kubeconfig_, bin_, apiserver_, etcd_;
};

// The running cluster of this test binary (Cluster::Get()).
inline Cluster& C() { return Cluster::Get(); }

// Polls `condition` every 100 ms until it holds or `timeout` passes. On timeout, returns false and
// the test should report `describe()`, the last state seen, so a failure says what was observed.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

// The repository root (compiled in), for scripts and manifests.
std::string SourceDir();

// Pod annotations (flow-map entries, no braces) that make kwok's `stage` (pod-create, pod-ready,
// pod-complete, ...) wait exactly `delay` before it applies to the pod. Both the delay and its
// jitter are set: when the jitter is not above the delay kwok waits the jitter, and the test bed's
// stages default the jitter to 5s, so a delay alone longer than 5s would be cut to 5s.
std::string KwokStageDelay(const std::string& stage, const std::string& delay);

}  // namespace millrace::testing
