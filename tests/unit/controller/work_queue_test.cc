#include "controller/work_queue.h"

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace millrace::controller {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

WorkQueueOptions Options(std::string name, Clock* clock = nullptr, Registry* registry = nullptr) {
  WorkQueueOptions options;
  options.name = std::move(name);
  options.clock = clock;
  options.metrics = registry;
  return options;
}

class WorkQueueTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  Registry registry_;
  WorkQueue queue_{Options("q", &clock_, &registry_)};
};

TEST_F(WorkQueueTest, AddDeduplicatesQueuedKeys) {
  queue_.Add("ns/a");
  queue_.Add("ns/a");
  queue_.Add("ns/b");
  queue_.Add("ns/a");
  EXPECT_EQ(queue_.Len(), 2u);
  EXPECT_EQ(queue_.Get(), "ns/a");
  EXPECT_EQ(queue_.Get(), "ns/b");
  EXPECT_EQ(queue_.Len(), 0u);
}

TEST_F(WorkQueueTest, KeyAddedWhileProcessingIsRequeuedOnlyAfterDone) {
  queue_.Add("a");
  ASSERT_EQ(queue_.Get(), "a");
  queue_.Add("a");
  queue_.Add("a");
  queue_.Add("b");
  EXPECT_EQ(queue_.Len(), 1u);   // only "b": "a" is still being processed
  EXPECT_EQ(queue_.Get(), "b");  // a second worker never gets "a"
  queue_.Done("a");
  EXPECT_EQ(queue_.Len(), 1u);
  EXPECT_EQ(queue_.Get(), "a");
  queue_.Done("a");
  queue_.Done("b");
  EXPECT_EQ(queue_.Len(), 0u);  // the re-adds collapsed into one
}

TEST_F(WorkQueueTest, DoneWithoutReAddDoesNotRequeue) {
  queue_.Add("a");
  ASSERT_EQ(queue_.Get(), "a");
  queue_.Done("a");
  EXPECT_EQ(queue_.Len(), 0u);
}

TEST_F(WorkQueueTest, AddAfterWaitsForTheDueTime) {
  queue_.AddAfter("a", seconds{10});
  EXPECT_EQ(queue_.Len(), 0u);
  clock_.Advance(seconds{9});
  EXPECT_EQ(queue_.Len(), 0u);
  clock_.Advance(seconds{1});
  EXPECT_EQ(queue_.Len(), 1u);
  EXPECT_EQ(queue_.Get(), "a");
}

TEST_F(WorkQueueTest, EarlierDueTimeWins) {
  queue_.AddAfter("a", seconds{10});
  queue_.AddAfter("a", seconds{2});
  queue_.AddAfter("b", seconds{2});
  queue_.AddAfter("b", seconds{10});
  clock_.Advance(seconds{2});
  EXPECT_EQ(queue_.Len(), 2u);
  ASSERT_EQ(queue_.Get(), "a");
  ASSERT_EQ(queue_.Get(), "b");
  clock_.Advance(seconds{20});
  EXPECT_EQ(queue_.Len(), 0u);  // the later due times were dropped, not kept as second entries
}

TEST_F(WorkQueueTest, AddAfterZeroIsAnImmediateAdd) {
  queue_.AddAfter("a", Duration::zero());
  EXPECT_EQ(queue_.Len(), 1u);
}

TEST_F(WorkQueueTest, DelayedKeyAlreadyQueuedIsNotDuplicated) {
  queue_.Add("a");
  queue_.AddAfter("a", seconds{1});
  clock_.Advance(seconds{1});
  EXPECT_EQ(queue_.Len(), 1u);
}

TEST_F(WorkQueueTest, BlockedGetIsWokenByTheTimerWhenTimeAdvances) {
  auto got = std::async(std::launch::async, [&] { return queue_.Get(); });
  queue_.AddAfter("a", seconds{5});
  ASSERT_TRUE(clock_.WaitForSleeper(clock_.Now() + seconds{5}));  // the timer sleeps till due
  clock_.Advance(seconds{5});
  EXPECT_EQ(got.get(), "a");
}

TEST_F(WorkQueueTest, AnEarlierDelayedKeyInterruptsTheTimersLongerSleep) {
  auto got = std::async(std::launch::async, [&] { return queue_.Get(); });
  queue_.AddAfter("late", seconds{100});
  ASSERT_TRUE(clock_.WaitForSleeper(clock_.Now() + seconds{100}));
  queue_.AddAfter("early", seconds{1});
  clock_.Advance(seconds{1});
  EXPECT_EQ(got.get(), "early");
}

TEST_F(WorkQueueTest, RateLimitedAddsBackOffPerKeyUntilForget) {
  queue_.AddRateLimited("a");
  EXPECT_EQ(queue_.NumRequeues("a"), 1);
  clock_.Advance(milliseconds{4});
  EXPECT_EQ(queue_.Len(), 0u);
  clock_.Advance(milliseconds{1});
  ASSERT_EQ(queue_.Get(), "a");
  queue_.Done("a");

  queue_.AddRateLimited("a");  // second failure: 10ms
  clock_.Advance(milliseconds{9});
  EXPECT_EQ(queue_.Len(), 0u);
  clock_.Advance(milliseconds{1});
  ASSERT_EQ(queue_.Get(), "a");
  queue_.Done("a");

  queue_.Forget("a");
  EXPECT_EQ(queue_.NumRequeues("a"), 0);
  queue_.AddRateLimited("a");
  clock_.Advance(milliseconds{5});
  EXPECT_EQ(queue_.Len(), 1u);
}

TEST_F(WorkQueueTest, ShutDownWakesGettersAndStopsHandingOutWork) {
  auto got = std::async(std::launch::async, [&] { return queue_.Get(); });
  queue_.ShutDown();
  EXPECT_EQ(got.get(), std::nullopt);
  queue_.Add("a");
  EXPECT_EQ(queue_.Len(), 0u);
  EXPECT_EQ(queue_.Get(), std::nullopt);
  EXPECT_TRUE(queue_.shutting_down());
}

TEST_F(WorkQueueTest, ShutDownDropsQueuedAndDelayedKeys) {
  queue_.Add("a");
  queue_.AddAfter("b", seconds{1});
  queue_.ShutDown();
  clock_.Advance(seconds{1});
  EXPECT_EQ(queue_.Get(), std::nullopt);
}

TEST_F(WorkQueueTest, ShutDownWithDrainWaitsForInFlightKeys) {
  queue_.Add("a");
  queue_.Add("b");
  ASSERT_EQ(queue_.Get(), "a");
  ASSERT_EQ(queue_.Get(), "b");
  std::atomic<bool> drained{false};
  std::jthread drainer([&] {
    queue_.ShutDownWithDrain();
    drained = true;
  });
  while (!queue_.shutting_down()) std::this_thread::yield();
  queue_.Add("a");  // ignored: shutting down
  queue_.Done("a");
  EXPECT_FALSE(drained.load());  // "b" is still in flight
  queue_.Done("b");
  drainer.join();
  EXPECT_TRUE(drained.load());
  EXPECT_EQ(queue_.Get(), std::nullopt);
}

TEST_F(WorkQueueTest, ShutDownWithDrainWithNothingInFlightReturns) {
  queue_.ShutDownWithDrain();
  EXPECT_TRUE(queue_.shutting_down());
}

TEST_F(WorkQueueTest, WaitIdleReturnsOnceNothingIsQueuedOrInFlight) {
  EXPECT_TRUE(queue_.WaitIdle({}));  // empty: idle at once
  queue_.AddAfter("later", seconds{60});
  EXPECT_TRUE(queue_.WaitIdle({}));  // a delayed key not yet due does not count
  queue_.Add("a");
  queue_.Add("b");
  ASSERT_EQ(queue_.Get(), "a");
  std::promise<bool> idle;
  auto became_idle = idle.get_future();
  std::jthread waiter([&] { idle.set_value(queue_.WaitIdle({})); });
  queue_.Done("a");  // "b" is still queued
  EXPECT_EQ(became_idle.wait_for(milliseconds{50}), std::future_status::timeout);
  ASSERT_EQ(queue_.Get(), "b");
  queue_.Done("b");
  EXPECT_TRUE(became_idle.get());
}

TEST_F(WorkQueueTest, WaitIdleIsFalseWhenStoppedOrShutDown) {
  queue_.Add("a");
  std::stop_source stop;
  std::promise<bool> idle;
  auto result = idle.get_future();
  std::jthread waiter([&] { idle.set_value(queue_.WaitIdle(stop.get_token())); });
  stop.request_stop();
  EXPECT_FALSE(result.get());
  queue_.ShutDown();
  EXPECT_FALSE(queue_.WaitIdle({}));
}

TEST_F(WorkQueueTest, MetricsTrackDepthAddsRetriesAndDurations) {
  queue_.Add("a");
  queue_.Add("a");
  queue_.Add("b");
  queue_.AddAfter("c", seconds{1});
  queue_.AddRateLimited("d");
  clock_.Advance(seconds{2});
  ASSERT_EQ(queue_.Get(), "a");  // waited 2s in the queue
  clock_.Advance(seconds{3});
  queue_.Done("a");  // worked 3s
  ASSERT_EQ(queue_.Get(), "b");
  clock_.Advance(seconds{4});  // "b" in flight for 4s

  const std::string text = registry_.Expose();
  EXPECT_THAT(text, HasSubstr("workqueue_adds_total{name=\"q\"} 4\n"));  // a, b, c, d
  EXPECT_THAT(text, HasSubstr("workqueue_retries_total{name=\"q\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("workqueue_depth{name=\"q\"} 2\n"));                       // c and d
  EXPECT_THAT(text, HasSubstr("workqueue_queue_duration_seconds_sum{name=\"q\"} 7\n"));  // 2 + 5
  EXPECT_THAT(text, HasSubstr("workqueue_queue_duration_seconds_count{name=\"q\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("workqueue_work_duration_seconds_sum{name=\"q\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("workqueue_unfinished_work_seconds{name=\"q\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("workqueue_longest_running_processor_seconds{name=\"q\"} 4\n"));
}

TEST(WorkQueueStressTest, NoKeyIsEverHeldByTwoWorkersAndTheLastAddIsProcessed) {
  WorkQueue queue(Options("stress"));
  constexpr int kKeys = 8;
  constexpr int kWorkers = 4;
  constexpr int kAddsPerProducer = 5000;
  std::mutex mu;
  std::set<std::string> in_flight;
  std::atomic<int> overlaps{0};
  std::atomic<int> processed{0};
  std::vector<std::atomic<int>> last_seen(kKeys);  // generation seen by the latest reconcile
  std::vector<std::atomic<int>> generation(kKeys);
  {
    std::vector<std::jthread> workers;
    for (int w = 0; w < kWorkers; ++w) {
      workers.emplace_back([&] {
        while (auto key = queue.Get()) {
          {
            std::lock_guard lock(mu);
            if (!in_flight.insert(*key).second) ++overlaps;
          }
          const auto k = static_cast<std::size_t>(std::stoi(*key));
          last_seen[k] = generation[k].load();
          ++processed;
          {
            std::lock_guard lock(mu);
            in_flight.erase(*key);
          }
          queue.Done(*key);
        }
      });
    }
    {
      std::vector<std::jthread> producers;
      for (int p = 0; p < 2; ++p) {
        producers.emplace_back([&] {
          for (int i = 0; i < kAddsPerProducer; ++i) {
            const auto k = static_cast<std::size_t>(i % kKeys);
            ++generation[k];
            queue.Add(std::to_string(k));
          }
        });
      }
    }
    // Every key's final generation must be observed by a reconcile that started after it.
    for (std::size_t k = 0; k < kKeys; ++k) {
      while (last_seen[k].load() != generation[k].load()) std::this_thread::yield();
    }
    queue.ShutDownWithDrain();
  }
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_GT(processed.load(), 0);
}

}  // namespace
}  // namespace millrace::controller
