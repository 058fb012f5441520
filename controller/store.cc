#include "controller/store.h"

#include <algorithm>
#include <iterator>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace millrace::controller {
namespace {

constexpr std::string_view kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";

const nlohmann::json* Find(const nlohmann::json& object, std::string_view field) {
  if (!object.is_object()) return nullptr;
  const auto it = object.find(field);
  return it == object.end() ? nullptr : &*it;
}

std::string StringField(const nlohmann::json* object, std::string_view field) {
  if (object == nullptr) return {};
  const nlohmann::json* value = Find(*object, field);
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string{};
}

// Compares resourceVersions; without one (objects made by hand), the packed contents.
bool Changed(const PackedObject& before, const PackedObject& after) {
  if (!before.resource_version.empty() && !after.resource_version.empty()) {
    return before.resource_version != after.resource_version;
  }
  return before.bytes != after.bytes;
}

}  // namespace

std::string ResourceVersionOf(const nlohmann::json& object) {
  return StringField(Find(object, "metadata"), "resourceVersion");
}

std::string ObjectKey(const nlohmann::json& object) {
  const nlohmann::json* metadata = Find(object, "metadata");
  const std::string name = StringField(metadata, "name");
  if (name.empty()) throw std::invalid_argument("object without metadata.name");
  const std::string ns = StringField(metadata, "namespace");
  return ns.empty() ? name : ns + "/" + name;
}

void Trim(nlohmann::json& object) {
  // Lookups by key rather than iterators: -Wnull-dereference misfires on nlohmann's iterators.
  if (!object.is_object() || !object.contains("metadata")) return;
  nlohmann::json& metadata = object["metadata"];
  if (!metadata.is_object()) return;
  metadata.erase("managedFields");
  if (!metadata.contains("annotations")) return;
  nlohmann::json& annotations = metadata["annotations"];
  if (!annotations.is_object()) return;
  annotations.erase(std::string(kLastApplied));
  if (annotations.empty()) metadata.erase("annotations");
}

Object PackedObject::Unpack() const {
  return std::make_shared<const nlohmann::json>(nlohmann::json::from_msgpack(bytes));
}

Store::IndexValues Store::ValuesOf(const nlohmann::json& object) const {
  IndexValues values(kBuiltInIndexes + named_indexes_.size());
  std::size_t named = kBuiltInIndexes;
  for (const auto& [name, index] : named_indexes_) values[named++] = index(object);
  const nlohmann::json* metadata = Find(object, "metadata");
  if (metadata == nullptr) return values;
  if (auto ns = StringField(metadata, "namespace"); !ns.empty()) {
    values[static_cast<std::size_t>(Index::kNamespace)].push_back(std::move(ns));
  }
  if (const auto* owners = Find(*metadata, "ownerReferences"); owners && owners->is_array()) {
    for (const auto& owner : *owners) {
      const auto* controller = Find(owner, "controller");
      if (controller == nullptr || !controller->is_boolean() || !controller->get<bool>()) continue;
      if (auto uid = StringField(&owner, "uid"); !uid.empty()) {
        values[static_cast<std::size_t>(Index::kControllerOwner)].push_back(std::move(uid));
      }
    }
  }
  if (const auto* labels = Find(*metadata, "labels"); labels && labels->is_object()) {
    for (const auto& key : options_.indexed_labels) {
      if (const auto* value = Find(*labels, key); value != nullptr && value->is_string()) {
        values[static_cast<std::size_t>(Index::kLabel)].push_back(key + "=" +
                                                                  value->get<std::string>());
      }
    }
  }
  return values;
}

Packed Store::Pack(const nlohmann::json& object, std::string key) const {
  auto packed = std::make_shared<PackedObject>();
  packed->key = std::move(key);
  packed->resource_version = ResourceVersionOf(object);
  nlohmann::json::to_msgpack(object, packed->bytes);
  packed->bytes.shrink_to_fit();  // to_msgpack grows it by doubling
  return packed;
}

void Store::Contents::Insert(Packed object, const IndexValues& values) {
  const std::string_view key = object->key;
  for (std::size_t i = 0; i < std::min(indexes.size(), values.size()); ++i) {
    for (const auto& value : values[i]) indexes[i][value].insert(key);
  }
  objects.emplace(key, std::move(object));
}

void Store::Contents::Erase(std::string_view key, const IndexValues& values) {
  for (std::size_t i = 0; i < std::min(indexes.size(), values.size()); ++i) {
    for (const auto& value : values[i]) {
      const auto it = indexes[i].find(value);
      if (it == indexes[i].end()) continue;
      it->second.erase(key);
      if (it->second.empty()) indexes[i].erase(it);
    }
  }
  objects.erase(key);  // last: `key` views the erased object's own key
}

Store::Store(StoreOptions options) : options_(std::move(options)) {
  contents_.indexes.resize(kBuiltInIndexes);
}

Store::Prepared Store::Prepare(nlohmann::json object) const {
  std::string key = ObjectKey(object);
  Trim(object);
  if (options_.trim) options_.trim(object);
  return Prepared{.object = Pack(object, std::move(key)), .index_values = ValuesOf(object)};
}

Store::Change Store::Upsert(nlohmann::json object) {
  std::string key = ObjectKey(object);
  Trim(object);
  if (options_.trim) options_.trim(object);
  const IndexValues values = ValuesOf(object);
  Packed packed = Pack(object, std::move(key));
  Change change{.previous = nullptr,
                .current = std::make_shared<const nlohmann::json>(std::move(object))};
  // Only this (writer) thread modifies contents_, so reading it here without the lock is safe;
  // the previous object is unpacked before the lock is taken.
  IndexValues previous_values;
  const auto it = contents_.objects.find(packed->key);
  if (it != contents_.objects.end()) {
    change.previous = it->second->Unpack();
    previous_values = ValuesOf(*change.previous);
  }
  std::unique_lock lock(mu_);
  if (change.previous != nullptr) contents_.Erase(packed->key, previous_values);
  contents_.Insert(std::move(packed), values);
  return change;
}

Object Store::Delete(std::string_view key) {
  const auto it = contents_.objects.find(key);  // writer thread: see Upsert
  if (it == contents_.objects.end()) return nullptr;
  Packed packed = it->second;  // keeps `key`'s storage alive through the erase
  Object deleted = packed->Unpack();
  const IndexValues values = ValuesOf(*deleted);
  std::unique_lock lock(mu_);
  contents_.Erase(packed->key, values);
  return deleted;
}

Store::ReplaceResult Store::Replace(std::vector<nlohmann::json> objects,
                                    std::string resource_version) {
  std::vector<Prepared> prepared;
  prepared.reserve(objects.size());
  for (auto& object : objects) prepared.push_back(Prepare(std::move(object)));
  objects.clear();
  return Replace(std::move(prepared), std::move(resource_version));
}

Store::ReplaceResult Store::Replace(std::vector<Prepared> prepared, std::string resource_version) {
  // Only this (writer) thread modifies contents_, so reading it here without the lock is safe.
  Contents next;
  next.indexes.resize(contents_.indexes.size());
  for (auto& [object, values] : prepared) {
    if (const auto cached = contents_.objects.find(object->key);
        cached != contents_.objects.end() && !Changed(*cached->second, *object)) {
      // Unchanged since it was cached: keep the cached copy and let the listed one go.
      object = cached->second;
    }
    if (const auto old = next.objects.find(object->key); old != next.objects.end()) {
      // A duplicate in the list: the last one wins.
      const Packed duplicate = old->second;
      next.Erase(duplicate->key, ValuesOf(*duplicate->Unpack()));
    }
    next.Insert(std::move(object), values);
  }
  prepared.clear();
  ReplaceResult result;
  for (const auto& [key, object] : next.objects) {
    const auto old = contents_.objects.find(key);
    if (old == contents_.objects.end()) {
      result.added.push_back(object);
    } else if (Changed(*old->second, *object)) {
      result.updated.emplace_back(old->second, object);
    }
  }
  for (const auto& [key, object] : contents_.objects) {
    if (!next.objects.contains(key)) result.deleted.push_back(object);
  }
  {
    std::unique_lock lock(mu_);
    std::swap(contents_, next);
    resource_version_ = std::move(resource_version);
  }
  return result;  // `next` (the old contents) is freed off the lock
}

void Store::SetLastSyncResourceVersion(std::string resource_version) {
  std::unique_lock lock(mu_);
  resource_version_ = std::move(resource_version);
}

void Store::IndexLabels(const std::vector<std::string>& keys) {
  std::unique_lock lock(mu_);
  bool added = false;
  for (const auto& key : keys) {
    if (std::find(options_.indexed_labels.begin(), options_.indexed_labels.end(), key) ==
        options_.indexed_labels.end()) {
      options_.indexed_labels.push_back(key);
      added = true;
    }
  }
  if (added) RebuildIndexLocked(static_cast<std::size_t>(Index::kLabel));
}

void Store::AddIndex(std::string name, IndexFunc values) {
  std::unique_lock lock(mu_);
  const auto [it, added] = named_indexes_.insert_or_assign(std::move(name), std::move(values));
  const auto at =
      kBuiltInIndexes + static_cast<std::size_t>(std::distance(named_indexes_.begin(), it));
  if (added) {
    contents_.indexes.emplace(contents_.indexes.begin() + static_cast<std::ptrdiff_t>(at));
  }
  RebuildIndexLocked(at);
}

void Store::RebuildIndexLocked(std::size_t index) {
  auto& by_value = contents_.indexes[index];
  by_value.clear();
  for (const auto& [key, object] : contents_.objects) {
    const IndexValues values = ValuesOf(*object->Unpack());
    for (const auto& value : values[index]) by_value[value].insert(key);
  }
}

Object Store::Get(std::string_view key) const {
  Packed packed;
  {
    std::shared_lock lock(mu_);
    const auto it = contents_.objects.find(key);
    if (it == contents_.objects.end()) return nullptr;
    packed = it->second;
  }
  return packed->Unpack();
}

namespace {

std::vector<Object> UnpackAll(const std::vector<Packed>& packed) {
  std::vector<Object> out;
  out.reserve(packed.size());
  for (const auto& p : packed) out.push_back(p->Unpack());
  return out;
}

}  // namespace

std::string Store::ResourceVersion(std::string_view key) const {
  std::shared_lock lock(mu_);
  const auto it = contents_.objects.find(key);
  return it == contents_.objects.end() ? std::string{} : it->second->resource_version;
}

std::vector<Object> Store::List() const {
  std::vector<Packed> packed;
  {
    std::shared_lock lock(mu_);
    packed.reserve(contents_.objects.size());
    for (const auto& [key, object] : contents_.objects) packed.push_back(object);
  }
  std::sort(packed.begin(), packed.end(),
            [](const Packed& a, const Packed& b) { return a->key < b->key; });
  return UnpackAll(packed);
}

std::vector<std::string> Store::ListKeys() const {
  std::vector<std::string> keys;
  {
    std::shared_lock lock(mu_);
    keys.reserve(contents_.objects.size());
    for (const auto& [key, object] : contents_.objects) keys.emplace_back(key);
  }
  std::sort(keys.begin(), keys.end());
  return keys;
}

std::vector<Object> Store::ByIndex(Index index, std::string_view value) const {
  return ByIndexAt(static_cast<std::size_t>(index), value);
}

std::vector<Object> Store::ByIndex(std::string_view index, std::string_view value) const {
  const auto it = named_indexes_.find(index);
  if (it == named_indexes_.end()) return {};
  return ByIndexAt(
      kBuiltInIndexes + static_cast<std::size_t>(std::distance(named_indexes_.begin(), it)), value);
}

std::vector<Object> Store::ByIndexAt(std::size_t index, std::string_view value) const {
  std::vector<Packed> packed;
  {
    std::shared_lock lock(mu_);
    const auto& by_value = contents_.indexes[index];
    const auto it = by_value.find(value);
    if (it == by_value.end()) return {};
    packed.reserve(it->second.size());
    for (const auto key : it->second) packed.push_back(contents_.objects.at(key));
  }
  return UnpackAll(packed);
}

std::size_t Store::size() const {
  std::shared_lock lock(mu_);
  return contents_.objects.size();
}

std::string Store::last_sync_resource_version() const {
  std::shared_lock lock(mu_);
  return resource_version_;
}

}  // namespace millrace::controller
