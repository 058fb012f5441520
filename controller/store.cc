#include "controller/store.h"

#include <algorithm>
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

std::vector<std::string> IndexValues(const nlohmann::json& object, Index index) {
  std::vector<std::string> values;
  const nlohmann::json* metadata = Find(object, "metadata");
  if (metadata == nullptr) return values;
  switch (index) {
    case Index::kNamespace:
      if (auto ns = StringField(metadata, "namespace"); !ns.empty()) values.push_back(ns);
      break;
    case Index::kOwner:
    case Index::kControllerOwner:
      if (const auto* owners = Find(*metadata, "ownerReferences"); owners && owners->is_array()) {
        for (const auto& owner : *owners) {
          const auto* controller = Find(owner, "controller");
          const bool is_controller =
              controller != nullptr && controller->is_boolean() && controller->get<bool>();
          if (index == Index::kControllerOwner && !is_controller) continue;
          if (auto uid = StringField(&owner, "uid"); !uid.empty()) values.push_back(uid);
        }
      }
      break;
    case Index::kLabel:
      if (const auto* labels = Find(*metadata, "labels"); labels && labels->is_object()) {
        for (const auto& [k, v] : labels->items()) {
          if (v.is_string()) values.push_back(k + "=" + v.get<std::string>());
        }
      }
      break;
  }
  return values;
}

bool Changed(const nlohmann::json& before, const nlohmann::json& after) {
  const std::string rv_before = StringField(Find(before, "metadata"), "resourceVersion");
  const std::string rv_after = StringField(Find(after, "metadata"), "resourceVersion");
  if (!rv_before.empty() && !rv_after.empty()) return rv_before != rv_after;
  return before != after;
}

}  // namespace

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

void Store::Contents::Insert(const std::string& key, const Object& object) {
  for (std::size_t i = 0; i < indexes.size(); ++i) {
    for (auto& value : IndexValues(*object, static_cast<Index>(i))) {
      indexes[i][std::move(value)].insert(key);
    }
  }
  objects[key] = object;
}

void Store::Contents::Erase(const std::string& key, const Object& object) {
  for (std::size_t i = 0; i < indexes.size(); ++i) {
    for (const auto& value : IndexValues(*object, static_cast<Index>(i))) {
      const auto it = indexes[i].find(value);
      if (it == indexes[i].end()) continue;
      it->second.erase(key);
      if (it->second.empty()) indexes[i].erase(it);
    }
  }
  objects.erase(key);
}

Store::Store(StoreOptions options) : options_(std::move(options)) {}

Object Store::Prepare(nlohmann::json object) const {
  Trim(object);
  if (options_.trim) options_.trim(object);
  return std::make_shared<const nlohmann::json>(std::move(object));
}

Store::Change Store::Upsert(nlohmann::json object) {
  std::string key = ObjectKey(object);
  Object current = Prepare(std::move(object));
  std::unique_lock lock(mu_);
  Object previous;
  if (const auto it = contents_.objects.find(key); it != contents_.objects.end()) {
    previous = it->second;
    contents_.Erase(key, previous);
  }
  contents_.Insert(key, current);
  return Change{std::move(previous), std::move(current)};
}

Object Store::Delete(std::string_view key) {
  const std::string k(key);
  std::unique_lock lock(mu_);
  const auto it = contents_.objects.find(k);
  if (it == contents_.objects.end()) return nullptr;
  Object deleted = it->second;
  contents_.Erase(k, deleted);
  return deleted;
}

Store::ReplaceResult Store::Replace(std::vector<nlohmann::json> objects,
                                    std::string resource_version) {
  std::vector<Object> prepared;
  prepared.reserve(objects.size());
  for (auto& object : objects) prepared.push_back(Prepare(std::move(object)));
  objects.clear();
  return Replace(std::move(prepared), std::move(resource_version));
}

Store::ReplaceResult Store::Replace(std::vector<Object> prepared, std::string resource_version) {
  // Only this (writer) thread modifies contents_, so reading it here without the lock is safe.
  Contents next;
  for (auto& object : prepared) {
    std::string key = ObjectKey(*object);
    if (const auto cached = contents_.objects.find(key);
        cached != contents_.objects.end() && !Changed(*cached->second, *object)) {
      // Unchanged since it was cached: keep the cached copy and let the listed one go with the
      // rest of the list, so a relist leaves the heap as it found it instead of interleaving
      // new copies of everything with the old ones.
      object = cached->second;
    }
    if (const auto old = next.objects.find(key); old != next.objects.end()) {
      next.Erase(key, old->second);  // a duplicate in the list: the last one wins
    }
    next.Insert(key, object);
  }
  ReplaceResult result;
  for (const auto& [key, object] : next.objects) {
    const auto old = contents_.objects.find(key);
    if (old == contents_.objects.end()) {
      result.added.push_back(object);
    } else if (Changed(*old->second, *object)) {
      result.updated.push_back(Change{old->second, object});
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

Object Store::Get(std::string_view key) const {
  std::shared_lock lock(mu_);
  const auto it = contents_.objects.find(std::string(key));
  return it == contents_.objects.end() ? nullptr : it->second;
}

std::vector<Object> Store::List() const {
  std::vector<std::pair<std::string_view, Object>> keyed;
  std::shared_lock lock(mu_);
  keyed.reserve(contents_.objects.size());
  for (const auto& [key, object] : contents_.objects) keyed.emplace_back(key, object);
  std::sort(keyed.begin(), keyed.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Object> out;
  out.reserve(keyed.size());
  for (auto& [key, object] : keyed) out.push_back(std::move(object));
  return out;
}

std::vector<Object> Store::ByIndex(Index index, std::string_view value) const {
  std::vector<Object> out;
  std::shared_lock lock(mu_);
  const auto& by_value = contents_.indexes[static_cast<std::size_t>(index)];
  const auto it = by_value.find(value);
  if (it == by_value.end()) return out;
  out.reserve(it->second.size());
  for (const auto& key : it->second) out.push_back(contents_.objects.at(key));
  return out;
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
