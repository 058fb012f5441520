#include "controller/builder.h"

#include <algorithm>
#include <stdexcept>

namespace millrace::controller {
namespace {

bool SameResource(const kube::ResourceRef& a, const kube::ResourceRef& b) {
  return a.group == b.group && a.resource == b.resource;
}

}  // namespace

std::vector<Object> Cache::InNamespace(std::string_view ns) const {
  return store().ByIndex(Index::kNamespace, ns);
}

std::vector<Object> Cache::ControlledBy(std::string_view owner_uid) const {
  return store().ByIndex(Index::kControllerOwner, owner_uid);
}

std::vector<Object> Cache::WithLabel(std::string_view key, std::string_view value) const {
  std::string label(key);
  label += '=';
  label += value;
  return store().ByIndex(Index::kLabel, label);
}

const Cache& Caches::Of(const kube::ResourceRef& resource) const {
  for (const auto& [ref, cache] : entries_) {
    if (SameResource(ref, resource)) return cache;
  }
  throw std::logic_error("no cache of " + resource.resource + " was declared for this controller");
}

bool Caches::Has(const kube::ResourceRef& resource) const {
  return std::ranges::any_of(
      entries_, [&](const auto& entry) { return SameResource(entry.first, resource); });
}

ControllerBuilder::ControllerBuilder(Manager& manager, std::string name)
    : manager_(manager), name_(std::move(name)) {}

Informer& ControllerBuilder::Declare(const kube::ResourceRef& resource, CacheOptions options) {
  InformerOptions informer_options;
  informer_options.resource = resource;
  informer_options.label_selector = options.label_selector;
  informer_options.store.trim = std::move(options.trim);
  informer_options.store.indexed_labels = options.indexed_labels;
  // Declared again (owned and watched, say): the same cache, which must be listed alike.
  const std::string id = resource.resource + "." + resource.group;
  if (const auto it = selectors_.find(id);
      it != selectors_.end() && it->second != options.label_selector) {
    throw std::logic_error("controller " + name_ + " declares " + id +
                           " twice with different label selectors");
  }
  selectors_[id] = options.label_selector;
  Informer& informer = manager_.AddInformer(std::move(informer_options));
  if (!options.indexed_labels.empty()) informer.IndexLabels(options.indexed_labels);
  for (auto& [index, values] : options.indexes) informer.AddIndex(index, std::move(values));
  if (!caches_.Has(resource)) caches_.entries_.emplace_back(resource, Cache(informer));
  return informer;
}

ControllerBuilder& ControllerBuilder::For(const kube::ResourceRef& resource, Predicate predicate,
                                          CacheOptions options) {
  if (primary_ != nullptr || !caches_.entries_.empty()) {
    throw std::logic_error("controller " + name_ + ": For() once, before anything else");
  }
  primary_ = &Declare(resource, std::move(options));
  handlers_.emplace_back(primary_,
                         [predicate = std::move(predicate)](WorkQueue& queue, const Caches&) {
                           return EnqueueObject(queue, predicate);
                         });
  return *this;
}

ControllerBuilder& ControllerBuilder::Owns(const kube::ResourceRef& resource,
                                           CacheOptions options) {
  if (primary_ == nullptr) throw std::logic_error("controller " + name_ + ": For() first");
  const kube::ResourceRef& owner = primary_->options().resource;
  Informer& informer = Declare(resource, std::move(options));
  handlers_.emplace_back(
      &informer, [match = OwnerMatch{.group = owner.group,
                                     .kind = owner.kind,
                                     .owner_namespaced = owner.namespaced}](
                     WorkQueue& queue, const Caches&) { return EnqueueOwner(queue, match); });
  return *this;
}

ControllerBuilder& ControllerBuilder::Watches(const kube::ResourceRef& resource, Mapper map,
                                              CacheOptions options, Predicate predicate) {
  if (primary_ == nullptr) throw std::logic_error("controller " + name_ + ": For() first");
  Informer& informer = Declare(resource, std::move(options));
  handlers_.emplace_back(&informer, [map = std::move(map), predicate = std::move(predicate)](
                                        WorkQueue& queue, const Caches& caches) {
    return EnqueueMapped(
        queue, [map, caches](const nlohmann::json& object) { return map(object, caches); },
        predicate);
  });
  return *this;
}

ControllerBuilder& ControllerBuilder::Reads(const kube::ResourceRef& resource,
                                            CacheOptions options) {
  if (primary_ == nullptr) throw std::logic_error("controller " + name_ + ": For() first");
  Declare(resource, std::move(options));
  return *this;
}

ControllerBuilder& ControllerBuilder::Workers(int workers) {
  workers_ = workers;
  return *this;
}

Controller& ControllerBuilder::Complete(
    const std::function<std::unique_ptr<Reconciler>(ReconcilerDeps)>& make) {
  if (primary_ == nullptr) throw std::logic_error("controller " + name_ + ": For() first");
  MutationCache written(primary_->store());
  primary_->AddHandler(written.Observer());
  Controller& controller =
      manager_.AddController(ControllerOptions{.name = name_,
                                               .workers = workers_,
                                               .rate_limits = {},
                                               .clock = nullptr,
                                               .metrics = nullptr,
                                               .logger = {}},
                             make(ReconcilerDeps{.writer = manager_.client(),
                                                 .status_writer = manager_.client(),
                                                 .uncached = manager_.client(),
                                                 .caches = caches_,
                                                 .written = std::move(written),
                                                 .events = manager_.events()}));
  for (auto& [informer, handler] : handlers_) {
    informer->AddHandler(handler(controller.queue(), caches_));
  }
  handlers_.clear();
  return controller;
}

}  // namespace millrace::controller
