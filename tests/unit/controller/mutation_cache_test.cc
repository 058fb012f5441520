#include "controller/mutation_cache.h"

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "controller/store.h"

namespace millrace::controller {
namespace {

using nlohmann::json;

json Task(const std::string& rv, const std::string& phase = "") {
  json task = {{"apiVersion", "millrace.io/v1alpha1"},
               {"kind", "Task"},
               {"metadata", {{"namespace", "ns"}, {"name", "t"}, {"resourceVersion", rv}}}};
  if (!phase.empty()) task["status"] = {{"phase", phase}};
  return task;
}

std::string PhaseOf(const Object& object) {
  return object ? object->value("status", json::object()).value("phase", "") : "<none>";
}

ObjectEvent Updated(const Store::Change& change) {
  return {ObjectEvent::Type::kUpdated, change.previous, change.current};
}

TEST(MutationCacheTest, ServesTheWrittenObjectUntilTheStoreMovesOn) {
  Store store;
  MutationCache written(store);
  const EventHandler observe = written.Observer();
  store.Upsert(Task("1"));

  json answer = Task("2", "Pending");
  answer["metadata"]["managedFields"] = json::array({{{"manager", "millrace"}}});
  written.Written("ns/t", "1", answer);
  ASSERT_EQ(written.size(), 1u);
  const Object newest = written.Newest("ns/t", store.Get("ns/t"));
  EXPECT_EQ(PhaseOf(newest), "Pending");
  EXPECT_FALSE(newest->at("metadata").contains("managedFields")) << "trimmed as the store trims";

  // A resync delivers the same resourceVersion again: the store has not caught up yet.
  const Object same = store.Get("ns/t");
  observe({ObjectEvent::Type::kUpdated, same, same});
  EXPECT_EQ(PhaseOf(written.Newest("ns/t", store.Get("ns/t"))), "Pending");

  // The watch event of the write (or anything newer) arrives: the store's copy is served again.
  observe(Updated(store.Upsert(Task("3", "Running"))));
  EXPECT_EQ(written.size(), 0u);
  EXPECT_EQ(PhaseOf(written.Newest("ns/t", store.Get("ns/t"))), "Running");
}

TEST(MutationCacheTest, NewestForgetsAnEntryOnceTheCachedCopyIsNewer) {
  Store store;
  MutationCache written(store);  // no Observer() registered: Newest() alone must not serve it
  store.Upsert(Task("1"));
  written.Written("ns/t", "1", Task("2", "Pending"));
  store.Upsert(Task("2", "Pending"));
  EXPECT_EQ(PhaseOf(written.Newest("ns/t", store.Get("ns/t"))), "Pending");
  EXPECT_EQ(written.size(), 0u);
}

TEST(MutationCacheTest, RecordsNothingWhenTheWatchEventCameFirstOrTheWriteChangedNothing) {
  Store store;
  MutationCache written(store);
  store.Upsert(Task("1"));
  store.Upsert(Task("2", "Pending"));  // the watch delivered the write before its answer
  written.Written("ns/t", "1", Task("2", "Pending"));
  EXPECT_EQ(written.size(), 0u);

  written.Written("ns/t", "2", Task("2", "Pending"));  // a no-op write keeps its resourceVersion
  EXPECT_EQ(written.size(), 0u);
  written.Written("ns/t", "", Task("3", "Running"));  // nothing cached to lay it over
  EXPECT_EQ(written.size(), 0u);
}

TEST(MutationCacheTest, ADeletionDropsTheEntry) {
  Store store;
  MutationCache written(store);
  const EventHandler observe = written.Observer();
  store.Upsert(Task("1"));
  written.Written("ns/t", "1", Task("2", "Pending"));
  const Object last = store.Delete("ns/t");
  observe({ObjectEvent::Type::kDeleted, last, last});
  EXPECT_EQ(written.size(), 0u);
  EXPECT_EQ(written.Newest("ns/t", store.Get("ns/t")), nullptr);

  store.Upsert(Task("4"));
  written.Written("ns/t", "4", Task("5", "Pending"));
  EXPECT_EQ(written.Newest("ns/t", nullptr), nullptr) << "gone from the store: gone";
  EXPECT_EQ(written.size(), 0u);
}

TEST(MutationCacheTest, AWriteOverAnEarlierOneNotYetInTheStoreReplacesIt) {
  Store store;
  MutationCache written(store);
  const EventHandler observe = written.Observer();
  store.Upsert(Task("1"));
  written.Written("ns/t", "1", Task("2", "Pending"));
  // The next reconcile read resourceVersion 2 from the cache above and wrote again.
  ASSERT_EQ(written.Newest("ns/t", store.Get("ns/t"))->at("metadata")["resourceVersion"], "2");
  written.Written("ns/t", "2", Task("3", "Running"));
  EXPECT_EQ(PhaseOf(written.Newest("ns/t", store.Get("ns/t"))), "Running");

  // The watch brings 2: the store has moved on, and is read again until it shows 3.
  observe(Updated(store.Upsert(Task("2", "Pending"))));
  EXPECT_EQ(PhaseOf(written.Newest("ns/t", store.Get("ns/t"))), "Pending");
  EXPECT_EQ(written.size(), 0u);
}

TEST(MutationCacheTest, CopiesShareOneCache) {
  Store store;
  MutationCache written(store);
  const MutationCache copy = written;
  store.Upsert(Task("1"));
  written.Written("ns/t", "1", Task("2", "Pending"));
  EXPECT_EQ(PhaseOf(copy.Newest("ns/t", store.Get("ns/t"))), "Pending");
}

}  // namespace
}  // namespace millrace::controller
