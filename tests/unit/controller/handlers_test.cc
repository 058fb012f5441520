#include "controller/handlers.h"

#include <gtest/gtest.h>

namespace millrace::controller {
namespace {

using nlohmann::json;

Object Obj(json j) { return std::make_shared<const json>(std::move(j)); }

json Task(const std::string& rv, int64_t generation) {
  return {
      {"metadata",
       {{"name", "t"}, {"namespace", "ns"}, {"resourceVersion", rv}, {"generation", generation}}},
      {"status", {{"phase", rv}}}};
}

TEST(Predicates, GenerationOrMetadataChangedDropsStatusOnlyUpdates) {
  const ObjectEvent status_only{ObjectEvent::Type::kUpdated, Obj(Task("1", 1)), Obj(Task("2", 1))};
  EXPECT_FALSE(GenerationOrMetadataChanged(status_only));
  EXPECT_TRUE(AnyChange(status_only));
  const ObjectEvent spec{ObjectEvent::Type::kUpdated, Obj(Task("1", 1)), Obj(Task("2", 2))};
  EXPECT_TRUE(GenerationOrMetadataChanged(spec));
  json deleting = Task("3", 1);
  deleting["metadata"]["deletionTimestamp"] = "2026-11-23T00:00:00Z";
  EXPECT_TRUE(
      GenerationOrMetadataChanged({ObjectEvent::Type::kUpdated, Obj(Task("1", 1)), Obj(deleting)}));
  const Object same = Obj(Task("1", 1));
  EXPECT_TRUE(GenerationOrMetadataChanged({ObjectEvent::Type::kUpdated, same, same}))
      << "a resync passes";
  EXPECT_FALSE(AnyChange({ObjectEvent::Type::kUpdated, Obj(Task("1", 1)), Obj(Task("1", 1))}));
  EXPECT_TRUE(GenerationOrMetadataChanged({ObjectEvent::Type::kAdded, nullptr, same}));
}

json Child(const std::string& ns, json refs) {
  return {{"metadata", {{"name", "c"}, {"namespace", ns}, {"ownerReferences", std::move(refs)}}}};
}

TEST(OwnerMapping, OnlyTheControllingOwnerOfTheRightGroupAndKindCounts) {
  const OwnerMatch task{.group = "millrace.io", .kind = "Task", .owner_namespaced = true};
  const json controlled = Child("ns", {{{"apiVersion", "millrace.io/v1alpha1"},
                                        {"kind", "Task"},
                                        {"name", "train"},
                                        {"controller", true}}});
  EXPECT_EQ(ControllerOwnerKey(controlled, task), "ns/train");
  const json not_controller =
      Child("ns", {{{"apiVersion", "millrace.io/v1alpha1"}, {"kind", "Task"}, {"name", "train"}}});
  EXPECT_EQ(ControllerOwnerKey(not_controller, task), std::nullopt);
  const json other_group = Child(
      "ns",
      {{{"apiVersion", "batch/v1"}, {"kind", "Task"}, {"name", "train"}, {"controller", true}}});
  EXPECT_EQ(ControllerOwnerKey(other_group, task), std::nullopt);
  const OwnerMatch zone{.group = "millrace.io", .kind = "Zone", .owner_namespaced = false};
  const json in_zone = Child("dev-alice", {{{"apiVersion", "millrace.io/v1alpha1"},
                                            {"kind", "Zone"},
                                            {"name", "dev-alice"},
                                            {"controller", true}}});
  EXPECT_EQ(ControllerOwnerKey(in_zone, zone), "dev-alice") << "cluster-scoped owner: no namespace";
}

}  // namespace
}  // namespace millrace::controller
