#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "controller/informer.h"
#include "controller/store.h"

namespace millrace::controller {

// The objects a controller wrote, laid over its informer's store until the store catches up
// (client-go's MutationCache). A reconcile that runs between a status write and the watch event
// that brings it back (a child's event woke it) reads what was written instead of the older
// cached copy, so it neither writes the same status again nor plans from the state before it.
//
// An entry lives only while the store still holds the resourceVersion the write superseded: the
// handler from Observer() drops it when the informer delivers anything newer (or the deletion),
// and a write whose watch event came first is not recorded. A copyable handle: copies share one
// cache. Thread-safe.
class MutationCache {
 public:
  explicit MutationCache(const Store& store);

  // Records `written`, the API server's answer to a write, as newer than the cached copy at
  // `cached_resource_version`; trimmed as the store trims (Trim()).
  void Written(const std::string& cached_resource_version, nlohmann::json written);
  // The written object while the store still holds the resourceVersion it superseded, else
  // `cached` (the store's copy of `key`, null when gone).
  Object Newest(const std::string& key, Object cached) const;
  // For the informer's AddHandler: forgets an object's entry once the store has moved on.
  EventHandler Observer() const;
  std::size_t size() const;

 private:
  struct Entry {
    std::string superseded;  // the cached resourceVersion the write replaced
    Object written;
  };
  struct State {
    explicit State(const Store& s) : store(s) {}
    const Store& store;
    mutable std::mutex mu;
    std::unordered_map<std::string, Entry> entries;
  };
  std::shared_ptr<State> state_;
};

}  // namespace millrace::controller
