// Every controller's API-error paths, in-process against the real test cluster: the four
// controllers run in a Manager of this test, writing through an interposer of the test's own
// (a kube::Client that forwards to the cluster and lets the test act just before a write goes
// out). Each error is the API server's own answer, made real:
//  - Conflict: someone else changes the object just before the controller's status write;
//  - NotFound: the object is deleted just before it;
//  - Forbidden: the write of a child goes out as an identity RBAC grants nothing;
//  - quota exceeded: a ResourceQuota refusing the child appears just before its write;
//  - Gone: the API server answers 410 only to lists and watches, so Gone reaches a controller
//    through its caches: the API server is stopped, etcd compacted behind it, and every
//    controller's informers must relist and the controllers carry on.
// What the controller made of each is read from its log (controller/controller.cc logs every
// outcome per object) and from the cluster.
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/sinks/base_sink.h>

#include "controller/logging.h"
#include "controller/manager.h"
#include "controller/reconciler.h"
#include "crds/kinds.h"
#include "kubeclient/client.h"
#include "reconcilers/model_version_reconciler.h"
#include "reconcilers/pipeline_reconciler.h"
#include "reconcilers/task_reconciler.h"
#include "reconcilers/zone_reconciler.h"
#include "tests/support/client.h"
#include "tests/support/cluster.h"

namespace millrace::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;

// Keeps every log line, parsed.
class LineSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  std::vector<json> Lines() {
    const std::lock_guard lock(mutex_);
    return lines_;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    lines_.push_back(json::parse(std::string_view(formatted.data(), formatted.size()), nullptr,
                                 /*allow_exceptions=*/false));
  }
  void flush_() override {}

 private:
  std::vector<json> lines_;
};

// A kube::Client that forwards to the cluster's admin client; before each write it asks the
// test's hook, which may act on the cluster and name another client to send the write through.
// Every write is recorded with the API server's answer.
class Interposer final : public kube::Client {
 public:
  struct Write {
    std::string verb{};  // create, update, patch, apply, delete
    std::string resource{};
    std::string ns{};
    std::string name{};
    bool status = false;                       // to the status subresource
    const kube::ResourceRef* ref = nullptr;    // the resource written
    json object{};                             // what a create or an apply sends
    std::optional<kube::ErrorKind> refused{};  // the API server's error, if any
    std::string message{};
  };
  // The client to send `write` through; nullptr: the admin client.
  using Hook = std::function<kube::Client*(const Write& write)>;

  explicit Interposer(kube::Client& admin) : admin_(admin) {}

  void OnWrite(Hook hook) {
    const std::lock_guard lock(mu_);
    hook_ = std::move(hook);
  }
  std::vector<Write> Writes() const {
    const std::lock_guard lock(mu_);
    return writes_;
  }

  kube::Result<json> Get(const kube::ResourceRef& ref, std::string_view ns, std::string_view name,
                         const kube::GetOptions& options) override {
    return admin_.Get(ref, ns, name, options);
  }
  kube::Result<json> List(const kube::ResourceRef& ref, std::string_view ns,
                          const kube::ListOptions& options) override {
    return admin_.List(ref, ns, options);
  }
  kube::Result<void> Watch(const kube::ResourceRef& ref, std::string_view ns,
                           const kube::WatchOptions& options, const kube::WatchHandler& handler,
                           std::stop_token stop) override {
    return admin_.Watch(ref, ns, options, handler, std::move(stop));
  }
  kube::Result<kube::ResourceRef> Discover(std::string_view api_version,
                                           std::string_view kind) override {
    return admin_.Discover(api_version, kind);
  }
  kube::Result<json> Create(const kube::ResourceRef& ref, const json& object,
                            const kube::WriteOptions& options) override {
    return Send(Of("create", ref, object, options.subresource),
                [&](kube::Client& c) { return c.Create(ref, object, options); });
  }
  kube::Result<json> Update(const kube::ResourceRef& ref, const json& object,
                            const kube::WriteOptions& options) override {
    return Send(Of("update", ref, object, options.subresource),
                [&](kube::Client& c) { return c.Update(ref, object, options); });
  }
  kube::Result<json> Patch(const kube::ResourceRef& ref, std::string_view ns, std::string_view name,
                           const json& patch, const kube::PatchOptions& options) override {
    return Send(Write{.verb = "patch",
                      .resource = ref.resource,
                      .ns = std::string(ns),
                      .name = std::string(name),
                      .status = options.subresource == "status",
                      .ref = &ref},
                [&](kube::Client& c) { return c.Patch(ref, ns, name, patch, options); });
  }
  kube::Result<json> Apply(const kube::ResourceRef& ref, const json& object,
                           const kube::ApplyOptions& options) override {
    return Send(Of("apply", ref, object, options.subresource),
                [&](kube::Client& c) { return c.Apply(ref, object, options); });
  }
  kube::Result<json> Delete(const kube::ResourceRef& ref, std::string_view ns,
                            std::string_view name, const kube::DeleteOptions& options) override {
    return Send(Write{.verb = "delete",
                      .resource = ref.resource,
                      .ns = std::string(ns),
                      .name = std::string(name),
                      .ref = &ref},
                [&](kube::Client& c) { return c.Delete(ref, ns, name, options); });
  }

 private:
  static Write Of(std::string verb, const kube::ResourceRef& ref, const json& object,
                  const std::string& subresource) {
    const json& meta = object.at("metadata");
    return Write{.verb = std::move(verb),
                 .resource = ref.resource,
                 .ns = meta.value("namespace", ""),
                 .name = meta.value("name", ""),
                 .status = subresource == "status",
                 .ref = &ref,
                 .object = object};
  }

  template <class Verb>
  kube::Result<json> Send(Write write, const Verb& verb) {
    Hook hook;
    {
      const std::lock_guard lock(mu_);
      hook = hook_;
    }
    kube::Client* through = hook ? hook(write) : nullptr;
    auto result = verb(through != nullptr ? *through : admin_);
    if (!result) {
      write.refused = result.error().kind;
      write.message = result.error().message;
    }
    const std::lock_guard lock(mu_);
    writes_.push_back(std::move(write));
    return result;
  }

  kube::Client& admin_;
  mutable std::mutex mu_;
  Hook hook_;
  std::vector<Write> writes_;
};

// One reconcile's outcome, as the controller logged it.
struct Outcome {
  std::string msg;  // "reconcile succeeded", "... failed, will retry", "... failed terminally"
  std::string error;

  bool Succeeded() const { return msg.starts_with("reconcile succeeded"); }
  bool Retried() const { return msg == "reconcile failed, will retry"; }
  bool Terminal() const { return msg == "reconcile failed terminally"; }
};

// Millrace's four controllers in a Manager of this process (no leader election, no webhooks),
// writing through an Interposer.
class InProcessOperator {
 public:
  explicit InProcessOperator(kube::Client& admin)
      : client_(admin), sink_(std::make_shared<LineSink>()), manager_(client_, Options(sink_)) {
    reconcilers::AddZoneController(manager_, 2);
    reconcilers::AddTaskController(manager_, 2);
    reconcilers::AddPipelineController(manager_, 2);
    reconcilers::AddModelVersionController(manager_, 2);
    thread_ = std::jthread([this](const std::stop_token& stop) { manager_.Run(stop); });
    EXPECT_TRUE(WaitFor([this] { return manager_.Ready(); }, std::chrono::seconds(60)))
        << "the in-process manager's caches did not sync";
  }

  Interposer& client() { return client_; }
  controller::Manager& manager() { return manager_; }

  // The outcomes `controller` logged for `key`, oldest first.
  std::vector<Outcome> Outcomes(std::string_view controller, std::string_view key) const {
    std::vector<Outcome> out;
    for (const json& line : sink_->Lines()) {
      if (!line.is_object() || line.value("controller", "") != controller ||
          line.value("object", "") != key) {
        continue;
      }
      const std::string msg = line.value("msg", "");
      if (msg.starts_with("reconcile succeeded") || msg.starts_with("reconcile failed")) {
        out.push_back(Outcome{.msg = msg, .error = line.value("error", "")});
      }
    }
    return out;
  }

 private:
  static controller::ManagerOptions Options(const std::shared_ptr<LineSink>& sink) {
    controller::ManagerOptions options;
    options.logger = controller::Logger(sink, controller::LogLevel::kDebug);
    options.cache_sync_timeout = std::chrono::seconds(60);
    options.events.reporting_instance = "api-errors-test";
    return options;
  }

  Interposer client_;
  std::shared_ptr<LineSink> sink_;
  controller::Manager manager_;
  std::jthread thread_;  // last: stopped and joined before the manager goes
};

// A kind under test, and the child whose write the Forbidden and quota cases refuse.
struct Kind {
  std::string name;
  std::string controller;
  kube::ResourceRef ref;
  std::function<std::string(const std::string& name)> manifest;
  std::string child;      // its resource
  std::string quota_key;  // the ResourceQuota key counting it
};

std::string ZoneManifest(const std::string& name) {
  return "apiVersion: millrace.io/v1alpha1\nkind: Zone\nmetadata: {name: " + name + R"(}
spec:
  type: Development
  owner: {kind: User, name: ada}
  limits: {cpu: "2", memory: 4Gi, pods: 10}
)";
}
std::string TaskManifest(const std::string& name) {
  return "apiVersion: millrace.io/v1alpha1\nkind: Task\nmetadata: {name: " + name + R"(}
spec:
  role: Spout
  output: {batch: {uri: "s3://lake/raw", partition: date=2026-12-07}}
  image: busybox
)";
}
std::string PipelineManifest(const std::string& name) {
  return "apiVersion: millrace.io/v1alpha1\nkind: Pipeline\nmetadata: {name: " + name + R"(}
spec:
  steps:
  - name: a
    task: {role: Bolt, image: busybox}
)";
}
// `name` is <model>-<version>, as the ModelVersion CRD requires.
std::string ModelVersionManifest(const std::string& name) {
  const std::string model = name.substr(0, name.rfind('-'));
  const std::string version = name.substr(name.rfind('-') + 1);
  return "apiVersion: millrace.io/v1alpha1\nkind: ModelVersion\nmetadata: {name: " + name + R"(}
spec:
  model: )" +
         model + R"(
  version: ")" +
         version + R"("
  artifact: {uri: "s3://models/)" +
         name + R"(/model.onnx", format: onnx}
  stage: Staging
  serving: {image: "server:1", port: 9000}
)";
}

void PrintTo(const Kind& kind, std::ostream* os) { *os << kind.name; }

const Kind kZone{"Zone",
                 "zone",
                 api::kZones,
                 ZoneManifest,
                 "networkpolicies",
                 "count/networkpolicies.networking.k8s.io"};
const Kind kTask{"Task", "task", api::kTasks, TaskManifest, "jobs", "count/jobs.batch"};
const Kind kPipeline{"Pipeline",       "pipeline", api::kPipelines,
                     PipelineManifest, "tasks",    "count/tasks.millrace.io"};
const Kind kModelVersion{"ModelVersion",       "modelversion", api::kModelVersions,
                         ModelVersionManifest, "deployments",  "count/deployments.apps"};

class ApiErrors : public ::testing::TestWithParam<Kind> {
 protected:
  static void SetUpTestSuite() { C().InstallCrds(); }

  void SetUp() override {
    ns_ = C().CreateNamespace();
    admin_ = ClusterClient();
    op_ = std::make_unique<InProcessOperator>(*admin_);
    // A Zone is cluster-scoped and makes a namespace of its own name.
    name_ = K().ref.namespaced ? "subject-1" : ns_ + "-zone";
  }

  const Kind& K() const { return GetParam(); }
  std::string ObjectNs() const { return K().ref.namespaced ? ns_ : ""; }
  // Where the object's children live.
  std::string ChildNs() const { return K().ref.namespaced ? ns_ : name_; }
  std::string Key() const { return K().ref.namespaced ? ns_ + "/" + name_ : name_; }

  void Create() const { C().Apply(K().manifest(name_), ObjectNs()); }
  kube::Result<json> Read() const { return admin_->Get(K().ref, ObjectNs(), name_); }
  // A label change: a new request for the controller.
  void Touch(const std::string& value) const {
    const auto patched = admin_->Patch(K().ref, ObjectNs(), name_,
                                       {{"metadata", {{"labels", {{"touched", value}}}}}});
    ASSERT_TRUE(patched) << patched.error().ToString();
  }
  // Waits until the object's status satisfies `pred`; the object last read.
  json WaitForStatus(const std::function<bool(const json& status)>& pred) const {
    json object;
    const bool held = WaitFor(
        [&] {
          auto read = Read();
          if (read) object = std::move(*read);
          return object.contains("status") && object["status"].is_object() &&
                 pred(object["status"]);
        },
        seconds(60));
    EXPECT_TRUE(held) << object.dump(2) << Describe();
    return object;
  }
  std::vector<Outcome> Outcomes() const { return op_->Outcomes(K().controller, Key()); }
  // The index of the first outcome at or after `from` that `pred` holds for, or -1.
  int Find(const std::function<bool(const Outcome&)>& pred, int from = 0) const {
    const auto outcomes = Outcomes();
    for (int i = from; i < static_cast<int>(outcomes.size()); ++i) {
      if (pred(outcomes[static_cast<size_t>(i)])) return i;
    }
    return -1;
  }
  std::string Describe() const {
    std::string text;
    for (const Outcome& o : Outcomes()) text += "\n  " + o.msg + " " + o.error;
    for (const auto& w : op_->client().Writes()) {
      if (w.ns != ChildNs() && w.name != name_) continue;
      text += "\n  write " + w.verb + " " + w.resource + (w.status ? "/status " : " ") + w.ns +
              "/" + w.name +
              (w.refused ? " -> " + std::string(kube::ErrorKindName(*w.refused)) + ": " + w.message
                         : std::string());
    }
    return text;
  }
  // The writes of the child resource into the object's namespace.
  std::vector<Interposer::Write> ChildWrites() const {
    std::vector<Interposer::Write> out;
    for (auto& w : op_->client().Writes()) {
      if (w.resource == K().child && w.ns == ChildNs() && !w.status) out.push_back(std::move(w));
    }
    return out;
  }
  bool IsStatusWriteOfTheObject(const Interposer::Write& w) const {
    // (Other tests' objects of the same name, in their namespaces, are reconciled here too.)
    return w.status && w.resource == K().ref.resource && w.ns == ObjectNs() && w.name == name_;
  }

  std::string ns_, name_;
  std::unique_ptr<kube::Client> admin_;
  std::unique_ptr<InProcessOperator> op_;
};

TEST_P(ApiErrors, AConflictOnTheStatusWriteIsRetriedFromAFreshRead) {
  std::atomic<bool> changed{false};
  op_->client().OnWrite([&](const Interposer::Write& w) -> kube::Client* {
    if (IsStatusWriteOfTheObject(w) && !changed.exchange(true)) {
      // Someone else writes first: the controller's write names a resourceVersion that is gone.
      EXPECT_TRUE(admin_->Patch(K().ref, ObjectNs(), name_,
                                {{"metadata", {{"labels", {{"touched", "first"}}}}}}));
    }
    return nullptr;
  });
  Create();
  const auto conflict_then_success = [&] {
    const int conflict = Find([](const Outcome& o) {
      return o.Retried() && o.error.find("patching the status: Conflict") != std::string::npos;
    });
    return conflict >= 0 && Find(&Outcome::Succeeded, conflict + 1) >= 0;
  };
  ASSERT_TRUE(WaitFor(conflict_then_success, seconds(60))) << Describe();
  // The retry wrote the status the conflict refused.
  const auto writes = op_->client().Writes();
  int refused = 0;
  int written_after = 0;
  for (const auto& w : writes) {
    if (!IsStatusWriteOfTheObject(w)) continue;
    if (w.refused == kube::ErrorKind::kConflict) ++refused;
    if (refused > 0 && !w.refused) ++written_after;
  }
  EXPECT_GE(refused, 1) << Describe();
  EXPECT_GE(written_after, 1) << Describe();
  const auto object = Read();
  ASSERT_TRUE(object) << object.error().ToString();
  EXPECT_TRUE((*object).contains("status") && !(*object)["status"].empty()) << object->dump(2);
  EXPECT_EQ((*object)["metadata"]["labels"]["touched"], "first");
}

// A status write answered NotFound means the object is gone: the reconcile ends there (Done, not
// an error), and ownerReferences take its children.
TEST_P(ApiErrors, ANotFoundOnTheStatusWriteEndsTheReconcileWithoutAnError) {
  std::atomic<int> outcomes_before{-1};
  op_->client().OnWrite([&](const Interposer::Write& w) -> kube::Client* {
    int none = -1;
    if (IsStatusWriteOfTheObject(w) &&
        outcomes_before.compare_exchange_strong(none, static_cast<int>(Outcomes().size()))) {
      // The object goes just before the write (its finalizer too, so it is gone at once).
      EXPECT_TRUE(admin_->Delete(K().ref, ObjectNs(), name_));
      const auto stripped =
          admin_->Patch(K().ref, ObjectNs(), name_, {{"metadata", {{"finalizers", nullptr}}}});
      EXPECT_TRUE(stripped || stripped.error().IsNotFound()) << stripped.error().ToString();
    }
    return nullptr;
  });
  Create();
  // The reconcile that wrote has ended once one more outcome is logged.
  ASSERT_TRUE(WaitFor(
      [&] {
        const int before = outcomes_before.load();
        return before >= 0 && static_cast<int>(Outcomes().size()) > before;
      },
      seconds(60)))
      << Describe();
  bool refused = false;
  for (const auto& w : op_->client().Writes()) {
    refused = refused || (IsStatusWriteOfTheObject(w) && w.refused == kube::ErrorKind::kNotFound);
  }
  EXPECT_TRUE(refused) << Describe();
  const auto outcomes = Outcomes();
  for (size_t i = static_cast<size_t>(outcomes_before.load()); i < outcomes.size(); ++i) {
    EXPECT_TRUE(outcomes[i].Succeeded()) << Describe();
  }
  const auto object = Read();
  ASSERT_FALSE(object);
  EXPECT_TRUE(object.error().IsNotFound()) << object.error().ToString();
}

TEST_P(ApiErrors, AForbiddenChildWriteIsNotRetriedUntilTheObjectChanges) {
  const auto no_rbac = ClusterClient(C().TokenKubeconfig());  // test-token-user: no RBAC at all
  std::atomic<bool> forbid{true};
  op_->client().OnWrite([&](const Interposer::Write& w) -> kube::Client* {
    return w.resource == K().child && w.ns == ChildNs() && forbid ? no_rbac.get() : nullptr;
  });
  Create();
  // (The API server's words: the test's namespace names hold "forbidden" too.)
  const auto retried_forbidden = [](const Outcome& o) {
    return o.Retried() && o.error.find(" is forbidden: ") != std::string::npos;
  };
  const auto refused = [&] {
    int n = 0;
    for (const auto& w : ChildWrites()) n += w.refused == kube::ErrorKind::kForbidden ? 1 : 0;
    return n;
  };

  if (K().name == "Task") {
    // A Task reports a refusal of its Job as its own failure, with the API server's reason.
    json task =
        WaitForStatus([](const json& status) { return status.value("phase", "") == "Failed"; });
    ASSERT_FALSE(HasFailure());
    EXPECT_EQ(task["status"]["failure"]["reason"], "JobRejected") << task.dump(2);
    EXPECT_NE(task["status"]["failure"].value("message", "").find("forbidden"), std::string::npos)
        << task.dump(2);
    EXPECT_EQ(refused(), 1) << Describe();
    EXPECT_EQ(Find(retried_forbidden), -1) << Describe();
    return;
  }

  const auto terminal = [](const Outcome& o) {
    return o.Terminal() && o.error.find(" is forbidden: ") != std::string::npos;
  };
  const auto terminal_outcomes = [&] {
    int n = 0;
    for (const Outcome& o : Outcomes()) n += terminal(o) ? 1 : 0;
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return Find(terminal) >= 0; }, seconds(60))) << Describe();
  // Still refused: a change brings one more attempt. Each refusal ends its reconcile for good;
  // none is retried with backoff (a child's change, such as the quota controller counting a
  // Zone's ResourceQuota, may still bring a reconcile of its own).
  const int first = Find(terminal);
  Touch("still-refused");
  ASSERT_TRUE(WaitFor([&] { return Find(terminal, first + 1) >= 0; }, seconds(60))) << Describe();
  // Every refused write's reconcile has ended (one may still be running), terminally.
  EXPECT_TRUE(WaitFor([&] { return refused() == terminal_outcomes(); }, seconds(30))) << Describe();
  EXPECT_EQ(Find(retried_forbidden), -1) << Describe();
  // Allowed again: the next change writes the child.
  const int second = Find(terminal, first + 1);
  forbid = false;
  Touch("allowed");
  ASSERT_TRUE(WaitFor([&] { return Find(&Outcome::Succeeded, second + 1) >= 0; }, seconds(60)))
      << Describe();
  const auto writes = ChildWrites();
  ASSERT_FALSE(writes.empty());
  EXPECT_FALSE(writes.back().refused) << Describe();
  EXPECT_EQ(Find(retried_forbidden), -1) << Describe();
}

TEST_P(ApiErrors, AQuotaRefusalIsRetriedUntilTheQuotaMakesRoom) {
  std::atomic<bool> limited{false};
  op_->client().OnWrite([&](const Interposer::Write& w) -> kube::Client* {
    if (w.resource != K().child || w.ns != ChildNs() || w.status || limited.exchange(true)) {
      return nullptr;
    }
    // A quota of none appears just before the first write of the child.
    const json quota = {{"apiVersion", "v1"},
                        {"kind", "ResourceQuota"},
                        {"metadata", {{"name", "none-left"}, {"namespace", ChildNs()}}},
                        {"spec", {{"hard", {{K().quota_key, "0"}}}}}};
    EXPECT_TRUE(admin_->Create(kube::resources::kResourceQuotas, quota));
    // The API server's quota admission reads quotas from a cache of its own: the write goes out
    // once the same write, dry-run, is refused by the quota.
    EXPECT_TRUE(WaitFor(
        [&] {
          const auto probe =
              w.verb == "create"
                  ? admin_->Create(*w.ref, w.object, {.dry_run = true})
                  : admin_->Apply(*w.ref, w.object,
                                  {.field_manager = "probe", .force = true, .dry_run = true});
          return !probe && controller::IsQuotaRefusal(probe.error());
        },
        seconds(60)))
        << "the quota on " << K().quota_key << " never refused a dry run of the write";
    return nullptr;
  });
  Create();
  const auto quota_refusal = [](const Outcome& o) {
    return o.Retried() && (o.error.find("exceeded quota") != std::string::npos ||
                           o.error.find("status unknown for quota") != std::string::npos);
  };
  if (K().name == "Task") {
    // Refused by the API server before the Task's cache saw the quota; then the Task waits
    // for quota (Ready False, QuotaExceeded) without writing.
    WaitForStatus([&](const json& status) {
      for (const json& c : status.value("conditions", json::array())) {
        if (c.value("type", "") == "Ready" && c.value("reason", "") == "QuotaExceeded") {
          return Find(quota_refusal) >= 0;
        }
      }
      return false;
    });
    ASSERT_FALSE(HasFailure());
  } else {
    ASSERT_TRUE(WaitFor([&] { return Find(quota_refusal) >= 0; }, seconds(60))) << Describe();
  }
  EXPECT_EQ(Find(&Outcome::Terminal), -1) << Describe();

  // Room again: the child is written without any change to the object.
  ASSERT_TRUE(admin_->Delete(kube::resources::kResourceQuotas, ChildNs(), "none-left"));
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto writes = ChildWrites();
        return !writes.empty() && !writes.back().refused;
      },
      seconds(120)))
      << Describe();
  EXPECT_EQ(Find(&Outcome::Terminal), -1) << Describe();
}

INSTANTIATE_TEST_SUITE_P(EveryController, ApiErrors,
                         ::testing::Values(kZone, kTask, kPipeline, kModelVersion),
                         [](const auto& param) { return param.param.name; });

// A status the API server refuses for good (here Forbidden) can never record a cancel: the
// reconcile still deletes the Job the cancel stops, and ends terminally. Once the status may be
// written again, the next change records the cancel with its attempt.
TEST(ApiErrorsStatusRefused, ACancelWhoseStatusWriteIsForbiddenStillStopsItsJob) {
  C().InstallCrds();
  const std::string ns = C().CreateNamespace();
  const auto admin = ClusterClient();
  const auto no_rbac = ClusterClient(C().TokenKubeconfig());  // test-token-user: no RBAC at all
  InProcessOperator op(*admin);
  std::atomic<bool> forbid{false};
  op.client().OnWrite([&](const Interposer::Write& w) -> kube::Client* {
    return forbid && w.status && w.resource == "tasks" && w.ns == ns ? no_rbac.get() : nullptr;
  });
  C().Apply(R"(apiVersion: millrace.io/v1alpha1
kind: Task
metadata:
  name: stopped
  annotations: {)" +
                KwokStageDelay("pod-complete", "600s") +
                R"(}
spec:
  role: Spout
  output: {batch: {uri: "s3://lake/raw", partition: date=2026-12-07}}
  image: busybox
)",
            ns);
  const auto task = [&] {
    auto read = admin->Get(api::kTasks, ns, "stopped");
    return read ? *read : json();
  };
  const auto jobs = [&] {
    kube::ListOptions selected;
    selected.label_selector = "millrace.io/task=stopped";
    auto list = admin->List(kube::resources::kJobs, ns, selected);
    return list ? (*list)["items"] : json::array();
  };
  ASSERT_TRUE(WaitFor(
      [&] {
        const json t = task();
        return t.contains("status") && t["status"].value("attempts", 0) == 1 && jobs().size() == 1;
      },
      seconds(60)))
      << task().dump(2);

  forbid = true;
  ASSERT_TRUE(admin->Patch(api::kTasks, ns, "stopped", {{"spec", {{"cancel", true}}}}));
  const auto refused = [&] {
    for (const Outcome& o : op.Outcomes("task", ns + "/stopped")) {
      if (o.Terminal() && o.error.find("patching the status: Forbidden") != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  const auto stopped = [&] {
    for (const json& job : jobs()) {
      if (!job["metadata"].contains("deletionTimestamp")) return false;
    }
    return true;
  };
  ASSERT_TRUE(WaitFor([&] { return refused() && stopped(); }, seconds(60)))
      << "refused: " << refused() << ", jobs: " << jobs().dump(2);
  EXPECT_NE(task()["status"].value("phase", ""), "Cancelled");

  forbid = false;
  ASSERT_TRUE(
      admin->Patch(api::kTasks, ns, "stopped", {{"metadata", {{"labels", {{"touched", "1"}}}}}}));
  ASSERT_TRUE(
      WaitFor([&] { return task()["status"].value("phase", "") == "Cancelled"; }, seconds(60)))
      << task().dump(2);
  EXPECT_EQ(task()["status"]["attempts"], 1) << task().dump(2);
}

double CounterValue(controller::Registry& registry, const std::string& series) {
  const std::string text = registry.Expose();
  const auto at = text.find(series + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 1));
}

// Gone (410) ends a watch whose resourceVersion the API server no longer has: every controller's
// informers relist, and the controllers act on what changed while they were away.
TEST(ApiErrorsGone, EveryControllerRelistsAfterGoneAndCarriesOn) {
  C().InstallCrds();
  const std::string ns = C().CreateNamespace();
  const auto admin = ClusterClient();
  InProcessOperator op(*admin);
  const std::vector<Kind> kinds = {kZone, kTask, kPipeline, kModelVersion};
  const auto name_of = [&](const Kind& k, const std::string& suffix) {
    return k.ref.namespaced ? suffix + "-1" : ns + "-" + suffix;
  };
  const auto has_status = [&](const Kind& k, const std::string& name) {
    const auto read = admin->Get(k.ref, k.ref.namespaced ? ns : "", name);
    return read && read->contains("status") && !(*read)["status"].empty();
  };
  for (const Kind& k : kinds)
    C().Apply(k.manifest(name_of(k, "before")), k.ref.namespaced ? ns : "");
  for (const Kind& k : kinds) {
    ASSERT_TRUE(WaitFor([&] { return has_status(k, name_of(k, "before")); }, seconds(60)))
        << k.name;
  }

  // The API server goes; a Task goes behind its back; etcd forgets the revisions the watches held.
  C().StopComponent("kube-apiserver");
  C().EtcdDelete("millrace.io/tasks", ns, "before-1");
  C().EtcdCompact();
  C().StartComponent("kube-apiserver");
  ASSERT_TRUE(WaitFor([&] { return admin->Get(kube::resources::kNamespaces, "", ns).has_value(); },
                      seconds(90)));

  controller::Registry& registry = op.manager().metrics();
  for (const Kind& k : kinds) {
    const std::string relists =
        "millrace_informer_relists_total{resource=\"" + k.ref.resource + "." + k.ref.group + "\"}";
    EXPECT_TRUE(WaitFor([&] { return CounterValue(registry, relists) >= 1; }, seconds(90)))
        << k.name << ": " << relists << " = " << CounterValue(registry, relists);
  }
  // Every controller still reconciles: a new object of each kind gets its status.
  for (const Kind& k : kinds)
    C().Apply(k.manifest(name_of(k, "after")), k.ref.namespaced ? ns : "");
  for (const Kind& k : kinds) {
    EXPECT_TRUE(WaitFor([&] { return has_status(k, name_of(k, "after")); }, seconds(90)))
        << k.name << ":\n"
        << [&] {
             std::string text;
             for (const Outcome& o :
                  op.Outcomes(k.controller, k.ref.namespaced ? ns + "/" + name_of(k, "after")
                                                             : name_of(k, "after"))) {
               text += o.msg + " " + o.error + "\n";
             }
             return text;
           }();
  }
}

}  // namespace
}  // namespace millrace::testing
