#include "reconcilers/apply.h"

#include <gtest/gtest.h>

namespace millrace::reconcilers {
namespace {

using nlohmann::json;

TEST(Subsumes, LiveMayCarryMoreButNotDiffer) {
  const json live = {{"metadata", {{"name", "q"}, {"uid", "1"}, {"labels", {{"a", "1"}}}}},
                     {"spec", {{"hard", {{"pods", "10"}, {"cpu", "2"}}}}},
                     {"status", {{"used", {{"pods", "1"}}}}}};
  EXPECT_TRUE(
      Subsumes(live, {{"metadata", {{"name", "q"}}}, {"spec", {{"hard", {{"pods", "10"}}}}}}));
  EXPECT_FALSE(Subsumes(live, {{"spec", {{"hard", {{"pods", "11"}}}}}}));
  EXPECT_FALSE(Subsumes(live, {{"metadata", {{"labels", {{"b", "2"}}}}}}));
  EXPECT_TRUE(Subsumes(live, {{"metadata", {{"annotations", nullptr}}}}))
      << "a null in desired means absent";
}

TEST(Subsumes, ArraysMustMatchElementByElement) {
  const json live = {{"subjects", {{{"kind", "User"}, {"name", "alice"}, {"apiGroup", "rbac"}}}}};
  EXPECT_TRUE(Subsumes(live, {{"subjects", {{{"kind", "User"}, {"name", "alice"}}}}}));
  EXPECT_FALSE(Subsumes(live, {{"subjects", {{{"kind", "User"}, {"name", "mallory"}}}}}));
  EXPECT_FALSE(Subsumes(live, {{"subjects", json::array()}}));
}

TEST(WithAppliedHash, AFieldNoLongerDesiredMakesTheCachedChildStale) {
  const json with_env = {{"metadata", {{"name", "d"}}},
                         {"spec", {{"env", {{"FOO", "1"}}}, {"replicas", 1}}}};
  const json without_env = {{"metadata", {{"name", "d"}}}, {"spec", {{"replicas", 1}}}};
  // The child as the cache shows it after applying with_env: the server added its own fields.
  json cached = WithAppliedHash(with_env);
  cached["metadata"]["uid"] = "u1";
  cached["status"] = {{"readyReplicas", 1}};
  EXPECT_TRUE(Subsumes(cached, WithAppliedHash(with_env))) << "no change: no write";
  EXPECT_TRUE(Subsumes(cached, without_env)) << "why the hash is needed";
  EXPECT_FALSE(Subsumes(cached, WithAppliedHash(without_env))) << "the removal is applied";
  EXPECT_EQ(WithAppliedHash(with_env), WithAppliedHash(with_env));
}

TEST(ResourceFor, KnowsTheChildrenReconcilersMake) {
  ASSERT_NE(ResourceFor("rbac.authorization.k8s.io/v1", "RoleBinding"), nullptr);
  EXPECT_EQ(ResourceFor("rbac.authorization.k8s.io/v1", "RoleBinding")->resource, "rolebindings");
  EXPECT_EQ(ResourceFor("v1", "Namespace")->namespaced, false);
  EXPECT_EQ(ResourceFor("v1", "Gadget"), nullptr);
}

}  // namespace
}  // namespace millrace::reconcilers
