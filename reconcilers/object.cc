#include "reconcilers/object.h"

#include <chrono>

namespace millrace::reconcilers {

using nlohmann::json;

std::string Str(const json& j, std::string_view key) {
  if (!j.is_object()) return {};
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

const json& Sub(const json& j, std::string_view key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  const auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

int64_t Int(const json& j, std::string_view key, int64_t fallback) {
  const json& v = Sub(j, key);
  return v.is_number_integer() ? v.get<int64_t>() : fallback;
}

std::optional<api::Time> TimeOf(const json& j, std::string_view key) {
  const std::string s = Str(j, key);
  if (s.empty()) return std::nullopt;
  auto t = api::ParseTime(s);
  return t ? std::optional<api::Time>(*t) : std::nullopt;
}

const json* TrueCondition(const json& object, std::string_view type) {
  const json& conditions = Sub(Sub(object, "status"), "conditions");
  if (!conditions.is_array()) return nullptr;
  for (const json& c : conditions) {
    if (Str(c, "type") == type && Str(c, "status") == "True") return &c;
  }
  return nullptr;
}

std::optional<json> ControlledBy(const controller::Store& store, const std::string& key,
                                 const std::string& owner_uid) {
  const controller::Object o = store.Get(key);
  if (!o || !api::IsControlledBy(*o, owner_uid)) return std::nullopt;
  return *o;
}

std::string Truncate(std::string s, size_t max) {
  if (s.size() <= max) return s;
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  s.resize(cut);
  return s + "...";
}

api::Time Now() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

void RecordEvent(controller::EventRecorder& recorder, std::string_view kind,
                 const api::ObjectMeta& object, const PlannedEvent& event) {
  recorder.Record(controller::EventSpec{
      .regarding = {.api_version = std::string(api::kApiVersion),
                    .kind = std::string(kind),
                    .ns = object.namespace_,
                    .name = object.name,
                    .uid = object.uid},
      .type = event.type,
      .reason = event.reason,
      .action = "Reconcile",
      .note = event.note,
  });
}

}  // namespace millrace::reconcilers
