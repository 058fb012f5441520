#include "controller/events.h"

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace millrace::controller {
namespace {

using nlohmann::json;
using std::chrono::seconds;

EventSpec Spec(std::string note = "created job ns/a-1", std::string ns = "ns") {
  EventSpec e;
  e.regarding = {.api_version = "millrace.io/v1alpha1",
                 .kind = "Task",
                 .ns = std::move(ns),
                 .name = "a",
                 .uid = "u-1"};
  e.type = "Normal";
  e.reason = "ChildCreated";
  e.action = "Reconcile";
  e.note = std::move(note);
  return e;
}

class EventRecorderTest : public ::testing::Test {
 protected:
  EventRecorderOptions Options() {
    EventRecorderOptions o;
    o.reporting_instance = "millrace-0";
    o.clock = &clock_;
    return o;
  }

  // 2023-11-14T22:13:20Z
  FakeClock clock_{WallTime{seconds{1'700'000'000}}};
  std::vector<EventWrite> writes_;
  EventRecorder recorder_{Options(), [this](EventWrite w) { writes_.push_back(std::move(w)); }};
};

TEST(EventsTest, FormatMicroTime) {
  const WallTime t = WallTime{seconds{1'700'000'000}} + std::chrono::microseconds{1234};
  EXPECT_EQ(FormatMicroTime(t), "2023-11-14T22:13:20.001234Z");
}

TEST_F(EventRecorderTest, FirstOccurrenceCreatesAnEventsV1Event) {
  recorder_.Record(Spec());
  ASSERT_EQ(writes_.size(), 1u);
  const EventWrite& w = writes_[0];
  EXPECT_EQ(w.kind, EventWrite::Kind::kCreate);
  EXPECT_EQ(w.ns, "ns");
  EXPECT_TRUE(w.name.starts_with("a."));
  const json want = {
      {"apiVersion", "events.k8s.io/v1"},
      {"kind", "Event"},
      {"metadata", {{"name", w.name}, {"namespace", "ns"}}},
      {"eventTime", "2023-11-14T23:13:20.000000Z"},  // the fake clock starts 1h in
      {"reportingController", "millrace.io/controller"},
      {"reportingInstance", "millrace-0"},
      {"regarding",
       {{"apiVersion", "millrace.io/v1alpha1"},
        {"kind", "Task"},
        {"namespace", "ns"},
        {"name", "a"},
        {"uid", "u-1"}}},
      {"type", "Normal"},
      {"reason", "ChildCreated"},
      {"action", "Reconcile"},
      {"note", "created job ns/a-1"},
  };
  EXPECT_EQ(w.body, want);
}

TEST_F(EventRecorderTest, RepeatsJoinASeriesPatchedAtMostEveryInterval) {
  recorder_.Record(Spec());
  clock_.Advance(seconds{1});
  recorder_.Record(Spec());
  clock_.Advance(seconds{1});
  recorder_.Record(Spec());
  ASSERT_EQ(writes_.size(), 1u);  // folded, not yet sent

  recorder_.Flush();
  ASSERT_EQ(writes_.size(), 2u);
  EXPECT_EQ(writes_[1].kind, EventWrite::Kind::kPatch);
  EXPECT_EQ(writes_[1].name, writes_[0].name);
  EXPECT_EQ(writes_[1].ns, "ns");
  EXPECT_EQ(
      writes_[1].body,
      (json{{"series", {{"count", 3}, {"lastObservedTime", "2023-11-14T23:13:22.000000Z"}}}}));

  recorder_.Flush();  // nothing new
  EXPECT_EQ(writes_.size(), 2u);

  clock_.Advance(seconds{30});
  recorder_.Record(Spec());  // a patch interval since the last patch: sent at once
  ASSERT_EQ(writes_.size(), 3u);
  EXPECT_EQ(writes_[2].body["series"]["count"], 4);
}

TEST_F(EventRecorderTest, DifferentNoteOrObjectIsANewEvent) {
  recorder_.Record(Spec("one"));
  recorder_.Record(Spec("two"));
  recorder_.Record(Spec("one", "other-ns"));
  ASSERT_EQ(writes_.size(), 3u);
  for (const auto& w : writes_) EXPECT_EQ(w.kind, EventWrite::Kind::kCreate);
}

TEST_F(EventRecorderTest, RepeatAfterTheSeriesWindowStartsANewEvent) {
  recorder_.Record(Spec());
  clock_.Advance(std::chrono::minutes{7});
  recorder_.Record(Spec());
  ASSERT_EQ(writes_.size(), 2u);
  EXPECT_EQ(writes_[1].kind, EventWrite::Kind::kCreate);
  EXPECT_NE(writes_[1].name, writes_[0].name);
}

TEST_F(EventRecorderTest, FlushForgetsExpiredSeriesAfterSendingTheirLastCount) {
  recorder_.Record(Spec());
  recorder_.Record(Spec());
  clock_.Advance(std::chrono::minutes{7});
  recorder_.Flush();
  ASSERT_EQ(writes_.size(), 2u);
  EXPECT_EQ(writes_[1].body["series"]["count"], 2);
  recorder_.Flush();
  EXPECT_EQ(writes_.size(), 2u);
}

TEST_F(EventRecorderTest, ClusterScopedObjectsGetEventsInDefault) {
  recorder_.Record(Spec("zone ready", ""));
  ASSERT_EQ(writes_.size(), 1u);
  EXPECT_EQ(writes_[0].ns, "default");
  EXPECT_FALSE(writes_[0].body["regarding"].contains("namespace"));
}

TEST_F(EventRecorderTest, NoteIsCutTo1024BytesOnACodePointBoundary) {
  std::string note(1023, 'x');
  note += "\xC3\xA9";  // é straddles the limit
  note += "tail";
  recorder_.Record(Spec(note));
  const std::string got = writes_.at(0).body["note"];
  EXPECT_EQ(got, std::string(1023, 'x'));
}

TEST_F(EventRecorderTest, ForgetsTheLeastRecentlyObservedSeriesPastMaxSeries) {
  EventRecorderOptions options = Options();
  options.max_series = 2;
  std::vector<EventWrite> writes;
  EventRecorder recorder(options, [&](EventWrite w) { writes.push_back(std::move(w)); });
  recorder.Record(Spec("one"));
  recorder.Record(Spec("two"));
  recorder.Record(Spec("one"));  // "one" is now the most recent; folded
  ASSERT_EQ(writes.size(), 2u);

  recorder.Record(Spec("three"));  // forgets "two", the least recently observed
  ASSERT_EQ(writes.size(), 3u);
  recorder.Record(Spec("one"));  // still remembered: folded into its series
  ASSERT_EQ(writes.size(), 3u);
  recorder.Record(Spec("two"));  // forgotten: a new Event
  ASSERT_EQ(writes.size(), 4u);
  EXPECT_EQ(writes[3].kind, EventWrite::Kind::kCreate);
  EXPECT_EQ(writes[3].body["note"], "two");

  // "three" went for "two"; now "one" goes for "four", and its two folded repeats are sent.
  recorder.Record(Spec("four"));
  ASSERT_EQ(writes.size(), 6u);
  EXPECT_EQ(writes[4].body["note"], "four");
  EXPECT_EQ(writes[5].kind, EventWrite::Kind::kPatch);
  EXPECT_EQ(writes[5].name, writes[0].name);
  EXPECT_EQ(writes[5].body["series"]["count"], 3);
}

}  // namespace
}  // namespace millrace::controller
