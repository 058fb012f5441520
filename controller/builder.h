#pragma once

// Declaring a controller, in the spirit of controller-runtime's builder and kube-rs'
// Controller::new(..).owns(..).watches(..):
//
//   ControllerBuilder(manager, "task")
//       .For(resources::kTasks)
//       .Owns(kube::resources::kJobs, {.label_selector = managed, .trim = TrimTaskJob})
//       .Watches(kube::resources::kPods, PodToTask, {.label_selector = "millrace.io/task"})
//       .Reads(resources::kLimitRanges)
//       .Workers(workers)
//       .Complete([](ReconcilerDeps deps) { return std::make_unique<TaskReconciler>(deps); });
//
// The builder makes (or shares, through the manager) one informer per resource, puts the handlers
// on them and creates the controller; the reconciler gets what it may read as named read-only
// caches (caches.Of(kube::resources::kJobs)), never an informer's writer half or its handlers.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "controller/controller.h"
#include "controller/events.h"
#include "controller/handlers.h"
#include "controller/informer.h"
#include "controller/manager.h"
#include "controller/mutation_cache.h"
#include "controller/reconciler.h"
#include "controller/store.h"
#include "kubeclient/client.h"

namespace millrace::controller {

// A read-only view of one informer's cache.
class Cache {
 public:
  explicit Cache(const Informer& informer) : informer_(&informer) {}

  const kube::ResourceRef& resource() const { return informer_->options().resource; }
  bool HasSynced() const { return informer_->HasSynced(); }
  // Lists are sorted by key ("namespace/name", or "name" when cluster-scoped).
  Object Get(std::string_view key) const { return store().Get(key); }
  std::vector<Object> List() const { return store().List(); }
  std::vector<Object> InNamespace(std::string_view ns) const;
  // The objects whose controller ownerReference has `owner_uid`.
  std::vector<Object> ControlledBy(std::string_view owner_uid) const;
  // The objects labelled `key`=`value`; `key` must be one of CacheOptions::indexed_labels.
  std::vector<Object> WithLabel(std::string_view key, std::string_view value) const;
  // A named index of CacheOptions::indexes.
  std::vector<Object> ByIndex(std::string_view index, std::string_view value) const {
    return store().ByIndex(index, value);
  }
  const Store& store() const { return informer_->store(); }

 private:
  const Informer* informer_;
};

// The caches a controller declared, by resource.
class Caches {
 public:
  // The cache of `resource`. Throws std::logic_error when the controller did not declare it: a
  // registration mistake, found when the reconciler is built at start-up.
  const Cache& Of(const kube::ResourceRef& resource) const;
  bool Has(const kube::ResourceRef& resource) const;
  // The cache of the resource the controller reconciles (For()).
  const Cache& primary() const { return entries_.front().second; }

 private:
  friend class ControllerBuilder;
  std::vector<std::pair<kube::ResourceRef, Cache>> entries_;  // For()'s first
};

// How the builder lists and watches a resource. Two declarations of one resource in a controller
// must agree on label_selector.
struct CacheOptions {
  std::string label_selector{};  // "" for every object
  // Runs on every object stored, after Trim(): drop what the reconciler never reads.
  std::function<void(nlohmann::json&)> trim{};
  // Label keys Cache::WithLabel looks up.
  std::vector<std::string> indexed_labels{};
  // Named indexes for Cache::ByIndex.
  std::vector<std::pair<std::string, IndexFunc>> indexes{};
};

// The keys to reconcile when `object`, of a watched resource, changed.
using Mapper =
    std::function<std::vector<std::string>(const nlohmann::json& object, const Caches& caches)>;

// What a reconciler is built from: the parts of the client it writes with, its caches, the objects
// of For()'s resource it wrote until their watch events arrive, and the event recorder. Reads go to
// the caches; `uncached` is for the few a lagging cache must not decide (it costs a request).
struct ReconcilerDeps {
  kube::Writer& writer;
  kube::StatusWriter& status_writer;
  kube::Reader& uncached;
  Caches caches;  // a small value: views of informers the manager owns
  MutationCache written;
  EventRecorder& events;
};

class ControllerBuilder {
 public:
  ControllerBuilder(Manager& manager, std::string name);
  ControllerBuilder(const ControllerBuilder&) = delete;
  ControllerBuilder& operator=(const ControllerBuilder&) = delete;

  // The resource reconciled: an event passing `predicate` enqueues the object's own key. Once,
  // first.
  ControllerBuilder& For(const kube::ResourceRef& resource,
                         Predicate predicate = GenerationOrMetadataChanged,
                         CacheOptions options = {});
  // A child resource: an event enqueues the object's controller owner when that is of For()'s kind.
  ControllerBuilder& Owns(const kube::ResourceRef& resource, CacheOptions options = {});
  // Any resource: an event passing `predicate` enqueues the keys `map` returns.
  ControllerBuilder& Watches(const kube::ResourceRef& resource, Mapper map,
                             CacheOptions options = {}, Predicate predicate = AnyChange);
  // A resource the reconciler reads but whose changes enqueue nothing.
  ControllerBuilder& Reads(const kube::ResourceRef& resource, CacheOptions options = {});
  ControllerBuilder& Workers(int workers);

  // Builds the reconciler (the manager owns it) and the controller; the manager starts both.
  Controller& Complete(const std::function<std::unique_ptr<Reconciler>(ReconcilerDeps)>& make);

 private:
  // A handler for an informer, made once the queue (and every cache) exists.
  using HandlerFactory = std::function<EventHandler(WorkQueue& queue, const Caches& caches)>;
  Informer& Declare(const kube::ResourceRef& resource, CacheOptions options);

  Manager& manager_;
  std::string name_;
  int workers_ = 1;
  Caches caches_;
  std::map<std::string, std::string> selectors_;  // "resource.group" -> label selector
  Informer* primary_ = nullptr;
  std::vector<std::pair<Informer*, HandlerFactory>> handlers_;
};

}  // namespace millrace::controller
