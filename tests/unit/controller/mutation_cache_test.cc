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

// A store holding ns/t at resourceVersion 1 and a MutationCache over it. Tests call observe()
// where the informer would call the handler; one test leaves it out on purpose.
class MutationCacheTest : public ::testing::Test {
 protected:
  MutationCacheTest() { store.Upsert(Task("1")); }

  Object Newest() const { return written.Newest("ns/t", store.Get("ns/t")); }

  Store store;
  MutationCache written{store};
  EventHandler observe = written.Observer();
};

TEST_F(MutationCacheTest, ServesTheWrittenObjectUntilTheStoreMovesOn) {
  json answer = Task("2", "Pending");
  answer["metadata"]["managedFields"] = json::array({{{"manager", "millrace"}}});
  written.Written("1", answer);
  ASSERT_EQ(written.size(), 1u);
  const Object newest = Newest();
  EXPECT_EQ(PhaseOf(newest), "Pending");
  EXPECT_FALSE(newest->at("metadata").contains("managedFields")) << "trimmed as the store trims";

  // A resync delivers the same resourceVersion again: the store has not caught up yet.
  const Object same = store.Get("ns/t");
  observe({ObjectEvent::Type::kUpdated, same, same});
  EXPECT_EQ(PhaseOf(Newest()), "Pending");

  // The watch event of the write (or anything newer) arrives: the store's copy is served again.
  observe(Updated(store.Upsert(Task("3", "Running"))));
  EXPECT_EQ(written.size(), 0u);
  EXPECT_EQ(PhaseOf(Newest()), "Running");
}

TEST_F(MutationCacheTest, NewestForgetsAnEntryOnceTheCachedCopyIsNewer) {
  // No observe(): Newest() alone must stop serving it.
  written.Written("1", Task("2", "Pending"));
  store.Upsert(Task("2", "Pending"));
  EXPECT_EQ(PhaseOf(Newest()), "Pending");
  EXPECT_EQ(written.size(), 0u);
}

TEST_F(MutationCacheTest, RecordsNothingWhenTheWatchEventCameFirstOrTheWriteChangedNothing) {
  store.Upsert(Task("2", "Pending"));  // the watch delivered the write before its answer
  written.Written("1", Task("2", "Pending"));
  EXPECT_EQ(written.size(), 0u);

  written.Written("2", Task("2", "Pending"));  // a no-op write keeps its resourceVersion
  EXPECT_EQ(written.size(), 0u);
  written.Written("", Task("3", "Running"));  // nothing cached to lay it over
  EXPECT_EQ(written.size(), 0u);
}

TEST_F(MutationCacheTest, ADeletionDropsTheEntry) {
  written.Written("1", Task("2", "Pending"));
  const Object last = store.Delete("ns/t");
  observe({ObjectEvent::Type::kDeleted, last, last});
  EXPECT_EQ(written.size(), 0u);
  EXPECT_EQ(Newest(), nullptr);

  store.Upsert(Task("4"));
  written.Written("4", Task("5", "Pending"));
  EXPECT_EQ(written.Newest("ns/t", nullptr), nullptr) << "gone from the store: gone";
  EXPECT_EQ(written.size(), 0u);
}

TEST_F(MutationCacheTest, AWriteOverAnEarlierOneNotYetInTheStoreReplacesIt) {
  written.Written("1", Task("2", "Pending"));
  // The next reconcile read resourceVersion 2 from the cache above and wrote again.
  ASSERT_EQ(Newest()->at("metadata")["resourceVersion"], "2");
  written.Written("2", Task("3", "Running"));
  EXPECT_EQ(PhaseOf(Newest()), "Running");

  // The watch brings 2: the store has moved on, and is read again until it shows 3.
  observe(Updated(store.Upsert(Task("2", "Pending"))));
  EXPECT_EQ(PhaseOf(Newest()), "Pending");
  EXPECT_EQ(written.size(), 0u);
}

TEST_F(MutationCacheTest, CopiesShareOneCache) {
  const MutationCache copy = written;
  written.Written("1", Task("2", "Pending"));
  EXPECT_EQ(PhaseOf(copy.Newest("ns/t", store.Get("ns/t"))), "Pending");
}

}  // namespace
}  // namespace millrace::controller
