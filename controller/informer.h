#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "controller/clock.h"
#include "controller/logging.h"
#include "controller/metrics.h"
#include "controller/store.h"
#include "kubeclient/client.h"

namespace millrace::controller {

// What changed in an informer's store. `previous` is null for kAdded; `current` is the last known
// state for kDeleted. A resync delivers kUpdated with previous == current.
struct ObjectEvent {
  enum class Type { kAdded, kUpdated, kDeleted };
  Type type;
  Object previous;
  Object current;
};
using EventHandler = std::function<void(const ObjectEvent&)>;

struct InformerOptions {
  kube::ResourceRef resource;
  std::string ns;  // "" = all namespaces (or a cluster-scoped resource)
  std::string label_selector;
  std::string field_selector;
  // Every period, every cached object is delivered again as kUpdated (0: never).
  Duration resync_period{};
  // Objects per list page. A page is decoded whole into a JSON tree (several times its size) and
  // the objects kept are packed between its nodes; at 500 a restart with 6,000 objects left the
  // heap at 50 MB with 11 MB in use, pinned by those objects (malloc_trim could return nothing),
  // at 100 at 20 MB.
  int64_t page_size = 100;
  // Backoff between failed lists or watches: doubles from min to max, reset by a good watch.
  Duration min_backoff = std::chrono::milliseconds{200};
  Duration max_backoff = std::chrono::seconds{30};
  // The server ends each watch after a random time in [watch_timeout, 2*watch_timeout).
  std::chrono::seconds watch_timeout{300};
  StoreOptions store;
  Clock* clock = nullptr;       // nullptr: the system clock
  Registry* metrics = nullptr;  // nullptr: a private registry
  Logger logger;
};

// List, then watch from the list's resourceVersion, keeping a Store in step and telling handlers
// what changed. Watches resume from the last resourceVersion seen (bookmarks included), so a
// dropped connection costs no relist; a 410 Gone relists and replaces the store in one step,
// delivering the differences (objects deleted while away become kDeleted events).
//
// Threads: one thread (started by Start) does all the I/O, writes the store and calls the handlers
// in order; handlers must be quick (enqueue keys). Readers use store() from any thread.
// Metrics: millrace_informer_{lists,relists,watch_restarts}_total and
// millrace_informer_objects, labelled {resource}.
class Informer {
 public:
  // Lists through `lister` and watches through `watcher` (usually one kube::Client).
  Informer(kube::Reader& lister, kube::Watcher& watcher, InformerOptions options);
  ~Informer();  // Stop()
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Before Start().
  void AddHandler(EventHandler handler);

  void Start();
  void Stop();

  // True once the first list is in the store (and stays true through relists).
  bool HasSynced() const { return synced_.load(); }
  // Waits for HasSynced() until `deadline` or `stop`; returns HasSynced().
  bool WaitForSync(TimePoint deadline, const std::stop_token& stop = {});

  const Store& store() const { return store_; }
  // Adds label keys for Index::kLabel (Store::IndexLabels). Call before Start().
  void IndexLabels(const std::vector<std::string>& keys) { store_.IndexLabels(keys); }
  // Adds a named index (Store::AddIndex). Call before Start().
  void AddIndex(std::string name, IndexFunc values) {
    store_.AddIndex(std::move(name), std::move(values));
  }
  const InformerOptions& options() const { return options_; }
  // "pods", "tasks.millrace.io": the metric label.
  const std::string& resource_label() const { return resource_label_; }

 private:
  struct Metrics {
    Counter& lists;
    Counter& relists;
    Counter& watch_restarts;
    Gauge& objects;
  };

  void Run(std::stop_token stop);
  kube::Result<void> ListAndReplace(const std::stop_token& stop);
  kube::Result<void> WatchOnce(std::stop_token stop);
  void Resync();
  void Dispatch(const ObjectEvent& event);
  bool Sleep(Duration d, std::stop_token stop);

  kube::Reader& lister_;
  kube::Watcher& watcher_;
  InformerOptions options_;
  std::string resource_label_;
  std::string event_failpoint_;  // MILLRACE_FAILPOINT before each watch event is applied
  Clock& clock_;
  std::unique_ptr<Registry> own_registry_;
  Metrics metrics_;
  Store store_;
  std::vector<EventHandler> handlers_;
  std::string resource_version_;  // informer thread only
  TimePoint next_resync_{};       // informer thread only
  std::atomic<bool> synced_{false};
  std::mutex sync_mu_;
  std::condition_variable_any sync_cv_;
  std::jthread thread_;
};

}  // namespace millrace::controller
