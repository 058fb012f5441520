#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "controller/clock.h"
#include "controller/events.h"
#include "controller/logging.h"
#include "controller/metrics.h"
#include "kubeclient/error.h"

namespace millrace::controller {

struct EventSenderOptions {
  // Threads writing Events. One Event's writes (its create, then its series patches) always go
  // through the same thread, so they reach the API server in order.
  int senders = 4;
  // Writes waiting to be sent, at most; a write beyond that is dropped and counted, as
  // client-go's event broadcaster drops past 1000: under overload an operator's own writes
  // (children, status) matter more than its Events, and a backlog would only grow its memory.
  std::size_t max_queued = 1000;
  // On destruction, queued writes are still sent for up to this long; what is left is dropped.
  Duration drain_timeout = std::chrono::seconds{5};
  Clock* clock = nullptr;       // nullptr: the system clock
  Registry* metrics = nullptr;  // nullptr: a private registry
  Logger logger;
};

// Sends the EventRecorder's writes to the API server off the reconcilers' threads.
// Metrics: millrace_event_writes_total{result="sent|failed|dropped"}, millrace_event_queue_depth.
//
// Threads: Enqueue() is called from any thread (the recorder's sink, under its mutex) and never
// blocks on I/O; `senders` threads own the writes once dequeued. mu_ guards the queues.
class EventSender {
 public:
  using Send = std::function<kube::Result<void>(const EventWrite&)>;

  EventSender(EventSenderOptions options, Send send);
  ~EventSender();  // Shutdown(), then joins the senders
  EventSender(const EventSender&) = delete;
  EventSender& operator=(const EventSender&) = delete;

  // False when the write was dropped (the queue is full, or the sender is shutting down).
  bool Enqueue(EventWrite write);
  // Stops taking writes; the senders send what is queued for up to drain_timeout, drop the rest
  // and exit. Returns at once.
  void Shutdown();
  // Shutdown(), then waits for the senders to exit. From one thread (the owner's).
  void Drain();

 private:
  struct Metrics {
    Counter& sent;
    Counter& failed;
    Counter& dropped;
    Gauge& depth;
  };
  struct Shard {
    std::deque<EventWrite> writes;  // guarded by mu_
    std::condition_variable_any ready;
  };

  void Run(Shard& shard, std::stop_token stop);

  EventSenderOptions options_;
  Clock& clock_;
  Send send_;
  std::unique_ptr<Registry> own_registry_;
  Metrics metrics_;
  std::mutex mu_;
  std::size_t queued_ = 0;                       // guarded by mu_
  TimePoint drain_deadline_ = TimePoint::max();  // guarded by mu_; set by Shutdown()
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::jthread> threads_;  // last: joined before the shards go
};

}  // namespace millrace::controller
