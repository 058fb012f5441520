// How reconcilers write, against a real API server, in-process: a field the desired object no
// longer sets is removed from the child (the applied-hash annotation makes the apply happen), and
// a status patch planned from an older resourceVersion is refused with a Conflict instead of
// overwriting what another writer wrote meanwhile; a delete carries the uid observed, so it never
// removes a newer child of the same name.
#include "reconcilers/apply.h"

#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controller/mutation_cache.h"
#include "controller/store.h"
#include "crds/meta.h"
#include "kubeclient/config.h"
#include "tests/support/client.h"
#include "tests/support/cluster.h"

namespace millrace::reconcilers {
namespace {

using millrace::testing::C;
using millrace::testing::Cluster;
using nlohmann::json;

std::unique_ptr<kube::Client> Client() { return millrace::testing::ClusterClient(); }

TEST(ApplyIfChanged, AFieldNoLongerDesiredIsRemovedFromTheChild) {
  const std::string ns = C().CreateNamespace();
  auto client = Client();
  const json with_b = {{"apiVersion", "v1"},
                       {"kind", "ConfigMap"},
                       {"metadata", {{"name", "child"}, {"namespace", ns}}},
                       {"data", {{"a", "1"}, {"b", "2"}}}};
  auto applied = ApplyIfChanged(*client, kube::resources::kConfigMaps, with_b, nullptr);
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_TRUE(*applied);
  auto cached = client->Get(kube::resources::kConfigMaps, ns, "child");
  ASSERT_TRUE(cached);
  const controller::Object as_cached = std::make_shared<const json>(*cached);

  // The same desired object again: nothing to write.
  applied = ApplyIfChanged(*client, kube::resources::kConfigMaps, with_b, as_cached);
  ASSERT_TRUE(applied);
  EXPECT_FALSE(*applied);

  json without_b = with_b;
  without_b["data"].erase("b");
  applied = ApplyIfChanged(*client, kube::resources::kConfigMaps, without_b, as_cached);
  ASSERT_TRUE(applied) << applied.error().ToString();
  EXPECT_TRUE(*applied) << "the cached child still has b, yet the apply must happen";
  auto live = client->Get(kube::resources::kConfigMaps, ns, "child");
  ASSERT_TRUE(live);
  EXPECT_EQ((*live)["data"], (json{{"a", "1"}})) << live->dump(2);
}

TEST(PatchStatusIfChanged, AStatusPlannedFromAnOlderResourceVersionIsAConflict) {
  C().InstallCrds();
  const std::string ns = C().CreateNamespace();
  auto client = Client();
  const json task = {{"apiVersion", "millrace.io/v1alpha1"},
                     {"kind", "Task"},
                     {"metadata", {{"name", "written-twice"}, {"namespace", ns}}},
                     {"spec", {{"role", "Spout"}, {"image", "busybox"}}}};
  auto created = client->Create(resources::kTasks, task);
  ASSERT_TRUE(created) << created.error().ToString();
  api::ObjectMeta read;
  read.name = "written-twice";
  read.namespace_ = ns;
  read.resource_version = (*created)["metadata"]["resourceVersion"];

  // Another writer moves the object on after we read it.
  ASSERT_TRUE(client->PatchStatus(resources::kTasks, ns, "written-twice",
                                  {{"status", {{"phase", "Running"}}}}));
  controller::Store store;
  controller::MutationCache written(store);
  const auto stale = PatchStatusIfChanged(*client, resources::kTasks, read,
                                          {{"status", {{"phase", "Pending"}}}}, written);
  ASSERT_FALSE(stale.has_value()) << "the older plan overwrote the newer status";
  EXPECT_TRUE(stale.error().IsConflict()) << stale.error().ToString();
  auto live = client->Get(resources::kTasks, ns, "written-twice");
  ASSERT_TRUE(live);
  EXPECT_EQ((*live)["status"]["phase"], "Running");

  read.resource_version = (*live)["metadata"]["resourceVersion"];
  EXPECT_TRUE(PatchStatusIfChanged(*client, resources::kTasks, read,
                                   {{"status", {{"phase", "Pending"}}}}, written)
                  .has_value());
}

// A delete planned from an older observation (held on a slow connection, say) lands after the
// child was replaced by a newer one of the same name: the uid precondition refuses it.
TEST(DeleteChildren, ADeleteOfAnOlderChildNeverRemovesANewerOneOfTheSameName) {
  const std::string ns = C().CreateNamespace();
  auto client = Client();
  const json limit_range = {
      {"apiVersion", "v1"},
      {"kind", "LimitRange"},
      {"metadata", {{"name", "child"}, {"namespace", ns}}},
      {"spec", {{"limits", json::array({{{"type", "Container"}, {"default", {{"cpu", "1"}}}}})}}}};
  auto first = client->Create(kube::resources::kLimitRanges, limit_range);
  ASSERT_TRUE(first) << first.error().ToString();
  const ChildRef older{"v1", "LimitRange", ns, "child",
                       (*first)["metadata"]["uid"].get<std::string>()};
  ASSERT_TRUE(client->Delete(kube::resources::kLimitRanges, ns, "child"));
  auto second = client->Create(kube::resources::kLimitRanges, limit_range);
  ASSERT_TRUE(second) << second.error().ToString();

  const auto stale = DeleteChildren(*client, {older});
  ASSERT_FALSE(stale.has_value()) << "the delete of the older child removed the newer one";
  EXPECT_TRUE(stale.error().error.IsConflict()) << stale.error().error.ToString();
  auto live = client->Get(kube::resources::kLimitRanges, ns, "child");
  ASSERT_TRUE(live) << live.error().ToString();
  EXPECT_EQ((*live)["metadata"]["uid"], (*second)["metadata"]["uid"]);

  const ChildRef newer{"v1", "LimitRange", ns, "child",
                       (*second)["metadata"]["uid"].get<std::string>()};
  ASSERT_TRUE(DeleteChildren(*client, {newer}).has_value());
  EXPECT_TRUE(client->Get(kube::resources::kLimitRanges, ns, "child").error().IsNotFound());
}

}  // namespace
}  // namespace millrace::reconcilers
