#include "controller/event_sender.h"

#include <algorithm>
#include <string>
#include <utility>

namespace millrace::controller {

EventSender::EventSender(EventSenderOptions options, Send send)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock::Instance()),
      send_(std::move(send)),
      own_registry_(options_.metrics == nullptr ? std::make_unique<Registry>() : nullptr),
      metrics_([&]() -> Metrics {
        Registry& r = options_.metrics != nullptr ? *options_.metrics : *own_registry_;
        auto& writes = r.AddCounter("millrace_event_writes_total",
                                    "Event writes (creates and series patches) by result: sent, "
                                    "failed (the API server refused or did not answer) or dropped "
                                    "(the queue was full).",
                                    {"result"});
        return Metrics{
            writes.WithLabels({"sent"}),
            writes.WithLabels({"failed"}),
            writes.WithLabels({"dropped"}),
            r.AddGauge("millrace_event_queue_depth", "Event writes waiting to be sent.", {})
                .WithLabels({}),
        };
      }()) {
  const int senders = std::max(options_.senders, 1);
  for (int i = 0; i < senders; ++i) shards_.push_back(std::make_unique<Shard>());
  for (auto& shard : shards_) {
    threads_.emplace_back([this, &s = *shard](std::stop_token stop) { Run(s, std::move(stop)); });
  }
}

EventSender::~EventSender() { Drain(); }

void EventSender::Drain() {
  Shutdown();
  threads_.clear();  // joins
}

void EventSender::Shutdown() {
  {
    const std::lock_guard lock(mu_);
    if (drain_deadline_ != TimePoint::max()) return;
    drain_deadline_ = clock_.Now() + options_.drain_timeout;
  }
  for (auto& thread : threads_) thread.request_stop();
}

bool EventSender::Enqueue(EventWrite write) {
  const std::size_t shard = std::hash<std::string>{}(write.ns + "/" + write.name) % shards_.size();
  {
    const std::lock_guard lock(mu_);
    if (queued_ >= options_.max_queued || drain_deadline_ != TimePoint::max()) {
      metrics_.dropped.Inc();
      return false;
    }
    shards_[shard]->writes.push_back(std::move(write));
    metrics_.depth.Set(static_cast<double>(++queued_));
  }
  shards_[shard]->ready.notify_one();
  return true;
}

void EventSender::Run(Shard& shard, std::stop_token stop) {
  std::unique_lock lock(mu_);
  for (;;) {
    // Once stop is requested the wait returns at once: what is queued is sent, then we leave.
    if (!shard.ready.wait(lock, stop, [&] { return !shard.writes.empty(); })) return;
    if (stop.stop_requested() && clock_.Now() >= drain_deadline_) {
      options_.logger.With("writes", shard.writes.size())
          .Warn("dropping event writes not sent before shutdown");
      metrics_.dropped.Inc(static_cast<double>(shard.writes.size()));
      queued_ -= shard.writes.size();
      metrics_.depth.Set(static_cast<double>(queued_));
      shard.writes.clear();
      return;
    }
    EventWrite write = std::move(shard.writes.front());
    shard.writes.pop_front();
    metrics_.depth.Set(static_cast<double>(--queued_));
    lock.unlock();
    if (auto sent = send_(write); sent) {
      metrics_.sent.Inc();
    } else {
      metrics_.failed.Inc();
      options_.logger.With("event", write.ns + "/" + write.name)
          .With("error", sent.error().ToString())
          .Warn("writing an event failed");
    }
    lock.lock();
  }
}

}  // namespace millrace::controller
