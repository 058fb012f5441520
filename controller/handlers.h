#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/informer.h"
#include "controller/work_queue.h"

namespace millrace::controller {

// Decides whether an event is worth a reconcile.
using Predicate = std::function<bool(const ObjectEvent&)>;

// Passes creates, deletes, resyncs and updates that change what a reconciler reads about the
// object itself: metadata.generation (the spec), labels, annotations, finalizers or
// deletionTimestamp. Status-only updates of our own resources are dropped: we wrote them.
bool GenerationOrMetadataChanged(const ObjectEvent& event);

// Passes every event except updates whose resourceVersion did not move (nothing changed).
bool AnyChange(const ObjectEvent& event);

// The owner a child maps to: the ownerReference with controller: true whose apiVersion group and
// kind match. `owner_namespaced` says whether the owner's key carries the child's namespace.
struct OwnerMatch {
  std::string group;  // "millrace.io"; "" for the core group
  std::string kind;   // "Task"
  bool owner_namespaced = true;
};
// The owner's key for `child`, if `child` is controlled by an owner of that group and kind.
std::optional<std::string> ControllerOwnerKey(const nlohmann::json& child, const OwnerMatch& owner);

// Event handlers for Informer::AddHandler.
// Enqueues the object's own key.
EventHandler EnqueueObject(WorkQueue& queue, Predicate predicate = AnyChange);
// Enqueues the controlling owner's key (for both the old and the new state on an update, in case
// the owner reference changed).
EventHandler EnqueueOwner(WorkQueue& queue, OwnerMatch owner, Predicate predicate = AnyChange);
// Enqueues whatever keys `map` returns (e.g. every Zone when a Node changes).
EventHandler EnqueueMapped(WorkQueue& queue,
                           std::function<std::vector<std::string>(const nlohmann::json&)> map,
                           Predicate predicate = AnyChange);

}  // namespace millrace::controller
