#include "controller/work_queue.h"

#include <algorithm>
#include <chrono>
#include <utility>

namespace millrace::controller {
namespace {

double Seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

WorkQueue::Metrics WorkQueue::MakeMetrics(Registry& registry, const std::string& name) {
  // client-go's buckets for queue latency and work duration: 10ns .. 1000s.
  const std::vector<double> buckets = ExponentialBuckets(10e-9, 10, 12);
  // client-go's workqueue metrics, each labelled with the queue's name.
  const auto gauge = [&](std::string_view metric, std::string_view help) -> auto& {
    return registry.AddGauge(std::string(metric), std::string(help), {"name"}).WithLabels({name});
  };
  const auto counter = [&](std::string_view metric, std::string_view help) -> auto& {
    return registry.AddCounter(std::string(metric), std::string(help), {"name"}).WithLabels({name});
  };
  const auto histogram = [&](std::string_view metric, std::string_view help) -> auto& {
    return registry.AddHistogram(std::string(metric), std::string(help), {"name"}, buckets)
        .WithLabels({name});
  };
  return Metrics{
      .depth = gauge("workqueue_depth", "Current depth of workqueue"),
      .adds = counter("workqueue_adds_total", "Total number of adds handled by workqueue"),
      .retries = counter("workqueue_retries_total", "Total number of retries handled by workqueue"),
      .queue_duration = histogram("workqueue_queue_duration_seconds",
                                  "How long in seconds an item stays in workqueue before being "
                                  "requested"),
      .work_duration = histogram("workqueue_work_duration_seconds",
                                 "How long in seconds processing an item from workqueue takes."),
      .unfinished_work =
          gauge("workqueue_unfinished_work_seconds",
                "How many seconds of work has been done that is in progress and hasn't been "
                "observed by work_duration. Large values indicate stuck threads. One can deduce "
                "the number of stuck threads by observing the rate at which this increases."),
      .longest_running = gauge("workqueue_longest_running_processor_seconds",
                               "How many seconds has the longest running processor for workqueue "
                               "been running."),
  };
}

WorkQueue::WorkQueue(WorkQueueOptions options)
    : name_(std::move(options.name)),
      clock_(options.clock != nullptr ? *options.clock : SystemClock::Instance()),
      own_registry_(options.metrics == nullptr ? std::make_unique<Registry>() : nullptr),
      metrics_(MakeMetrics(options.metrics != nullptr ? *options.metrics : *own_registry_, name_)),
      limiter_(options.rate_limits, clock_),
      collect_hook_(
          (options.metrics != nullptr ? *options.metrics : *own_registry_).OnCollect([this] {
            const std::lock_guard lock(mu_);
            CollectLocked(clock_.Now());
          })),
      timer_([this](const std::stop_token& stop) { TimerLoop(stop); }) {}

WorkQueue::~WorkQueue() {
  ShutDown();
  timer_.request_stop();
  timer_.join();
}

void WorkQueue::Add(std::string_view key) {
  const std::lock_guard lock(mu_);
  AddLocked(std::string(key), clock_.Now());
}

void WorkQueue::AddLocked(std::string key, TimePoint now) {
  if (shutting_down_ || dirty_.contains(key)) return;
  metrics_.adds.Inc();
  dirty_.emplace(key, now);
  if (processing_.contains(key)) return;  // queued again by Done()
  queue_.push_back(std::move(key));
  metrics_.depth.Set(static_cast<double>(queue_.size()));
  ready_cv_.notify_one();
}

void WorkQueue::AddAfter(std::string_view key, Duration delay) {
  const std::lock_guard lock(mu_);
  if (shutting_down_) return;
  metrics_.retries.Inc();
  const TimePoint now = clock_.Now();
  if (delay <= Duration::zero()) {
    AddLocked(std::string(key), now);
    return;
  }
  const TimePoint due = now + delay;
  auto [it, inserted] = waiting_due_.try_emplace(std::string(key), due);
  if (!inserted) {
    if (it->second <= due) return;  // an earlier due time is already pending
    waiting_.erase({it->second, it->first});
    it->second = due;
  }
  waiting_.emplace(due, it->first);
  if (due < timer_deadline_) {
    timer_interrupt_.request_stop();  // the timer sleeps past this key: wake it to re-plan
    timer_cv_.notify_one();
  }
}

void WorkQueue::AddRateLimited(std::string_view key) {
  Duration delay{};
  {
    const std::lock_guard lock(mu_);
    if (shutting_down_) return;
    delay = limiter_.When(std::string(key));
  }
  AddAfter(key, delay);
}

void WorkQueue::Forget(std::string_view key) {
  const std::lock_guard lock(mu_);
  limiter_.Forget(key);
}

int WorkQueue::NumRequeues(std::string_view key) {
  const std::lock_guard lock(mu_);
  return limiter_.NumRequeues(key);
}

void WorkQueue::PromoteDueLocked(TimePoint now) {
  while (!waiting_.empty() && waiting_.begin()->first <= now) {
    auto node = waiting_.extract(waiting_.begin());
    waiting_due_.erase(node.value().second);
    AddLocked(std::move(node.value().second), now);
  }
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock lock(mu_);
  while (true) {
    if (shutting_down_) return std::nullopt;
    const TimePoint now = clock_.Now();
    PromoteDueLocked(now);
    if (!queue_.empty()) {
      std::string key = std::move(queue_.front());
      queue_.pop_front();
      metrics_.depth.Set(static_cast<double>(queue_.size()));
      const auto added = dirty_.extract(key);
      metrics_.queue_duration.Observe(Seconds(now - added.mapped()));
      processing_.emplace(key, now);
      return key;
    }
    ready_cv_.wait(lock);
  }
}

void WorkQueue::Done(std::string_view key) {
  const std::lock_guard lock(mu_);
  const auto it = processing_.find(std::string(key));
  if (it == processing_.end()) return;
  const TimePoint now = clock_.Now();
  metrics_.work_duration.Observe(Seconds(now - it->second));
  processing_.erase(it);
  if (!shutting_down_ && dirty_.contains(std::string(key))) {
    queue_.emplace_back(key);
    metrics_.depth.Set(static_cast<double>(queue_.size()));
    ready_cv_.notify_one();
  }
  if (processing_.empty()) drained_cv_.notify_all();
}

std::size_t WorkQueue::Len() {
  const std::lock_guard lock(mu_);
  if (!shutting_down_) PromoteDueLocked(clock_.Now());
  return queue_.size();
}

bool WorkQueue::WaitIdle(std::stop_token stop) {
  std::unique_lock lock(mu_);
  return drained_cv_.wait(lock, std::move(stop), [this] {
    if (shutting_down_) return true;
    PromoteDueLocked(clock_.Now());
    return queue_.empty() && processing_.empty();
  }) && !shutting_down_;
}

void WorkQueue::ShutDown() {
  const std::lock_guard lock(mu_);
  ShutDownLocked();
}

void WorkQueue::ShutDownLocked() {
  shutting_down_ = true;
  timer_interrupt_.request_stop();
  ready_cv_.notify_all();
  timer_cv_.notify_all();
  drained_cv_.notify_all();
}

void WorkQueue::ShutDownWithDrain() {
  std::unique_lock lock(mu_);
  ShutDownLocked();
  drained_cv_.wait(lock, [this] { return processing_.empty(); });
}

bool WorkQueue::shutting_down() {
  const std::lock_guard lock(mu_);
  return shutting_down_;
}

void WorkQueue::TimerLoop(const std::stop_token& stop) {
  std::unique_lock lock(mu_);
  while (!shutting_down_ && !stop.stop_requested()) {
    const std::size_t before = queue_.size();
    PromoteDueLocked(clock_.Now());
    if (queue_.size() > before) ready_cv_.notify_all();
    if (waiting_.empty()) {
      timer_deadline_ = TimePoint::max();
      timer_cv_.wait(lock, [&] { return shutting_down_ || !waiting_.empty(); });
      continue;
    }
    timer_deadline_ = waiting_.begin()->first;
    timer_interrupt_ = std::stop_source{};
    const std::stop_token interrupt = timer_interrupt_.get_token();
    const TimePoint deadline = timer_deadline_;
    lock.unlock();
    clock_.SleepUntil(deadline, interrupt);
    lock.lock();
  }
}

void WorkQueue::CollectLocked(TimePoint now) {
  double total = 0.0;
  double longest = 0.0;
  for (const auto& [key, started] : processing_) {
    const double s = Seconds(now - started);
    total += s;
    longest = std::max(longest, s);
  }
  metrics_.unfinished_work.Set(total);
  metrics_.longest_running.Set(longest);
}

}  // namespace millrace::controller
