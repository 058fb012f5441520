#include "controller/store.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace millrace::controller {
namespace {

using nlohmann::json;

json Pod(const std::string& ns, const std::string& name, const std::string& rv = "1",
         json labels = json::object(), json owners = json::array()) {
  json pod = {
      {"apiVersion", "v1"},
      {"kind", "Pod"},
      {"metadata",
       {{"name", name}, {"resourceVersion", rv}, {"labels", labels}, {"ownerReferences", owners}}}};
  if (!ns.empty()) pod["metadata"]["namespace"] = ns;
  return pod;
}

std::vector<std::string> Keys(const std::vector<Object>& objects) {
  std::vector<std::string> keys;
  for (const auto& o : objects) keys.push_back(ObjectKey(*o));
  return keys;
}

std::vector<std::string> Keys(const std::vector<Packed>& objects) {
  std::vector<std::string> keys;
  for (const auto& o : objects) keys.push_back(o->key);
  std::sort(keys.begin(), keys.end());
  return keys;
}

TEST(StoreTest, ObjectKeyIsNamespaceSlashNameOrName) {
  EXPECT_EQ(ObjectKey(Pod("ns", "a")), "ns/a");
  EXPECT_EQ(ObjectKey(Pod("", "zone-a")), "zone-a");
  EXPECT_THROW(ObjectKey(json::object()), std::invalid_argument);
}

TEST(StoreTest, TrimDropsManagedFieldsAndLastApplied) {
  json pod = Pod("ns", "a");
  pod["metadata"]["managedFields"] = json::array({{{"manager", "kubectl"}}});
  pod["metadata"]["annotations"] = {{"kubectl.kubernetes.io/last-applied-configuration", "{...}"},
                                    {"keep", "me"}};
  Trim(pod);
  EXPECT_FALSE(pod["metadata"].contains("managedFields"));
  EXPECT_EQ(pod["metadata"]["annotations"], (json{{"keep", "me"}}));

  json only_last_applied = Pod("ns", "b");
  only_last_applied["metadata"]["annotations"] = {
      {"kubectl.kubernetes.io/last-applied-configuration", "{}"}};
  Trim(only_last_applied);
  EXPECT_FALSE(only_last_applied["metadata"].contains("annotations"));
}

TEST(StoreTest, UpsertAppliesDefaultAndCallerTrims) {
  Store store(StoreOptions{.trim = [](json& o) { o.erase("spec"); }, .indexed_labels = {}});
  json pod = Pod("ns", "a");
  pod["spec"] = {{"containers", json::array()}};
  pod["metadata"]["managedFields"] = json::array();
  store.Upsert(std::move(pod));
  const Object got = store.Get("ns/a");
  ASSERT_NE(got, nullptr);
  EXPECT_FALSE(got->contains("spec"));
  EXPECT_FALSE((*got)["metadata"].contains("managedFields"));
}

TEST(StoreTest, ReplaceTakesObjectsPreparedPageByPage) {
  Store store(StoreOptions{.trim = [](json& o) { o.erase("spec"); }, .indexed_labels = {}});
  json pod = Pod("ns", "a");
  pod["spec"] = {{"containers", json::array()}};
  std::vector<Store::Prepared> prepared;
  prepared.push_back(store.Prepare(std::move(pod)));
  prepared.push_back(store.Prepare(Pod("ns", "b")));
  EXPECT_FALSE(prepared[0].object->Unpack()->contains("spec"));  // trimmed before the list ends
  EXPECT_EQ(prepared[0].object->key, "ns/a");
  EXPECT_EQ(prepared[0].object->resource_version, "1");
  const auto result = store.Replace(std::move(prepared), "7");
  EXPECT_EQ(result.added.size(), 2u);
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.last_sync_resource_version(), "7");
  EXPECT_NE(store.Get("ns/b"), nullptr);
}

TEST(StoreTest, ReplaceKeepsTheCachedCopyOfAnObjectWhoseVersionIsUnchanged) {
  Store store;
  const json a = Pod("ns", "a", "5");
  json b = Pod("ns", "b", "6");
  const auto first = store.Replace(std::vector<json>{a, b}, "6");
  ASSERT_EQ(first.added.size(), 2u);
  const Packed cached_b = first.added[0]->key == "ns/b" ? first.added[0] : first.added[1];
  b["metadata"]["resourceVersion"] = "7";
  b["metadata"]["labels"] = {{"app", "new"}};
  const auto result = store.Replace(std::vector<json>{a, b}, "7");
  EXPECT_TRUE(result.added.empty());
  ASSERT_EQ(result.updated.size(), 1u);          // only b: a's resourceVersion is unchanged
  EXPECT_EQ(result.updated[0].first, cached_b);  // the cached copy, not an equal one
  EXPECT_EQ(result.updated[0].second->resource_version, "7");
  EXPECT_EQ(*store.Get("ns/a"), a);
  EXPECT_EQ((*store.Get("ns/b"))["metadata"]["labels"]["app"], "new");
}

TEST(StoreTest, GetReturnsTheObjectAsStoredAfterPacking) {
  Store store;
  json pod = Pod("ns", "a", "3", {{"app", "x"}});
  pod["status"] = {{"phase", "Running"}, {"restarts", 2},
                   {"ratio", 0.5},       {"ready", true},
                   {"message", nullptr}, {"list", json::array({1, "two", json::object()})}};
  store.Upsert(pod);
  EXPECT_EQ(*store.Get("ns/a"), pod);
}

TEST(StoreTest, UpsertGetDeleteReturnPreviousObjects) {
  Store store;
  auto added = store.Upsert(Pod("ns", "a", "1"));
  EXPECT_EQ(added.previous, nullptr);
  auto updated = store.Upsert(Pod("ns", "a", "2"));
  ASSERT_NE(updated.previous, nullptr);
  EXPECT_EQ((*updated.previous)["metadata"]["resourceVersion"], "1");
  EXPECT_EQ((*store.Get("ns/a"))["metadata"]["resourceVersion"], "2");
  EXPECT_EQ(store.size(), 1u);

  const Object reader_copy = store.Get("ns/a");
  const Object deleted = store.Delete("ns/a");
  ASSERT_NE(deleted, nullptr);
  EXPECT_EQ((*deleted)["metadata"]["resourceVersion"], "2");
  EXPECT_EQ(store.Get("ns/a"), nullptr);
  EXPECT_EQ(store.Delete("ns/a"), nullptr);
  EXPECT_EQ((*reader_copy)["metadata"]["name"], "a");  // readers keep their snapshot
}

TEST(StoreTest, ListIsSortedByKey) {
  Store store;
  store.Upsert(Pod("b", "x"));
  store.Upsert(Pod("a", "y"));
  store.Upsert(Pod("", "c"));
  EXPECT_EQ(Keys(store.List()), (std::vector<std::string>{"a/y", "b/x", "c"}));
}

TEST(StoreTest, IndexesFollowUpsertsAndDeletes) {
  Store store(StoreOptions{.trim = {}, .indexed_labels = {"app"}});
  const json owners = json::array({{{"uid", "u-job"}, {"controller", true}, {"kind", "Job"}},
                                   {{"uid", "u-other"}, {"kind", "Task"}}});
  store.Upsert(Pod("ns1", "a", "1", {{"app", "x"}}, owners));
  store.Upsert(Pod("ns1", "b", "1", {{"app", "y"}}));
  store.Upsert(Pod("ns2", "c", "1", {{"app", "x"}}, json::array({{{"uid", "u-other"}}})));

  EXPECT_EQ(Keys(store.ByIndex(Index::kNamespace, "ns1")),
            (std::vector<std::string>{"ns1/a", "ns1/b"}));
  EXPECT_EQ(Keys(store.ByIndex(Index::kLabel, "app=x")),
            (std::vector<std::string>{"ns1/a", "ns2/c"}));
  EXPECT_EQ(Keys(store.ByIndex(Index::kControllerOwner, "u-job")),
            (std::vector<std::string>{"ns1/a"}));
  EXPECT_TRUE(store.ByIndex(Index::kControllerOwner, "u-other").empty());

  // Relabel and delete: stale index entries must go.
  store.Upsert(Pod("ns1", "a", "2", {{"app", "y"}}));
  EXPECT_EQ(Keys(store.ByIndex(Index::kLabel, "app=x")), (std::vector<std::string>{"ns2/c"}));
  EXPECT_TRUE(store.ByIndex(Index::kControllerOwner, "u-job").empty());
  store.Delete("ns2/c");
  EXPECT_TRUE(store.ByIndex(Index::kLabel, "app=x").empty());
  EXPECT_TRUE(store.ByIndex(Index::kNamespace, "ns2").empty());
  EXPECT_EQ(Keys(store.ByIndex(Index::kLabel, "app=y")),
            (std::vector<std::string>{"ns1/a", "ns1/b"}));
}

TEST(StoreTest, ReplaceReportsAddedUpdatedAndDeletedAndSetsResourceVersion) {
  Store store(StoreOptions{.trim = {}, .indexed_labels = {"app"}});
  store.Upsert(Pod("ns", "kept", "1"));
  store.Upsert(Pod("ns", "changed", "1", {{"app", "old"}}));
  store.Upsert(Pod("ns", "gone", "1", {{"app", "old"}}));

  std::vector<json> list{Pod("ns", "kept", "1"), Pod("ns", "changed", "5", {{"app", "new"}}),
                         Pod("ns", "new", "6")};
  const auto result = store.Replace(std::move(list), "42");

  EXPECT_EQ(Keys(result.added), (std::vector<std::string>{"ns/new"}));
  ASSERT_EQ(result.updated.size(), 1u);
  EXPECT_EQ((*result.updated[0].first->Unpack())["metadata"]["resourceVersion"], "1");
  EXPECT_EQ((*result.updated[0].second->Unpack())["metadata"]["resourceVersion"], "5");
  EXPECT_EQ(Keys(result.deleted), (std::vector<std::string>{"ns/gone"}));
  EXPECT_EQ(store.last_sync_resource_version(), "42");
  EXPECT_EQ(Keys(store.List()), (std::vector<std::string>{"ns/changed", "ns/kept", "ns/new"}));
  EXPECT_TRUE(store.ByIndex(Index::kLabel, "app=old").empty());  // indexes rebuilt too
  EXPECT_EQ(Keys(store.ByIndex(Index::kLabel, "app=new")),
            (std::vector<std::string>{"ns/changed"}));
}

TEST(StoreTest, OnlyDeclaredLabelsAreIndexedAndIndexLabelsAddsMore) {
  Store store(StoreOptions{.trim = {}, .indexed_labels = {"app"}});
  store.Upsert(Pod("ns", "a", "1", {{"app", "x"}, {"tier", "web"}}));
  EXPECT_EQ(Keys(store.ByIndex(Index::kLabel, "app=x")), (std::vector<std::string>{"ns/a"}));
  EXPECT_TRUE(store.ByIndex(Index::kLabel, "tier=web").empty());
  store.IndexLabels({"tier", "app"});
  EXPECT_EQ(Keys(store.ByIndex(Index::kLabel, "tier=web")), (std::vector<std::string>{"ns/a"}));
  EXPECT_EQ(Keys(store.ByIndex(Index::kLabel, "app=x")), (std::vector<std::string>{"ns/a"}));
}

TEST(StoreTest, NamedIndexesFollowUpsertsDeletesAndRelists) {
  Store store(StoreOptions{.trim = {}, .indexed_labels = {"app"}});
  store.Upsert(Pod("ns", "before", "1", {{"tier", "web"}}));
  // Added over what is already stored; a function's empty answer leaves an object out.
  store.AddIndex("tier", [](const json& o) {
    const json& labels = o["metadata"].value("labels", json::object());
    return labels.contains("tier") ? std::vector<std::string>{labels["tier"]}
                                   : std::vector<std::string>{};
  });
  EXPECT_EQ(Keys(store.ByIndex("tier", "web")), (std::vector<std::string>{"ns/before"}));
  store.Upsert(Pod("ns", "a", "1", {{"app", "x"}, {"tier", "web"}}));
  store.Upsert(Pod("ns", "b", "1", {{"app", "x"}}));
  EXPECT_EQ(Keys(store.ByIndex("tier", "web")), (std::vector<std::string>{"ns/a", "ns/before"}));
  EXPECT_EQ(Keys(store.ByIndex(Index::kLabel, "app=x")),
            (std::vector<std::string>{"ns/a", "ns/b"}));
  store.Upsert(Pod("ns", "a", "2", {{"app", "x"}, {"tier", "db"}}));
  EXPECT_EQ(Keys(store.ByIndex("tier", "db")), (std::vector<std::string>{"ns/a"}));
  store.Delete("ns/before");
  EXPECT_TRUE(store.ByIndex("tier", "web").empty());
  store.Replace(std::vector<json>{Pod("ns", "c", "3", {{"tier", "web"}})}, "9");
  EXPECT_EQ(Keys(store.ByIndex("tier", "web")), (std::vector<std::string>{"ns/c"}));
  EXPECT_TRUE(store.ByIndex("tier", "db").empty());
  EXPECT_TRUE(store.ByIndex("no-such-index", "web").empty());
}

TEST(StoreTest, SetLastSyncResourceVersion) {
  Store store;
  EXPECT_EQ(store.last_sync_resource_version(), "");
  store.SetLastSyncResourceVersion("7");
  EXPECT_EQ(store.last_sync_resource_version(), "7");
}

TEST(StoreTest, ReadersNeverSeeHalfAReplacedList) {
  // Lists alternate between generation A (100 objects in ns "a") and B (100 in ns "b"); a
  // reader must always see exactly one whole generation.
  constexpr int kObjects = 100;
  const auto generation = [&](const std::string& ns) {
    std::vector<json> list;
    for (int i = 0; i < kObjects; ++i) list.push_back(Pod(ns, "p" + std::to_string(i)));
    return list;
  };
  Store store;
  store.Replace(generation("a"), "1");
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::atomic<int> reads{0};
  std::jthread reader([&] {
    while (!done) {
      const auto objects = store.List();
      const auto a = std::count_if(objects.begin(), objects.end(), [](const Object& o) {
        return (*o)["metadata"]["namespace"] == "a";
      });
      if (objects.size() != kObjects || (a != 0 && a != kObjects)) ++torn;
      ++reads;
    }
  });
  for (int i = 0; i < 200 || reads.load() < 50; ++i) {
    store.Replace(generation(i % 2 == 0 ? "b" : "a"), std::to_string(i));
  }
  done = true;
  reader.join();
  EXPECT_EQ(torn.load(), 0);
}

}  // namespace
}  // namespace millrace::controller
