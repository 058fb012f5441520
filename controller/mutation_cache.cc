#include "controller/mutation_cache.h"

#include <utility>

namespace millrace::controller {

MutationCache::MutationCache(const Store& store) : state_(std::make_shared<State>(store)) {}

void MutationCache::Written(const std::string& cached_resource_version, nlohmann::json written) {
  if (cached_resource_version.empty()) return;
  if (ResourceVersionOf(written) == cached_resource_version) return;  // the write changed nothing
  Trim(written);
  std::string key = ObjectKey(written);
  std::lock_guard lock(state_->mu);
  // A write over an earlier one that the store has not shown yet (the reconcile read it from
  // here) supersedes what the store holds, as that one did.
  std::string superseded = cached_resource_version;
  if (const auto it = state_->entries.find(key);
      it != state_->entries.end() &&
      ResourceVersionOf(*it->second.written) == cached_resource_version) {
    superseded = it->second.superseded;
  }
  // Under the lock, so that the store cannot move on between this check and the insert without
  // Observer() seeing it afterwards and dropping the entry.
  if (state_->store.ResourceVersion(key) != superseded) return;
  state_->entries.insert_or_assign(
      std::move(key),
      Entry{std::move(superseded), std::make_shared<const nlohmann::json>(std::move(written))});
}

Object MutationCache::Newest(const std::string& key, Object cached) const {
  std::lock_guard lock(state_->mu);
  const auto it = state_->entries.find(key);
  if (it == state_->entries.end()) return cached;
  if (cached && ResourceVersionOf(*cached) == it->second.superseded) return it->second.written;
  state_->entries.erase(it);
  return cached;
}

EventHandler MutationCache::Observer() const {
  return [state = state_](const ObjectEvent& event) {
    const Object& object = event.current;
    if (!object) return;
    std::lock_guard lock(state->mu);
    if (state->entries.empty()) return;  // the common case: nothing written in flight
    const auto it = state->entries.find(ObjectKey(*object));
    if (it == state->entries.end()) return;
    if (event.type == ObjectEvent::Type::kDeleted ||
        ResourceVersionOf(*object) != it->second.superseded) {
      state->entries.erase(it);
    }
  };
}

std::size_t MutationCache::size() const {
  std::lock_guard lock(state_->mu);
  return state_->entries.size();
}

}  // namespace millrace::controller
