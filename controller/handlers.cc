#include "controller/handlers.h"

#include <utility>

namespace millrace::controller {
namespace {

const nlohmann::json& Metadata(const nlohmann::json& object) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  const auto it = object.find("metadata");
  return it != object.end() && it->is_object() ? *it : kEmpty;
}

nlohmann::json Field(const nlohmann::json& meta, const char* name) {
  const auto it = meta.find(name);
  return it == meta.end() ? nlohmann::json() : *it;
}

std::string_view GroupOf(std::string_view api_version) {
  const auto slash = api_version.find('/');
  return slash == std::string_view::npos ? std::string_view{} : api_version.substr(0, slash);
}

bool IsUpdate(const ObjectEvent& event) {
  return event.type == ObjectEvent::Type::kUpdated && event.previous && event.current;
}

}  // namespace

bool AnyChange(const ObjectEvent& event) {
  if (!IsUpdate(event) || event.previous == event.current) return true;  // resyncs pass
  return Field(Metadata(*event.previous), "resourceVersion") !=
         Field(Metadata(*event.current), "resourceVersion");
}

bool GenerationOrMetadataChanged(const ObjectEvent& event) {
  if (!IsUpdate(event) || event.previous == event.current) return true;
  const auto& before = Metadata(*event.previous);
  const auto& after = Metadata(*event.current);
  for (const char* field :
       {"generation", "labels", "annotations", "finalizers", "deletionTimestamp"}) {
    if (Field(before, field) != Field(after, field)) return true;
  }
  return false;
}

std::optional<std::string> ControllerOwnerKey(const nlohmann::json& child,
                                              const OwnerMatch& owner) {
  const auto& meta = Metadata(child);
  const auto refs = meta.find("ownerReferences");
  if (refs == meta.end() || !refs->is_array()) return std::nullopt;
  for (const auto& ref : *refs) {
    if (!ref.is_object() || !ref.value("controller", false)) continue;
    if (ref.value("kind", std::string{}) != owner.kind) continue;
    if (GroupOf(ref.value("apiVersion", std::string{})) != owner.group) continue;
    const std::string name = ref.value("name", std::string{});
    if (name.empty()) return std::nullopt;
    if (!owner.owner_namespaced) return name;
    const std::string ns = meta.value("namespace", std::string{});
    return ns.empty() ? std::nullopt : std::optional<std::string>(ns + "/" + name);
  }
  return std::nullopt;
}

EventHandler EnqueueObject(WorkQueue& queue, Predicate predicate) {
  return [&queue, predicate = std::move(predicate)](const ObjectEvent& event) {
    if (predicate && !predicate(event)) return;
    queue.Add(ObjectKey(*event.current));
  };
}

EventHandler EnqueueOwner(WorkQueue& queue, OwnerMatch owner, Predicate predicate) {
  return [&queue, owner = std::move(owner),
          predicate = std::move(predicate)](const ObjectEvent& event) {
    if (predicate && !predicate(event)) return;
    std::optional<std::string> now = ControllerOwnerKey(*event.current, owner);
    if (now) queue.Add(*now);
    if (event.previous && event.previous != event.current) {
      if (auto before = ControllerOwnerKey(*event.previous, owner); before && before != now) {
        queue.Add(*before);
      }
    }
  };
}

EventHandler EnqueueMapped(WorkQueue& queue,
                           std::function<std::vector<std::string>(const nlohmann::json&)> map,
                           Predicate predicate) {
  return
      [&queue, map = std::move(map), predicate = std::move(predicate)](const ObjectEvent& event) {
        if (predicate && !predicate(event)) return;
        for (const auto& key : map(*event.current)) queue.Add(key);
      };
}

}  // namespace millrace::controller
