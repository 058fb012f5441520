#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace millrace::controller {

// Objects handed out by the store are shared and read-only: a reader keeps its snapshot of an
// object even after the store replaced it.
using Object = std::shared_ptr<const nlohmann::json>;

// "namespace/name", or "name" for cluster-scoped objects. Throws std::invalid_argument when
// metadata.name is missing (the API server never sends such an object).
std::string ObjectKey(const nlohmann::json& object);
// metadata.resourceVersion, or "" when there is none.
std::string ResourceVersionOf(const nlohmann::json& object);

// Drops what no reconciler reads: metadata.managedFields and the
// kubectl.kubernetes.io/last-applied-configuration annotation.
void Trim(nlohmann::json& object);

enum class Index {
  kNamespace,        // metadata.namespace
  kControllerOwner,  // uid of the ownerReference with controller: true
  kLabel,            // "key=value" of the labels named in StoreOptions::indexed_labels
};

struct StoreOptions {
  // Runs after Trim() on every object stored, to drop more (e.g. pod specs we never read).
  std::function<void(nlohmann::json&)> trim;
  // Label keys Index::kLabel indexes; other labels are not indexed (each indexed value costs
  // memory for every object that carries it).
  std::vector<std::string> indexed_labels;
};

// A named index beside the built-in ones (client-go's Indexers): the values an object is found
// by in Store::ByIndex(name, value); none, to leave it out of that index.
using IndexFunc = std::function<std::vector<std::string>(const nlohmann::json&)>;

// An object as the store keeps it: trimmed, then packed as MessagePack, which takes a fraction
// of the heap of a JSON tree; its key and resourceVersion sit beside it so that lookups and
// change checks never unpack it. Immutable once made.
struct PackedObject {
  std::string key;
  std::string resource_version;
  std::vector<std::uint8_t> bytes;

  Object Unpack() const;
};
using Packed = std::shared_ptr<const PackedObject>;

// The informer's cache. One writer (the informer thread) calls Upsert/Delete/Replace; any number
// of readers call the const methods, which unpack a fresh copy of each object they return. A
// std::shared_mutex guards the contents; Replace() builds the new contents off the lock and swaps
// them in one step, so readers never see half a list.
class Store {
 public:
  struct Change {
    Object previous;  // nullptr when added
    Object current;
  };
  // An object's values for each Index, then for each named index in name order.
  using IndexValues = std::vector<std::vector<std::string>>;
  // An object made ready for Replace() by Prepare(): packed, with its index values.
  struct Prepared {
    Packed object;
    IndexValues index_values;
  };
  // What a Replace() changed, still packed: a relist of 10,000 objects is dispatched one
  // unpacked object at a time, never held as 10,000 trees.
  struct ReplaceResult {
    std::vector<Packed> added;
    std::vector<std::pair<Packed, Packed>> updated;  // (previous, current): resourceVersion (or,
                                                     // without one, content) differs
    std::vector<Packed> deleted;  // gone from the new list: deletes missed while away
  };

  explicit Store(StoreOptions options = {});

  // Writer side.
  Change Upsert(nlohmann::json object);
  Object Delete(std::string_view key);  // the deleted object, or nullptr
  ReplaceResult Replace(std::vector<nlohmann::json> objects, std::string resource_version);
  // The same with objects already made by Prepare(), so that a caller reading a list page by page
  // holds packed objects only, never the whole list as it came. An object whose resourceVersion
  // is unchanged keeps its cached copy, so a relist leaves the heap as it found it.
  ReplaceResult Replace(std::vector<Prepared> prepared, std::string resource_version);
  // `object` trimmed (Trim, then StoreOptions::trim) and packed as the store would keep it.
  Prepared Prepare(nlohmann::json object) const;
  void SetLastSyncResourceVersion(std::string resource_version);
  // Adds label keys to StoreOptions::indexed_labels, indexing what is already stored. Called
  // before the writer starts (the writer reads indexed_labels without the lock).
  void IndexLabels(const std::vector<std::string>& keys);
  // Adds (or, for a name already added, replaces) a named index over what is stored and what will
  // be. Called before the writer starts, as IndexLabels().
  void AddIndex(std::string name, IndexFunc values);

  // Reader side. Lists are sorted by key.
  Object Get(std::string_view key) const;
  // The stored object's resourceVersion without unpacking it; "" when not stored.
  std::string ResourceVersion(std::string_view key) const;
  std::vector<Object> List() const;
  std::vector<std::string> ListKeys() const;
  std::vector<Object> ByIndex(Index index, std::string_view value) const;
  std::vector<Object> ByIndex(std::string_view index, std::string_view value) const;
  std::size_t size() const;
  std::string last_sync_resource_version() const;

 private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct Contents {
    // Keyed by a view of the PackedObject's own key, which lives as long as the entry does; the
    // indexes' key sets are views of the same string.
    std::unordered_map<std::string_view, Packed> objects;
    // Index, then the named indexes in name order -> value -> keys.
    std::vector<
        std::unordered_map<std::string, std::set<std::string_view>, StringHash, std::equal_to<>>>
        indexes;
    void Insert(Packed object, const IndexValues& values);
    void Erase(std::string_view key, const IndexValues& values);
  };

  static constexpr std::size_t kBuiltInIndexes = 3;

  IndexValues ValuesOf(const nlohmann::json& object) const;
  Packed Pack(const nlohmann::json& object, std::string key) const;
  // Recomputes contents_.indexes[index] from the stored objects; the caller holds mu_.
  void RebuildIndexLocked(std::size_t index);
  std::vector<Object> ByIndexAt(std::size_t index, std::string_view value) const;

  StoreOptions options_;
  std::map<std::string, IndexFunc, std::less<>> named_indexes_;  // written before the writer starts
  mutable std::shared_mutex mu_;  // guards contents_ and resource_version_
  Contents contents_;
  std::string resource_version_;
};

}  // namespace millrace::controller
