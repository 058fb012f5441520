#include "kubeclient/object.h"

namespace millrace::kube {
namespace {

const nlohmann::json& Metadata(const nlohmann::json& obj) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  if (!obj.is_object()) return kEmpty;
  const auto it = obj.find("metadata");
  return it != obj.end() && it->is_object() ? *it : kEmpty;
}

std::string MetaString(const nlohmann::json& obj, const char* field) {
  const auto& meta = Metadata(obj);
  const auto it = meta.find(field);
  return it != meta.end() && it->is_string() ? it->get<std::string>() : std::string();
}

nlohmann::json MetaValue(const nlohmann::json& obj, const char* field, nlohmann::json fallback) {
  const auto& meta = Metadata(obj);
  const auto it = meta.find(field);
  return it != meta.end() && !it->is_null() ? *it : fallback;
}

}  // namespace

std::string Name(const nlohmann::json& obj) { return MetaString(obj, "name"); }
std::string Namespace(const nlohmann::json& obj) { return MetaString(obj, "namespace"); }
std::string Uid(const nlohmann::json& obj) { return MetaString(obj, "uid"); }
std::string ResourceVersion(const nlohmann::json& obj) {
  return MetaString(obj, "resourceVersion");
}

int64_t Generation(const nlohmann::json& obj) {
  const auto& meta = Metadata(obj);
  const auto it = meta.find("generation");
  return it != meta.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

nlohmann::json Labels(const nlohmann::json& obj) {
  return MetaValue(obj, "labels", nlohmann::json::object());
}
nlohmann::json Annotations(const nlohmann::json& obj) {
  return MetaValue(obj, "annotations", nlohmann::json::object());
}
nlohmann::json OwnerReferences(const nlohmann::json& obj) {
  return MetaValue(obj, "ownerReferences", nlohmann::json::array());
}

std::string Key(const nlohmann::json& obj) {
  std::string ns = Namespace(obj);
  return ns.empty() ? Name(obj) : ns + "/" + Name(obj);
}

nlohmann::json MakeOwnerReference(const nlohmann::json& owner, bool controller,
                                  bool block_owner_deletion) {
  return {{"apiVersion", owner.value("apiVersion", "")},
          {"kind", owner.value("kind", "")},
          {"name", Name(owner)},
          {"uid", Uid(owner)},
          {"controller", controller},
          {"blockOwnerDeletion", block_owner_deletion}};
}

}  // namespace millrace::kube
