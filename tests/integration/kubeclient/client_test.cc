// kubeclient against a real control plane: CRUD, patches, server-side apply, watch, compaction,
// authentication (client certificate, bearer token, token file, exec plugin), discovery and the
// transport (connection reuse, compression, an HTTP CONNECT proxy).
#include "kubeclient/client.h"

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "kubeclient/config.h"
#include "kubeclient/object.h"
#include "tests/support/cluster.h"

namespace millrace::kube {
namespace {

using millrace::testing::C;
using millrace::testing::Cluster;
using millrace::testing::RunProcess;
using millrace::testing::WaitFor;
using nlohmann::json;
using std::chrono::seconds;
using ::testing::HasSubstr;

std::unique_ptr<Client> MustClient(const Config& config,
                                   std::shared_ptr<RequestMetrics> metrics = nullptr) {
  auto client = NewClient(config, std::move(metrics));
  if (!client) throw std::runtime_error(client.error().ToString());
  return std::move(*client);
}

Config AdminConfig() {
  auto config = LoadKubeconfig({.paths = {C().kubeconfig()}, .context = {}});
  if (!config) throw std::runtime_error(config.error().ToString());
  return *config;
}

std::unique_ptr<Client> Admin(std::shared_ptr<RequestMetrics> metrics = nullptr) {
  return MustClient(AdminConfig(), std::move(metrics));
}

std::string TestToken() { return C().TestToken(); }

Config TokenConfig() {
  Config config;
  config.server = C().apiserver_url();
  config.ca_file = C().state_dir() + "/pki/ca.crt";
  return config;
}

json ConfigMap(const std::string& ns, const std::string& name, json data = json::object(),
               json labels = json::object()) {
  json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", name}, {"namespace", ns}}},
             {"data", std::move(data)}};
  if (!labels.empty()) cm["metadata"]["labels"] = std::move(labels);
  return cm;
}

// Who the API server thinks we are (SelfSubjectReview, allowed to every authenticated user).
Result<std::string> WhoAmI(Client& client) {
  const ResourceRef reviews{"authentication.k8s.io", "v1", "selfsubjectreviews", false, ""};
  auto review = client.Create(
      reviews, {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "SelfSubjectReview"}});
  if (!review) return std::unexpected(review.error());
  return (*review)["status"]["userInfo"].value("username", "");
}

TEST(ClientCrud, ConfigMapRoundTrip) {
  const std::string ns = C().CreateNamespace();
  auto client = Admin();
  const auto& cms = resources::kConfigMaps;

  auto created = client->Create(cms, ConfigMap(ns, "a", {{"k", "v"}}));
  ASSERT_TRUE(created) << created.error().ToString();
  EXPECT_EQ(Name(*created), "a");
  EXPECT_FALSE(Uid(*created).empty());

  auto again = client->Create(cms, ConfigMap(ns, "a"));
  ASSERT_FALSE(again);
  EXPECT_TRUE(again.error().IsAlreadyExists()) << again.error().ToString();
  EXPECT_EQ(again.error().message, "configmaps \"a\" already exists");

  auto got = client->Get(cms, ns, "a");
  ASSERT_TRUE(got) << got.error().ToString();
  EXPECT_EQ((*got)["data"]["k"], "v");

  (*got)["data"]["k"] = "v2";
  auto updated = client->Update(cms, *got);
  ASSERT_TRUE(updated) << updated.error().ToString();
  EXPECT_EQ((*updated)["data"]["k"], "v2");
  EXPECT_NE(ResourceVersion(*updated), ResourceVersion(*got));

  auto merged = client->Patch(cms, ns, "a", {{"data", {{"m", "1"}}}}, {.type = PatchType::kMerge});
  ASSERT_TRUE(merged) << merged.error().ToString();
  auto strategic =
      client->Patch(cms, ns, "a", {{"data", {{"s", "2"}}}}, {.type = PatchType::kStrategicMerge});
  ASSERT_TRUE(strategic) << strategic.error().ToString();
  auto jsonpatch = client->Patch(
      cms, ns, "a", json::array({{{"op", "add"}, {"path", "/data/j"}, {"value", "3"}}}),
      {.type = PatchType::kJson});
  ASSERT_TRUE(jsonpatch) << jsonpatch.error().ToString();
  EXPECT_EQ((*jsonpatch)["data"], json({{"k", "v2"}, {"m", "1"}, {"s", "2"}, {"j", "3"}}));

  auto bad_patch = client->Patch(
      cms, ns, "a", json::array({{{"op", "test"}, {"path", "/data/k"}, {"value", "nope"}}}),
      {.type = PatchType::kJson});
  ASSERT_FALSE(bad_patch);
  EXPECT_EQ(bad_patch.error().http_code, 422);

  auto wrong_uid = client->Delete(cms, ns, "a", {.precondition_uid = "not-the-uid"});
  ASSERT_FALSE(wrong_uid);
  EXPECT_TRUE(wrong_uid.error().IsConflict()) << wrong_uid.error().ToString();
  EXPECT_THAT(wrong_uid.error().message,
              HasSubstr("the UID in the precondition (not-the-uid) does not match"));

  auto deleted = client->Delete(
      cms, ns, "a", {.propagation_policy = "Foreground", .precondition_uid = Uid(*created)});
  ASSERT_TRUE(deleted) << deleted.error().ToString();
  // Foreground deletion: the garbage collector removes the object once it has no dependents.
  Result<json> gone;
  ASSERT_TRUE(WaitFor([&] { return !(gone = client->Get(cms, ns, "a")); }, seconds(30)));
  EXPECT_TRUE(gone.error().IsNotFound());
  EXPECT_EQ(gone.error().http_code, 404);
  EXPECT_EQ(gone.error().reason, "NotFound");
  EXPECT_EQ(gone.error().message, "configmaps \"a\" not found");
}

TEST(ClientCrud, InvalidObjectCarriesTheServersCauses) {
  const std::string ns = C().CreateNamespace();
  auto client = Admin();
  auto bad = client->Create(resources::kConfigMaps, ConfigMap(ns, "Not_A_Valid_Name"));
  ASSERT_FALSE(bad);
  EXPECT_TRUE(bad.error().IsInvalid()) << bad.error().ToString();
  ASSERT_TRUE(bad.error().causes.is_array());
  EXPECT_EQ(bad.error().causes[0]["field"], "metadata.name");
}

TEST(ClientCrud, UpdateWithStaleResourceVersionIsConflict) {
  const std::string ns = C().CreateNamespace();
  auto client = Admin();
  auto v1 = client->Create(resources::kConfigMaps, ConfigMap(ns, "c", {{"k", "1"}}));
  ASSERT_TRUE(v1) << v1.error().ToString();
  json fresh = *v1;
  fresh["data"]["k"] = "2";
  ASSERT_TRUE(client->Update(resources::kConfigMaps, fresh));
  json stale = *v1;  // still carries the first resourceVersion
  stale["data"]["k"] = "3";
  auto conflict = client->Update(resources::kConfigMaps, stale);
  ASSERT_FALSE(conflict);
  EXPECT_TRUE(conflict.error().IsConflict());
  EXPECT_EQ(conflict.error().http_code, 409);
  EXPECT_EQ(conflict.error().message,
            "Operation cannot be fulfilled on configmaps \"c\": the object has been modified; "
            "please apply your changes to the latest version and try again");
}

TEST(ClientList, LabelSelectorAndPaginationOverSeveralPages) {
  const std::string ns = C().CreateNamespace();
  auto metrics = std::make_shared<RequestMetrics>();
  auto client = Admin(metrics);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client->Create(resources::kConfigMaps,
                               ConfigMap(ns, "in-" + std::to_string(i), {}, {{"pick", "yes"}})));
  }
  ASSERT_TRUE(client->Create(resources::kConfigMaps, ConfigMap(ns, "out", {}, {{"pick", "no"}})));

  auto first = client->List(resources::kConfigMaps, ns, {.label_selector = "pick=yes", .limit = 2});
  ASSERT_TRUE(first) << first.error().ToString();
  EXPECT_EQ((*first)["items"].size(), 2U);
  const std::string token = (*first)["metadata"].value("continue", "");
  ASSERT_FALSE(token.empty());
  auto second = client->List(resources::kConfigMaps, ns,
                             {.label_selector = "pick=yes", .limit = 2, .continue_token = token});
  ASSERT_TRUE(second) << second.error().ToString();
  EXPECT_EQ((*second)["items"].size(), 2U);
  EXPECT_NE(Name((*second)["items"][0]), Name((*first)["items"][0]));

  const uint64_t lists_before = metrics->Count("list", 200);
  auto all =
      client->ListAll(resources::kConfigMaps, ns, {.label_selector = "pick=yes", .limit = 2});
  ASSERT_TRUE(all) << all.error().ToString();
  EXPECT_EQ(metrics->Count("list", 200) - lists_before, 3U);  // pages of 2, 2 and 1
  std::vector<std::string> names;
  for (const auto& item : (*all)["items"]) names.push_back(Name(item));
  EXPECT_THAT(names, ::testing::ElementsAre("in-0", "in-1", "in-2", "in-3", "in-4"));
  EXPECT_FALSE((*all)["metadata"].contains("continue"));

  auto by_field = client->List(resources::kConfigMaps, ns, {.field_selector = "metadata.name=out"});
  ASSERT_TRUE(by_field);
  ASSERT_EQ((*by_field)["items"].size(), 1U);
  EXPECT_EQ(Name((*by_field)["items"][0]), "out");
}

TEST(ClientApply, SecondManagerConflictsUntilItForces) {
  const std::string ns = C().CreateNamespace();
  auto client = Admin();
  const json a = ConfigMap(ns, "shared", {{"key", "from-a"}});
  auto applied = client->Apply(resources::kConfigMaps, a, {.field_manager = "manager-a"});
  ASSERT_TRUE(applied) << applied.error().ToString();
  // Applying the same configuration again is a no-op.
  auto again = client->Apply(resources::kConfigMaps, a, {.field_manager = "manager-a"});
  ASSERT_TRUE(again);
  EXPECT_EQ(ResourceVersion(*again), ResourceVersion(*applied));

  const json b = ConfigMap(ns, "shared", {{"key", "from-b"}});
  auto conflict = client->Apply(resources::kConfigMaps, b, {.field_manager = "manager-b"});
  ASSERT_FALSE(conflict);
  EXPECT_TRUE(conflict.error().IsConflict()) << conflict.error().ToString();
  EXPECT_EQ(conflict.error().message,
            "Apply failed with 1 conflict: conflict with \"manager-a\": .data.key");
  ASSERT_TRUE(conflict.error().causes.is_array());
  EXPECT_EQ(conflict.error().causes[0]["field"], ".data.key");

  auto forced =
      client->Apply(resources::kConfigMaps, b, {.field_manager = "manager-b", .force = true});
  ASSERT_TRUE(forced) << forced.error().ToString();
  EXPECT_EQ((*forced)["data"]["key"], "from-b");
  bool b_owns_key = false;
  for (const auto& entry : (*forced)["metadata"]["managedFields"]) {
    if (entry["manager"] == "manager-b") {
      b_owns_key = entry["fieldsV1"]["f:data"].contains("f:key");
    }
  }
  EXPECT_TRUE(b_owns_key) << (*forced)["metadata"]["managedFields"].dump(2);
}

// A namespaced CRD of group kubeclient.millrace.io, version v1: `kind`, plural `plural`, with the
// lines `version_extra` (indented 4 spaces: subresources, schema) in its one version.
std::string TestCrd(const std::string& plural, const std::string& kind,
                    const std::string& version_extra) {
  return R"(
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: )" +
         plural + R"(.kubeclient.millrace.io}
spec:
  group: kubeclient.millrace.io
  scope: Namespaced
  names: {plural: )" +
         plural + ", kind: " + kind + R"(}
  versions:
  - name: v1
    served: true
    storage: true
)" + version_extra;
}

// Applies a TestCrd and waits until `client` discovers its resource.
Result<ResourceRef> InstallTestCrd(Client& client, const std::string& plural,
                                   const std::string& kind, const std::string& version_extra) {
  C().Apply(TestCrd(plural, kind, version_extra));
  Result<ResourceRef> ref;
  WaitFor([&] { return (ref = client.Discover("kubeclient.millrace.io/v1", kind)).has_value(); },
          seconds(60));
  return ref;
}

TEST(ClientCustomResources, CrudAndStatusSubresourceOfACrd) {
  const std::string ns = C().CreateNamespace();
  auto client = Admin();
  const Result<ResourceRef> widgets = InstallTestCrd(*client, "widgets", "Widget", R"(
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties: {size: {type: integer}}
          status:
            type: object
            properties: {phase: {type: string}, observed: {type: integer}}
)");
  ASSERT_TRUE(widgets) << widgets.error().ToString();
  const json crd = C().KubectlJson({"get", "crd", "widgets.kubeclient.millrace.io"});
  bool established = false;
  for (const auto& c : crd["status"].value("conditions", json::array())) {
    established = established || (c["type"] == "Established" && c["status"] == "True");
  }
  EXPECT_TRUE(established) << crd.dump(2);
  EXPECT_EQ(widgets->resource, "widgets");
  EXPECT_TRUE(widgets->namespaced);

  const json widget = {{"apiVersion", "kubeclient.millrace.io/v1"},
                       {"kind", "Widget"},
                       {"metadata", {{"name", "w"}, {"namespace", ns}}},
                       {"spec", {{"size", 3}}}};
  auto created = client->Create(*widgets, widget);
  ASSERT_TRUE(created) << created.error().ToString();
  EXPECT_EQ(Generation(*created), 1);

  // A status write does not touch the spec, and a spec write ignores the status.
  json with_status = *created;
  with_status["status"] = {{"phase", "Ready"}, {"observed", 1}};
  with_status["spec"]["size"] = 99;
  auto status_updated = client->UpdateStatus(*widgets, with_status);
  ASSERT_TRUE(status_updated) << status_updated.error().ToString();
  EXPECT_EQ((*status_updated)["status"]["phase"], "Ready");
  EXPECT_EQ((*status_updated)["spec"]["size"], 3);

  auto patched = client->PatchStatus(*widgets, ns, "w", {{"status", {{"phase", "Patched"}}}});
  ASSERT_TRUE(patched) << patched.error().ToString();
  EXPECT_EQ((*patched)["status"]["phase"], "Patched");

  auto applied = client->ApplyStatus(*widgets,
                                     {{"apiVersion", "kubeclient.millrace.io/v1"},
                                      {"kind", "Widget"},
                                      {"metadata", {{"name", "w"}, {"namespace", ns}}},
                                      {"status", {{"phase", "Applied"}, {"observed", 2}}}},
                                     {.field_manager = "widget-controller", .force = true});
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_EQ((*applied)["status"]["observed"], 2);

  auto list = client->List(*widgets, ns);
  ASSERT_TRUE(list) << list.error().ToString();
  EXPECT_EQ((*list)["kind"], "WidgetList");
  ASSERT_EQ((*list)["items"].size(), 1U);

  ASSERT_TRUE(client->Delete(*widgets, ns, "w"));
  auto gone = client->Get(*widgets, ns, "w");
  ASSERT_FALSE(gone);
  EXPECT_TRUE(gone.error().IsNotFound());
}

// Runs a watch on its own thread, recording events.
class WatchRecorder {
 public:
  WatchRecorder(Client& client, const ResourceRef& ref, std::string ns, WatchOptions options)
      : thread_([this, &client, ref, ns = std::move(ns), options](std::stop_token stop) {
          auto r = client.Watch(
              ref, ns, options,
              [this](WatchEvent&& e) {
                const std::lock_guard lock(mu_);
                events_.push_back(
                    std::string(EventTypeName(e.type)) + " " +
                    (e.type == EventType::kBookmark ? ResourceVersion(e.object) : Name(e.object)));
                return true;
              },
              stop);
          const std::lock_guard lock(mu_);
          result_ = std::move(r);
          done_ = true;
        }) {}

  std::vector<std::string> events() const {
    const std::lock_guard lock(mu_);
    return events_;
  }
  bool Saw(const std::string& event) const {
    const auto e = events();
    return std::find(e.begin(), e.end(), event) != e.end();
  }
  bool done() const {
    const std::lock_guard lock(mu_);
    return done_;
  }
  Result<void> result() const {
    const std::lock_guard lock(mu_);
    return result_;
  }
  void Stop() { thread_.request_stop(); }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> events_;  // guarded by mu_
  Result<void> result_;              // guarded by mu_
  bool done_ = false;                // guarded by mu_
  std::jthread thread_;
};

TEST(ClientWatch, DeliversAddedModifiedDeletedInOrder) {
  const std::string ns = C().CreateNamespace();
  auto client = Admin();
  auto list = client->List(resources::kConfigMaps, ns);
  ASSERT_TRUE(list) << list.error().ToString();
  WatchRecorder watch(*client, resources::kConfigMaps, ns,
                      {.resource_version = ResourceVersion(*list), .allow_bookmarks = false});

  auto cm = client->Create(resources::kConfigMaps, ConfigMap(ns, "w", {{"n", "1"}}));
  ASSERT_TRUE(cm) << cm.error().ToString();
  (*cm)["data"]["n"] = "2";
  ASSERT_TRUE(client->Update(resources::kConfigMaps, *cm));
  ASSERT_TRUE(client->Delete(resources::kConfigMaps, ns, "w"));

  ASSERT_TRUE(WaitFor([&] { return watch.Saw("DELETED w"); }, seconds(30)))
      << ::testing::PrintToString(watch.events());
  std::vector<std::string> non_root;
  for (const auto& e : watch.events()) {
    if (e.find("kube-root-ca.crt") == std::string::npos) non_root.push_back(e);
  }
  EXPECT_THAT(non_root, ::testing::ElementsAre("ADDED w", "MODIFIED w", "DELETED w"));

  // Stopping from another thread ends the blocked transfer promptly.
  const auto start = std::chrono::steady_clock::now();
  watch.Stop();
  ASSERT_TRUE(WaitFor([&] { return watch.done(); }, seconds(5)));
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(2));
  EXPECT_TRUE(watch.result()) << watch.result().error().ToString();
}

TEST(ClientWatch, SendsBookmarksWhenAsked) {
  const std::string ns = C().CreateNamespace();
  const std::string elsewhere = C().CreateNamespace("elsewhere");
  auto client = Admin();
  auto list = client->List(resources::kConfigMaps, ns);
  ASSERT_TRUE(list);
  ASSERT_TRUE(client->Create(resources::kConfigMaps, ConfigMap(elsewhere, "ticker")));
  // The watch cache sends a bookmark 2 s before a watch's timeout (and about once a minute), when
  // its resourceVersion has moved past the last event this watcher got: changes in another
  // namespace move it without sending this watcher events.
  WatchRecorder watch(
      *client, resources::kConfigMaps, ns,
      {.resource_version = ResourceVersion(*list), .allow_bookmarks = true, .timeout_seconds = 5});
  ASSERT_TRUE(client->Create(resources::kConfigMaps, ConfigMap(ns, "b")));
  int tick = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        client->Patch(resources::kConfigMaps, elsewhere, "ticker",
                      {{"data", {{"tick", std::to_string(++tick)}}}});
        return watch.done();
      },
      seconds(90)))
      << ::testing::PrintToString(watch.events());
  // The server ended the stream at timeoutSeconds: that is a normal end.
  EXPECT_TRUE(watch.result()) << watch.result().error().ToString();
  const auto events = watch.events();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events[0], "ADDED b");
  const bool bookmark = std::any_of(events.begin(), events.end(),
                                    [](const std::string& e) { return e.starts_with("BOOKMARK"); });
  EXPECT_TRUE(bookmark) << ::testing::PrintToString(events);
}

TEST(ClientWatch, WatchAndListFromACompactedResourceVersionAreGone) {
  const std::string ns = C().CreateNamespace();
  auto client = Admin();
  auto cm = client->Create(resources::kConfigMaps, ConfigMap(ns, "old", {{"n", "0"}}));
  ASSERT_TRUE(cm) << cm.error().ToString();
  const std::string old_rv = ResourceVersion(*cm);
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(
        client->Patch(resources::kConfigMaps, ns, "old", {{"data", {{"n", std::to_string(i)}}}}));
  }
  C().EtcdCompact();

  // The API server's watch cache still holds recent history of ConfigMaps in memory, so it may
  // serve old_rv despite the compaction. A resource whose cache starts after old_rv cannot: etcd
  // has compacted old_rv away, as an informer sees it after an API server restart.
  const Result<ResourceRef> gadgets = InstallTestCrd(
      *client, "gadgets", "Gadget",
      "    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}\n");
  ASSERT_TRUE(gadgets) << gadgets.error().ToString();

  // An exact list at the compacted version is Gone (answered by etcd).
  Result<json> list;
  ASSERT_TRUE(WaitFor(
      [&] {
        list = client->List(*gadgets, ns,
                            {.resource_version = old_rv, .resource_version_match = "Exact"});
        return !list && list.error().IsGone();
      },
      seconds(30)))
      << (list ? "list at compacted resourceVersion " + old_rv + " succeeded"
               : list.error().ToString());
  EXPECT_EQ(list.error().http_code, 410);
  EXPECT_EQ(list.error().message, "The resourceVersion for the provided list is too old.");

  // A watch from it ends with an ERROR event carrying 410 Expired: an Error of kind Gone. (While
  // the new cache initialises the server answers 429 + Retry-After, which the client retries.)
  std::vector<std::string> seen;
  auto watched = client->Watch(*gadgets, ns, {.resource_version = old_rv}, [&](WatchEvent&& e) {
    seen.emplace_back(EventTypeName(e.type));
    return true;
  });
  ASSERT_FALSE(watched) << "watch from " << old_rv << " saw " << ::testing::PrintToString(seen);
  EXPECT_TRUE(watched.error().IsGone()) << watched.error().ToString();
  EXPECT_EQ(watched.error().http_code, 410);
  EXPECT_EQ(watched.error().reason, "Expired");
  EXPECT_THAT(watched.error().message, HasSubstr("too old resource version: " + old_rv));
}

TEST(ClientAuth, ClientCertificateFromKubeconfig) {
  auto client = Admin();
  auto who = WhoAmI(*client);
  ASSERT_TRUE(who) << who.error().ToString();
  EXPECT_EQ(*who, "millrace-admin");
}

TEST(ClientAuth, BearerTokenWithoutRightsIsForbiddenWithTheServersMessage) {
  const std::string ns = C().CreateNamespace();
  Config config = TokenConfig();
  config.token = TestToken();
  auto client = MustClient(config);
  auto who = WhoAmI(*client);
  ASSERT_TRUE(who) << who.error().ToString();
  EXPECT_EQ(*who, "test-token-user");

  auto list = client->List(resources::kConfigMaps, ns);
  ASSERT_FALSE(list);
  EXPECT_TRUE(list.error().IsForbidden()) << list.error().ToString();
  EXPECT_EQ(list.error().http_code, 403);
  EXPECT_EQ(list.error().message,
            "configmaps is forbidden: User \"test-token-user\" cannot list resource "
            "\"configmaps\" in API group \"\" in the namespace \"" +
                ns + "\"");
}

TEST(ClientAuth, TokenFileAndBadTokenIsUnauthorized) {
  const std::string file = ::testing::TempDir() + "/kubeclient-token-" + std::to_string(getpid());
  std::ofstream(file) << TestToken() << "\n";
  Config config = TokenConfig();
  config.token_file = file;
  auto who = WhoAmI(*MustClient(config));
  std::filesystem::remove(file);
  ASSERT_TRUE(who) << who.error().ToString();
  EXPECT_EQ(*who, "test-token-user");

  Config bad = TokenConfig();
  bad.token = "not-a-token";
  auto denied = WhoAmI(*MustClient(bad));
  ASSERT_FALSE(denied);
  EXPECT_TRUE(denied.error().IsUnauthorized()) << denied.error().ToString();
  EXPECT_EQ(denied.error().http_code, 401);
}

TEST(ClientAuth, ExecPluginTokenAndRefreshAfter401) {
  const std::string dir = ::testing::TempDir() + "/kubeclient-exec-" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  // The first run hands out a token the server rejects; the client must run the plugin again.
  const std::string plugin = dir + "/plugin.sh";
  const std::string runs = dir + "/runs";
  std::ofstream(plugin) << "#!/bin/sh\n"
                        << "echo run >> '" << runs << "'\n"
                        << "if [ \"$(wc -l < '" << runs << "')\" -eq 1 ]; then T=expired; "
                        << "else T='" << TestToken() << "'; fi\n"
                        << "printf '{\"apiVersion\":\"client.authentication.k8s.io/v1\","
                        << "\"kind\":\"ExecCredential\",\"status\":{\"token\":\"%s\"}}' \"$T\"\n";
  ::chmod(plugin.c_str(), 0755);
  const std::string kubeconfig = dir + "/kubeconfig";
  std::ofstream(kubeconfig) << "apiVersion: v1\nkind: Config\ncurrent-context: exec\n"
                               "clusters:\n- name: c\n  cluster:\n    server: "
                            << C().apiserver_url()
                            << "\n    certificate-authority: " << C().state_dir() << "/pki/ca.crt\n"
                            << "users:\n- name: u\n  user:\n    exec:\n"
                               "      apiVersion: client.authentication.k8s.io/v1\n"
                               "      command: ./plugin.sh\n      interactiveMode: Never\n"
                               "contexts:\n- name: exec\n  context: {cluster: c, user: u}\n";
  auto config = LoadKubeconfig({.paths = {kubeconfig}, .context = {}});
  ASSERT_TRUE(config) << config.error().ToString();
  auto metrics = std::make_shared<RequestMetrics>();
  auto client = MustClient(*config, metrics);
  auto who = WhoAmI(*client);
  ASSERT_TRUE(who) << who.error().ToString();
  EXPECT_EQ(*who, "test-token-user");
  EXPECT_EQ(metrics->Count("create", 401), 1U);
  std::ifstream runs_in(runs);
  int n = 0;
  for (std::string line; std::getline(runs_in, line);) ++n;
  EXPECT_EQ(n, 2);
  std::filesystem::remove_all(dir);
}

TEST(ClientAuth, ExecPluginClientCertificate) {
  const std::string dir =
      ::testing::TempDir() + "/kubeclient-exec-cert-" + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const auto read = [](const std::string& path) {
    std::ostringstream out;
    out << std::ifstream(path).rdbuf();
    return out.str();
  };
  const json credential = {{"apiVersion", "client.authentication.k8s.io/v1beta1"},
                           {"kind", "ExecCredential"},
                           {"status",
                            {{"clientCertificateData", read(C().state_dir() + "/pki/admin.crt")},
                             {"clientKeyData", read(C().state_dir() + "/pki/admin.key")}}}};
  std::ofstream(dir + "/credential.json") << credential.dump();
  const std::string plugin = dir + "/plugin.sh";
  std::ofstream(plugin) << "#!/bin/sh\ncat '" << dir << "/credential.json'\n";
  ::chmod(plugin.c_str(), 0755);
  Config config = TokenConfig();
  config.exec = ExecConfig{.api_version = "client.authentication.k8s.io/v1beta1",
                           .command = plugin,
                           .args = {},
                           .env = {},
                           .interactive_mode = "Never",
                           .provide_cluster_info = true};
  auto who = WhoAmI(*MustClient(config));
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(who) << who.error().ToString();
  EXPECT_EQ(*who, "millrace-admin");
}

TEST(ClientDiscovery, MapsKindsToResources) {
  auto client = Admin();
  auto cm = client->Discover("v1", "ConfigMap");
  ASSERT_TRUE(cm) << cm.error().ToString();
  EXPECT_EQ(*cm, resources::kConfigMaps);
  auto deploy = client->Discover("apps/v1", "Deployment");
  ASSERT_TRUE(deploy) << deploy.error().ToString();
  EXPECT_EQ(*deploy, resources::kDeployments);
  auto ns = client->DiscoverFor({{"apiVersion", "v1"}, {"kind", "Namespace"}});
  ASSERT_TRUE(ns);
  EXPECT_FALSE(ns->namespaced);
  auto missing = client->Discover("v1", "NoSuchKind");
  ASSERT_FALSE(missing);
  EXPECT_TRUE(missing.error().IsNotFound());
}

TEST(ClientTransport, ReusesConnectionsAcrossRequestsAndThreads) {
  auto metrics = std::make_shared<RequestMetrics>();
  auto client = Admin(metrics);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(client->Get(resources::kNamespaces, "", "default"));
  EXPECT_EQ(metrics->connections(), 1U);
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 10; ++i)
          EXPECT_TRUE(client->Get(resources::kNamespaces, "", "default"));
      });
    }
  }
  EXPECT_LE(metrics->connections(), 4U);  // at most one per concurrent thread
  EXPECT_EQ(metrics->Count("get", 200), 60U);
}

TEST(ClientTransport, RateLimiterSpacesRequestsAfterTheBurst) {
  Config config = AdminConfig();
  config.qps = 10;
  config.burst = 2;
  auto client = MustClient(config);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(client->Get(resources::kNamespaces, "", "default"));
  // 2 at once, then 10 more at 10 per second.
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(950));
}

TEST(ClientTransport, UnreachableServerIsATransportError) {
  Config config = TokenConfig();
  config.server = "https://127.0.0.1:1";  // nothing listens on port 1
  config.max_retries = 1;
  auto metrics = std::make_shared<RequestMetrics>();
  auto client = MustClient(config, metrics);
  auto got = client->Get(resources::kConfigMaps, "default", "x");
  ASSERT_FALSE(got);
  EXPECT_TRUE(got.error().IsTransport()) << got.error().ToString();
  EXPECT_THAT(got.error().message, HasSubstr("127.0.0.1:1"));
  EXPECT_EQ(metrics->Count("get", 0), 2U);  // one retry
}

// A real 429 from the API server: evicting a pod its PodDisruptionBudget protects. Retried with
// backoff (every verb), then reported with the server's reason and message.
TEST(ClientTransport, TooManyRequestsIsRetriedThenReportedWithTheServersMessage) {
  auto admin = Admin();
  const std::string ns = "kubeclient-evict";
  (void)admin->Create(
      resources::kNamespaces,
      json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}});
  ASSERT_TRUE(WaitFor(
      [&] {
        return C().Kubectl({"get", "sa", "default", "-n", ns}).exit_code == 0;
      },
      seconds(30)));
  C().Apply(R"(
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: keep}
spec: {minAvailable: 1, selector: {matchLabels: {app: kept}}}
---
apiVersion: v1
kind: Pod
metadata: {name: kept, labels: {app: kept}}
spec: {containers: [{name: main, image: busybox}]}
)",
            ns);
  // The disruption controller counts the pod as healthy once it is Ready (kwok makes it so).
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto r = C().Kubectl(
            {"get", "pdb", "keep", "-n", ns, "-o", "jsonpath={.status.currentHealthy}"});
        return r.out == "1";
      },
      seconds(60)));
  Config config = AdminConfig();
  config.max_retries = 2;
  auto metrics = std::make_shared<RequestMetrics>();
  auto client = MustClient(config, metrics);
  const ResourceRef pods = resources::kPods;
  const json eviction = {{"apiVersion", "policy/v1"},
                         {"kind", "Eviction"},
                         {"metadata", {{"name", "kept"}, {"namespace", ns}}}};
  auto evicted = client->Create(
      pods, eviction,
      {.field_manager = {}, .dry_run = false, .subresource = "eviction", .timeout = {}});
  ASSERT_FALSE(evicted);
  EXPECT_EQ(evicted.error().kind, ErrorKind::kTooManyRequests) << evicted.error().ToString();
  EXPECT_EQ(evicted.error().http_code, 429);
  EXPECT_THAT(evicted.error().message, HasSubstr("disruption budget"));
  EXPECT_EQ(metrics->Count("create", 429), 3U) << "the first try and two retries";
  (void)admin->Delete(resources::kNamespaces, "", ns);
}

// A real 503: an aggregated API whose Service has no endpoints. An idempotent request is retried,
// then the server's answer is reported; a call's own timeout cuts the retries short.
TEST(ClientTransport, ServiceUnavailableIsRetriedForReadsAndBoundedByTheCallsTimeout) {
  C().Apply(R"(
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1.unavailable.millrace.io}
spec:
  group: unavailable.millrace.io
  version: v1
  groupPriorityMinimum: 1000
  versionPriority: 15
  insecureSkipTLSVerify: true
  service: {name: nothing-here, namespace: default, port: 443}
)");
  const ResourceRef things{"unavailable.millrace.io", "v1", "things", true, "Thing"};
  Config config = AdminConfig();
  config.max_retries = 2;
  auto metrics = std::make_shared<RequestMetrics>();
  auto client = MustClient(config, metrics);
  Config once = AdminConfig();
  once.max_retries = 0;
  auto probe = MustClient(once);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto r = probe->Get(things, "default", "x");
        return !r && r.error().http_code == 503;  // registered with the aggregator
      },
      seconds(30)));
  const uint64_t before = metrics->Count("get", 503);
  auto got = client->Get(things, "default", "x");
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().kind, ErrorKind::kServerError) << got.error().ToString();
  EXPECT_EQ(got.error().http_code, 503);
  EXPECT_THAT(got.error().message, HasSubstr("service unavailable"));
  EXPECT_EQ(metrics->Count("get", 503) - before, 3U) << "the first try and two retries";

  // The backoff before the second retry (400 ms) would pass the call's 300 ms: no more tries.
  const uint64_t bounded_before = metrics->Count("get", 503);
  const auto start = std::chrono::steady_clock::now();
  auto bounded = client->Get(things, "default", "x",
                             {.resource_version = {}, .timeout = std::chrono::milliseconds{300}});
  EXPECT_FALSE(bounded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds{1000});
  EXPECT_LE(metrics->Count("get", 503) - bounded_before, 2U);
  C().Kubectl({"delete", "apiservice", "v1.unavailable.millrace.io"});
}

// TLS verification: a server whose certificate another CA signed, or that does not name the host
// dialled, is refused at the handshake, and not retried.
TEST(ClientTransport, TlsVerificationRefusesAnotherCaAndAnotherHost) {
  const auto other_ca = RunProcess({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                                    "-keyout", "/dev/null", "-subj", "/CN=other-ca", "-days", "1"});
  ASSERT_EQ(other_ca.exit_code, 0) << other_ca.err;
  Config wrong_ca = AdminConfig();
  wrong_ca.ca_file.clear();
  wrong_ca.ca_data = other_ca.out;
  auto metrics = std::make_shared<RequestMetrics>();
  auto untrusting = MustClient(wrong_ca, metrics);
  auto got = untrusting->Get(resources::kNamespaces, "", "default");
  ASSERT_FALSE(got);
  EXPECT_TRUE(got.error().IsTransport()) << got.error().ToString();
  EXPECT_THAT(got.error().message, HasSubstr("certificate verify failed"));
  EXPECT_EQ(metrics->Count("get", 0), 1U) << "a verification failure is not retried";

  // [::ffff:127.0.0.1] reaches the same API server, whose certificate names 127.0.0.1 only.
  Config wrong_host = AdminConfig();
  const std::string url = C().apiserver_url();
  wrong_host.server = "https://[::ffff:127.0.0.1]:" + url.substr(url.rfind(':') + 1);
  auto elsewhere = MustClient(wrong_host)->Get(resources::kNamespaces, "", "default");
  ASSERT_FALSE(elsewhere);
  EXPECT_TRUE(elsewhere.error().IsTransport()) << elsewhere.error().ToString();
  EXPECT_THAT(elsewhere.error().message, HasSubstr("TLS handshake"));

  // The same server with the right CA and host answers.
  EXPECT_TRUE(Admin()->Get(resources::kNamespaces, "", "default"));
}

// The write fence is asked before every attempt of a write and never for a read; a refusal
// returns its Error unsent.
TEST(ClientTransport, TheWriteFenceStopsWritesUnsentAndLetsReadsThrough) {
  Config config = AdminConfig();
  std::atomic<bool> open{false};
  std::atomic<int> asked{0};
  config.write_fence = [&]() -> std::optional<Error> {
    ++asked;
    if (open) return std::nullopt;
    return MakeError(ErrorKind::kFenced, "fenced for the test");
  };
  auto metrics = std::make_shared<RequestMetrics>();
  auto client = MustClient(config, metrics);
  const json cm = {{"apiVersion", "v1"},
                   {"kind", "ConfigMap"},
                   {"metadata", {{"name", "kubeclient-fenced"}, {"namespace", "default"}}}};
  auto refused = client->Create(resources::kConfigMaps, cm);
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().IsFenced()) << refused.error().ToString();
  EXPECT_EQ(metrics->Count("create", 0) + metrics->Count("create", 201), 0U) << "nothing was sent";
  EXPECT_TRUE(client->Get(resources::kNamespaces, "", "default"));
  EXPECT_EQ(asked.load(), 1) << "reads do not ask the fence";
  EXPECT_TRUE(
      Admin()->Get(resources::kConfigMaps, "default", "kubeclient-fenced").error().IsNotFound());
  open = true;
  EXPECT_TRUE(client->Create(resources::kConfigMaps, cm));
  EXPECT_TRUE(client->Delete(resources::kConfigMaps, "default", "kubeclient-fenced"));
}

TEST(ClientTransport, LargeAnswersDecodeWithAndWithoutCompression) {
  // The API server gzips answers of 128 KiB and more when the client accepts gzip.
  const std::string blob(300 * 1024, 'x');
  auto admin = Admin();
  (void)admin->Delete(resources::kConfigMaps, "default", "kubeclient-large");
  ASSERT_TRUE(admin->Create(resources::kConfigMaps,
                            ConfigMap("default", "kubeclient-large", {{"blob", blob}})));
  for (const bool gzip : {true, false}) {
    Config config = AdminConfig();
    config.disable_compression = !gzip;
    auto got = MustClient(config)->Get(resources::kConfigMaps, "default", "kubeclient-large");
    ASSERT_TRUE(got) << "gzip " << gzip << ": " << got.error().ToString();
    EXPECT_EQ((*got)["data"]["blob"].get<std::string>().size(), blob.size()) << "gzip " << gzip;
  }
  EXPECT_TRUE(admin->Delete(resources::kConfigMaps, "default", "kubeclient-large"));
}

// An HTTP CONNECT proxy on a loopback port: records each CONNECT request's head (the request line
// and headers) and relays the bytes.
class ConnectProxy {
 public:
  ConnectProxy() {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(listener_, 16) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("proxy: cannot listen");
    }
    port_ = ntohs(address.sin_port);
    accept_ = std::jthread([this] { Accept(); });
  }
  ~ConnectProxy() {
    ::shutdown(listener_, SHUT_RDWR);
    accept_.join();
    relays_.clear();  // each relay ends within its poll interval
    ::close(listener_);
  }
  ConnectProxy(const ConnectProxy&) = delete;
  ConnectProxy& operator=(const ConnectProxy&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> connects() const {
    const std::lock_guard lock(mu_);
    return connects_;
  }

 private:
  void Accept() {
    while (true) {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      relays_.emplace_back([this, fd](const std::stop_token& stop) { Relay(fd, stop); });
    }
  }

  void Relay(int client, const std::stop_token& stop) {
    std::string head;
    std::array<char, 16384> buf{};
    while (head.find("\r\n\r\n") == std::string::npos) {
      const ssize_t n = ::recv(client, buf.data(), buf.size(), 0);
      if (n <= 0) return (void)::close(client);
      head.append(buf.data(), static_cast<size_t>(n));
    }
    const std::string line = head.substr(0, head.find("\r\n"));
    {
      const std::lock_guard lock(mu_);
      connects_.push_back(head.substr(0, head.find("\r\n\r\n")));
    }
    const std::string target = line.substr(8, line.find(' ', 8) - 8);  // "CONNECT host:port ..."
    const int upstream = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port =
        htons(static_cast<uint16_t>(std::stoi(target.substr(target.rfind(':') + 1))));
    ::inet_pton(AF_INET, target.substr(0, target.rfind(':')).c_str(), &address.sin_addr);
    if (::connect(upstream, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
      const std::string refused = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
      ::send(client, refused.data(), refused.size(), MSG_NOSIGNAL);
      ::close(upstream);
      return (void)::close(client);
    }
    const std::string established = "HTTP/1.1 200 Connection established\r\n\r\n";
    ::send(client, established.data(), established.size(), MSG_NOSIGNAL);
    std::array<pollfd, 2> fds{pollfd{client, POLLIN, 0}, pollfd{upstream, POLLIN, 0}};
    while (!stop.stop_requested()) {
      if (::poll(fds.data(), fds.size(), 100) < 0) break;
      bool open = true;
      for (size_t i = 0; i < fds.size() && open; ++i) {
        if (fds[i].revents == 0) continue;
        const ssize_t n = ::recv(fds[i].fd, buf.data(), buf.size(), 0);
        open =
            n > 0 && ::send(fds[1 - i].fd, buf.data(), static_cast<size_t>(n), MSG_NOSIGNAL) == n;
      }
      if (!open) break;
    }
    ::close(upstream);
    ::close(client);
  }

  int listener_ = -1;
  uint16_t port_ = 0;
  mutable std::mutex mu_;
  std::vector<std::string> connects_;  // guarded by mu_
  std::vector<std::jthread> relays_;   // touched by the accept thread only, until it is joined
  std::jthread accept_;
};

TEST(ClientTransport, ReachesTheServerThroughAnHttpConnectProxy) {
  ConnectProxy proxy;
  Config config = AdminConfig();
  config.proxy_url = "http://ops:p%40ss@" + proxy.url().substr(std::string("http://").size());
  auto client = MustClient(config);
  ASSERT_TRUE(client->Get(resources::kNamespaces, "", "default"));
  // A watch streams through the tunnel too.
  auto watched = client->Watch(resources::kNamespaces, "",
                               {.label_selector = {},
                                .field_selector = "metadata.name=default",
                                .resource_version = "0",
                                .allow_bookmarks = false,
                                .timeout_seconds = 5,
                                .send_initial_events = false},
                               [](WatchEvent&&) { return false; }, {});
  EXPECT_TRUE(watched) << watched.error().ToString();
  const auto server = C().apiserver_url().substr(C().apiserver_url().find("://") + 3);
  const auto connects = proxy.connects();
  ASSERT_FALSE(connects.empty());
  EXPECT_THAT(connects.front(), ::testing::StartsWith("CONNECT " + server + " HTTP/1.1\r\n"));
  // The proxy URL's credentials, percent-decoded, as Basic authentication: "ops:p@ss".
  EXPECT_THAT(connects.front(), HasSubstr("Proxy-Authorization: Basic b3BzOnBAc3M="));
}

TEST(ClientTransport, AProxyThatCannotReachTheServerIsATransportError) {
  ConnectProxy proxy;
  Config config = TokenConfig();
  config.server = "https://127.0.0.1:1";  // nothing listens on port 1
  config.proxy_url = proxy.url();
  config.max_retries = 0;
  auto got = MustClient(config)->Get(resources::kConfigMaps, "default", "x");
  ASSERT_FALSE(got);
  EXPECT_TRUE(got.error().IsTransport()) << got.error().ToString();
  EXPECT_THAT(got.error().message, HasSubstr("the proxy answered CONNECT with 502"));
}

}  // namespace
}  // namespace millrace::kube
