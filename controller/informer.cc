#include "controller/informer.h"

#include <algorithm>
#include <random>
#include <utility>

#include "controller/failpoint.h"
#include "controller/memory.h"

namespace millrace::controller {
namespace {

std::string ResourceLabel(const kube::ResourceRef& ref) {
  return ref.group.empty() ? ref.resource : ref.resource + "." + ref.group;
}

}  // namespace

Informer::Informer(kube::Reader& lister, kube::Watcher& watcher, InformerOptions options)
    : lister_(lister),
      watcher_(watcher),
      options_(std::move(options)),
      resource_label_(ResourceLabel(options_.resource)),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock::Instance()),
      own_registry_(options_.metrics == nullptr ? std::make_unique<Registry>() : nullptr),
      metrics_([&]() -> Metrics {
        Registry& r = options_.metrics != nullptr ? *options_.metrics : *own_registry_;
        const std::string& res = resource_label_;
        return Metrics{
            r.AddCounter("millrace_informer_lists_total", "Full lists made by informers.",
                         {"resource"})
                .WithLabels({res}),
            r.AddCounter("millrace_informer_relists_total",
                         "Lists forced by a 410 Gone watch (resourceVersion compacted).",
                         {"resource"})
                .WithLabels({res}),
            r.AddCounter("millrace_informer_watch_restarts_total",
                         "Watches that ended with an error and were restarted after a backoff.",
                         {"resource"})
                .WithLabels({res}),
            r.AddGauge("millrace_informer_objects", "Objects in an informer's store.", {"resource"})
                .WithLabels({res}),
        };
      }()),
      store_(options_.store) {
  options_.logger = options_.logger.With("resource", resource_label_);
  event_failpoint_ = "informer." + resource_label_ + ".event";
}

Informer::~Informer() { Stop(); }

void Informer::AddHandler(EventHandler handler) { handlers_.push_back(std::move(handler)); }

void Informer::Start() {
  thread_ = std::jthread([this](std::stop_token stop) { Run(std::move(stop)); });
}

void Informer::Stop() {
  if (!thread_.joinable()) return;
  thread_.request_stop();
  sync_cv_.notify_all();
  thread_.join();
}

bool Informer::WaitForSync(TimePoint deadline, const std::stop_token& stop) {
  std::unique_lock lock(sync_mu_);
  while (!synced_.load() && !stop.stop_requested() && clock_.Now() < deadline) {
    // Real time bounds each wait so a fake clock's deadline is still noticed.
    sync_cv_.wait_for(lock, stop, std::chrono::milliseconds{50}, [&] { return synced_.load(); });
  }
  return synced_.load();
}

void Informer::Dispatch(const ObjectEvent& event) {
  for (const auto& handler : handlers_) handler(event);
}

bool Informer::Sleep(Duration d, std::stop_token stop) {
  return clock_.SleepUntil(clock_.Now() + d, std::move(stop));
}

kube::Result<void> Informer::ListAndReplace(const std::stop_token& stop) {
  kube::ListOptions list;
  list.label_selector = options_.label_selector;
  list.field_selector = options_.field_selector;
  list.limit = options_.page_size;
  // Each page is trimmed and packed as it arrives, so the list is never held whole as it came.
  std::vector<Store::Prepared> objects;
  const auto on_page = [&](nlohmann::json& page) {
    nlohmann::json& items = page["items"];
    if (!items.is_array()) return;
    for (auto& item : items) {
      // List items carry no apiVersion/kind; owner mapping and logs want them.
      if (!options_.resource.kind.empty()) {
        item["apiVersion"] = options_.resource.ApiVersion();
        item["kind"] = options_.resource.kind;
      }
      objects.push_back(store_.Prepare(std::move(item)));
    }
  };
  auto result = lister_.ListPages(options_.resource, options_.ns, list, on_page);
  if (!result && result.error().IsGone() && list.limit > 0) {
    // The continue token expired between pages: take everything in one response.
    objects.clear();
    list.limit = 0;
    result = lister_.ListPages(options_.resource, options_.ns, list, on_page);
  }
  if (!result) return std::unexpected(std::move(result.error()));
  if (stop.stop_requested()) return {};
  metrics_.lists.Inc();

  resource_version_ = std::move(*result);
  auto diff = store_.Replace(std::move(objects), resource_version_);
  metrics_.objects.Set(static_cast<double>(store_.size()));
  // Unpacked one at a time: the handlers see each object, the heap never holds the whole list.
  for (auto& added : diff.added) {
    Dispatch({ObjectEvent::Type::kAdded, nullptr, added->Unpack()});
    added.reset();
  }
  for (auto& [previous, current] : diff.updated) {
    Dispatch({ObjectEvent::Type::kUpdated, previous->Unpack(), current->Unpack()});
    previous.reset();
    current.reset();
  }
  for (auto& deleted : diff.deleted) {
    const Object object = deleted->Unpack();
    Dispatch({ObjectEvent::Type::kDeleted, object, object});
    deleted.reset();
  }
  diff = {};
  ReleaseFreeMemory();  // a list is rare (start-up, a relist) and leaves much garbage behind
  if (!synced_.exchange(true)) {
    const std::lock_guard lock(sync_mu_);
    sync_cv_.notify_all();
    options_.logger.With("objects", store_.size()).Info("informer synced");
  }
  return {};
}

kube::Result<void> Informer::WatchOnce(std::stop_token stop) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto base = options_.watch_timeout.count();
  std::uniform_int_distribution<int64_t> jitter(0, std::max<int64_t>(base - 1, 0));

  kube::WatchOptions watch;
  watch.label_selector = options_.label_selector;
  watch.field_selector = options_.field_selector;
  watch.resource_version = resource_version_;
  watch.allow_bookmarks = true;
  watch.timeout_seconds = base + jitter(rng);
  return watcher_.Watch(
      options_.resource, options_.ns, watch,
      [this](kube::WatchEvent&& event) {
        MILLRACE_FAILPOINT(event_failpoint_);  // "informer.pods.event": a lagging watch
        std::string rv = ResourceVersionOf(event.object);
        switch (event.type) {
          case kube::EventType::kAdded:
          case kube::EventType::kModified: {
            if (!options_.resource.kind.empty() && !event.object.contains("kind")) {
              event.object["apiVersion"] = options_.resource.ApiVersion();
              event.object["kind"] = options_.resource.kind;
            }
            auto change = store_.Upsert(std::move(event.object));
            Dispatch({change.previous ? ObjectEvent::Type::kUpdated : ObjectEvent::Type::kAdded,
                      std::move(change.previous), std::move(change.current)});
            break;
          }
          case kube::EventType::kDeleted: {
            if (const Object deleted = store_.Delete(ObjectKey(event.object))) {
              Dispatch({ObjectEvent::Type::kDeleted, deleted, deleted});
            }
            break;
          }
          case kube::EventType::kBookmark:
          case kube::EventType::kError:
            break;
        }
        if (!rv.empty()) {
          resource_version_ = std::move(rv);
          store_.SetLastSyncResourceVersion(resource_version_);
        }
        metrics_.objects.Set(static_cast<double>(store_.size()));
        return true;
      },
      std::move(stop));
}

void Informer::Resync() {
  for (const std::string& key : store_.ListKeys()) {
    if (const Object object = store_.Get(key)) {
      Dispatch({ObjectEvent::Type::kUpdated, object, object});
    }
  }
}

void Informer::Run(std::stop_token stop) {
  // A resync runs on its own thread: the watch blocks this one for minutes at a time.
  std::jthread resync;
  if (options_.resync_period > Duration::zero()) {
    resync = std::jthread([this, stop](const std::stop_token& own) {
      while (Sleep(options_.resync_period, stop) && !own.stop_requested()) Resync();
    });
  }

  Duration backoff = options_.min_backoff;
  auto back_off = [&](const kube::Error& error, std::string_view what) {
    options_.logger.With("error", error.ToString())
        .With("retryAfterMs",
              std::chrono::duration_cast<std::chrono::milliseconds>(backoff).count())
        .Warn(std::string(what) + " failed");
    const bool go_on = Sleep(backoff, stop);
    backoff = std::min(backoff * 2, options_.max_backoff);
    return go_on;
  };

  bool need_list = true;
  while (!stop.stop_requested()) {
    if (need_list) {
      if (auto listed = ListAndReplace(stop); !listed) {
        if (!back_off(listed.error(), "list")) break;
        continue;
      }
      need_list = false;
    }
    const TimePoint started = clock_.Now();
    auto watched = WatchOnce(stop);
    if (stop.stop_requested()) break;
    if (watched) {
      backoff = options_.min_backoff;  // the server ended a good watch; resume from rv
      continue;
    }
    if (watched.error().IsGone()) {
      options_.logger.With("resourceVersion", resource_version_)
          .Info("watch resourceVersion is gone; relisting");
      metrics_.relists.Inc();
      need_list = true;
      continue;
    }
    metrics_.watch_restarts.Inc();
    // A watch that ran a while before failing was healthy: start the backoff over.
    if (clock_.Now() - started > options_.max_backoff) backoff = options_.min_backoff;
    if (!back_off(watched.error(), "watch")) break;
  }
}

}  // namespace millrace::controller
