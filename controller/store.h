#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace millrace::controller {

// Cached objects are shared and read-only: a reader keeps its snapshot of an object even after
// the store replaced it.
using Object = std::shared_ptr<const nlohmann::json>;

// "namespace/name", or "name" for cluster-scoped objects. Throws std::invalid_argument when
// metadata.name is missing (the API server never sends such an object).
std::string ObjectKey(const nlohmann::json& object);

// Drops what no reconciler reads: metadata.managedFields and the
// kubectl.kubernetes.io/last-applied-configuration annotation.
void Trim(nlohmann::json& object);

enum class Index {
  kNamespace,        // metadata.namespace
  kOwner,            // uid of every metadata.ownerReferences entry
  kControllerOwner,  // uid of the ownerReference with controller: true
  kLabel,            // "key=value" of every label
};

struct StoreOptions {
  // Runs after Trim() on every object stored, to drop more (e.g. pod specs we never read).
  std::function<void(nlohmann::json&)> trim;
};

// The informer's cache. One writer (the informer thread) calls Upsert/Delete/Replace; any number
// of readers call the const methods. A std::shared_mutex guards the contents; Replace() builds the
// new contents off the lock and swaps them in one step, so readers never see half a list.
class Store {
 public:
  struct Change {
    Object previous;  // nullptr when added
    Object current;
  };
  struct ReplaceResult {
    std::vector<Object> added;
    std::vector<Change> updated;  // resourceVersion (or, without one, content) differs
    std::vector<Object> deleted;  // gone from the new list: deletes missed while away
  };

  explicit Store(StoreOptions options = {});

  // Writer side.
  Change Upsert(nlohmann::json object);
  Object Delete(std::string_view key);  // the deleted object, or nullptr
  ReplaceResult Replace(std::vector<nlohmann::json> objects, std::string resource_version);
  // The same with objects already made by Prepare(), so that a caller reading a list page by page
  // holds the trimmed objects only, never the whole list as it came. An object whose
  // resourceVersion is unchanged keeps its cached copy (readers' Objects stay the same pointer).
  ReplaceResult Replace(std::vector<Object> prepared, std::string resource_version);
  // `object` trimmed (Trim, then StoreOptions::trim) as the store would keep it.
  Object Prepare(nlohmann::json object) const;
  void SetLastSyncResourceVersion(std::string resource_version);

  // Reader side. Lists are sorted by key.
  Object Get(std::string_view key) const;
  std::vector<Object> List() const;
  std::vector<Object> ByIndex(Index index, std::string_view value) const;
  std::size_t size() const;
  std::string last_sync_resource_version() const;

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Contents {
    std::unordered_map<std::string, Object> objects;
    // index -> value -> keys
    std::array<std::unordered_map<std::string, std::set<std::string>, StringHash, std::equal_to<>>,
               4>
        indexes;
    void Insert(const std::string& key, const Object& object);
    void Erase(const std::string& key, const Object& object);
  };

  StoreOptions options_;
  mutable std::shared_mutex mu_;  // guards contents_ and resource_version_
  Contents contents_;
  std::string resource_version_;
};

}  // namespace millrace::controller
