#include "crds/meta.h"

#include <algorithm>

#include "crds/errors.h"

namespace millrace::api {

std::string_view ReasonText(std::string_view r) {
  if (r == reason::kRequired) return "Required value";
  if (r == reason::kInvalid || r == reason::kTypeInvalid) return "Invalid value";
  if (r == reason::kNotSupported) return "Unsupported value";
  if (r == reason::kDuplicate) return "Duplicate value";
  if (r == reason::kForbidden) return "Forbidden";
  if (r == reason::kNotFound) return "Not found";
  if (r == reason::kTooLong) return "Too long";
  if (r == reason::kTooMany) return "Too many";
  return r;
}

std::string ToString(const FieldError& error) {
  std::string out = error.path.empty() ? "<object>" : error.path;
  out += ": ";
  out += ReasonText(error.reason);
  if (!error.detail.empty()) out += ": " + error.detail;
  return out;
}

std::string ToString(const ValidationErrors& errors) {
  std::string out;
  for (const auto& e : errors) {
    if (!out.empty()) out += "\n";
    out += ToString(e);
  }
  return out;
}

const Condition* FindCondition(const std::vector<Condition>& conditions, std::string_view type) {
  const auto it = std::find_if(conditions.begin(), conditions.end(),
                               [&](const Condition& c) { return c.type == type; });
  return it == conditions.end() ? nullptr : &*it;
}

bool SetCondition(std::vector<Condition>& conditions, Condition condition) {
  for (auto& existing : conditions) {
    if (existing.type != condition.type) continue;
    if (existing.status == condition.status) {
      condition.last_transition_time = existing.last_transition_time;
    }
    const bool changed = existing.status != condition.status ||
                         existing.reason != condition.reason ||
                         existing.message != condition.message ||
                         existing.observed_generation != condition.observed_generation ||
                         existing.last_transition_time != condition.last_transition_time;
    existing = std::move(condition);
    return changed;
  }
  conditions.push_back(std::move(condition));
  return true;
}

Json ControllerReference(std::string_view api_version, std::string_view kind, std::string_view name,
                         std::string_view uid) {
  return Json{{"apiVersion", api_version},
              {"kind", kind},
              {"name", name},
              {"uid", uid},
              {"controller", true},
              {"blockOwnerDeletion", true}};
}

bool IsControlledBy(const Json& object, std::string_view owner_uid) {
  const auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return false;
  const auto refs = meta->find("ownerReferences");
  if (refs == meta->end() || !refs->is_array()) return false;
  for (const auto& ref : *refs) {
    if (!ref.is_object() || ref.value("controller", false) != true) continue;
    const auto uid = ref.find("uid");
    return uid != ref.end() && uid->is_string() && uid->get<std::string>() == owner_uid;
  }
  return false;
}

Json MergePatchReplacing(const Json& old_value, const Json& new_value) {
  if (!old_value.is_object() || !new_value.is_object()) return new_value;
  Json patch = Json::object();
  for (const auto& [key, value] : new_value.items()) {
    const auto old = old_value.find(key);
    patch[key] = old == old_value.end() ? value : MergePatchReplacing(*old, value);
  }
  for (const auto& [key, value] : old_value.items()) {
    if (!new_value.contains(key)) patch[key] = nullptr;
  }
  return patch;
}

}  // namespace millrace::api
