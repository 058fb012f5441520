#include "controller/event_sender.h"

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "controller/clock.h"
#include "controller/metrics.h"

namespace millrace::controller {
namespace {

using std::chrono::seconds;

EventWrite Write(std::string name, EventWrite::Kind kind = EventWrite::Kind::kCreate) {
  return EventWrite{kind, "ns", std::move(name), nlohmann::json::object()};
}

// Records what was sent; while closed, every send waits for Open().
class Gate {
 public:
  kube::Result<void> Send(const EventWrite& write) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return open_; });
    sent_.push_back(write);
    cv_.notify_all();
    return {};
  }
  void Open() {
    const std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool WaitForSent(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, seconds{10}, [&] { return sent_.size() >= n; });
  }
  std::vector<EventWrite> sent() {
    const std::lock_guard lock(mu_);
    return sent_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  std::vector<EventWrite> sent_;
};

EventSenderOptions Options(int senders, Registry* metrics = nullptr) {
  EventSenderOptions o;
  o.senders = senders;
  o.metrics = metrics;
  return o;
}

double MetricValue(const Registry& registry, const std::string& series) {
  const std::string text = registry.Expose();
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

TEST(EventSenderTest, OneEventsWritesAreSentInOrder) {
  Gate gate;
  Registry registry;
  {
    EventSender sender(Options(4, &registry), [&](const EventWrite& w) { return gate.Send(w); });
    for (int i = 0; i < 20; ++i) {
      const std::string name = "e" + std::to_string(i);
      ASSERT_TRUE(sender.Enqueue(Write(name)));
      ASSERT_TRUE(sender.Enqueue(Write(name, EventWrite::Kind::kPatch)));
    }
    gate.Open();
    ASSERT_TRUE(gate.WaitForSent(40));
  }
  std::map<std::string, std::vector<EventWrite::Kind>> by_event;
  for (const auto& w : gate.sent()) by_event[w.name].push_back(w.kind);
  ASSERT_EQ(by_event.size(), 20u);
  for (const auto& [name, kinds] : by_event) {
    EXPECT_EQ(kinds, (std::vector{EventWrite::Kind::kCreate, EventWrite::Kind::kPatch})) << name;
  }
  EXPECT_EQ(MetricValue(registry, R"(millrace_event_writes_total{result="sent"})"), 40);
  EXPECT_EQ(MetricValue(registry, "millrace_event_queue_depth"), 0);
}

TEST(EventSenderTest, DropsAndCountsWritesPastMaxQueued) {
  Gate gate;
  Registry registry;
  {
    EventSenderOptions options = Options(1, &registry);
    options.max_queued = 3;
    EventSender sender(options, [&](const EventWrite& w) { return gate.Send(w); });
    // The one sender may already hold the first write; the queue takes three more at most.
    int accepted = 0;
    for (int i = 0; i < 10; ++i) accepted += sender.Enqueue(Write("e" + std::to_string(i)));
    EXPECT_GE(accepted, 3);
    EXPECT_LE(accepted, 4);
    EXPECT_EQ(MetricValue(registry, R"(millrace_event_writes_total{result="dropped"})"),
              10 - accepted);
    gate.Open();
    ASSERT_TRUE(gate.WaitForSent(static_cast<std::size_t>(accepted)));
    EXPECT_EQ(gate.sent().front().name, "e0");  // the earliest are kept, the latest dropped
  }
}

TEST(EventSenderTest, DestructionSendsWhatIsQueued) {
  std::mutex mu;
  std::vector<std::string> sent;
  {
    EventSender sender(Options(2), [&](const EventWrite& w) -> kube::Result<void> {
      const std::lock_guard lock(mu);
      sent.push_back(w.name);
      return {};
    });
    for (int i = 0; i < 100; ++i) sender.Enqueue(Write("e" + std::to_string(i)));
  }
  EXPECT_EQ(sent.size(), 100u);
}

TEST(EventSenderTest, ShutdownSendsForTheDrainTimeoutThenDrops) {
  Registry registry;
  FakeClock clock;
  Gate gate;
  {
    EventSenderOptions options = Options(1, &registry);
    options.clock = &clock;
    options.drain_timeout = std::chrono::milliseconds{200};
    EventSender sender(options, [&](const EventWrite& w) -> kube::Result<void> {
      auto sent = gate.Send(w);
      clock.Advance(std::chrono::milliseconds{100});  // an API server that takes 100 ms a write
      return sent;
    });
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(sender.Enqueue(Write("e" + std::to_string(i))));
    sender.Shutdown();  // at 0 ms: the drain lasts until 200 ms
    EXPECT_FALSE(sender.Enqueue(Write("late")));
    gate.Open();
  }  // joined: e0 ended at 100 ms, e1 at 200 ms, and then the deadline had passed
  EXPECT_EQ(gate.sent().size(), 2u);
  EXPECT_EQ(MetricValue(registry, R"(millrace_event_writes_total{result="sent"})"), 2);
  EXPECT_EQ(MetricValue(registry, R"(millrace_event_writes_total{result="dropped"})"), 49);
  EXPECT_EQ(MetricValue(registry, "millrace_event_queue_depth"), 0);
}

TEST(EventSenderTest, FailedWritesAreCounted) {
  Registry registry;
  {
    EventSender sender(Options(1, &registry), [](const EventWrite&) -> kube::Result<void> {
      return std::unexpected(kube::Error{});
    });
    sender.Enqueue(Write("e"));
  }
  EXPECT_EQ(MetricValue(registry, R"(millrace_event_writes_total{result="failed"})"), 1);
}

}  // namespace
}  // namespace millrace::controller
