#include "reconcilers/apply.h"

#include <ctime>

namespace millrace::reconcilers {

bool Subsumes(const nlohmann::json& live, const nlohmann::json& desired) {
  if (desired.is_object()) {
    if (!live.is_object()) return false;
    for (const auto& [key, value] : desired.items()) {
      const auto it = live.find(key);
      if (it == live.end()) {
        if (!value.is_null()) return false;
        continue;
      }
      if (!Subsumes(*it, value)) return false;
    }
    return true;
  }
  if (desired.is_array()) {
    if (!live.is_array() || live.size() != desired.size()) return false;
    for (size_t i = 0; i < desired.size(); ++i) {
      if (!Subsumes(live[i], desired[i])) return false;
    }
    return true;
  }
  return live == desired;
}

kube::Result<bool> ApplyIfChanged(kube::Client& client, const kube::ResourceRef& ref,
                                  const nlohmann::json& desired, const controller::Object& cached) {
  if (cached && Subsumes(*cached, desired)) return false;
  auto applied = client.Apply(
      ref, desired, kube::ApplyOptions{.field_manager = std::string(kFieldManager), .force = true});
  if (!applied) return std::unexpected(std::move(applied.error()));
  return true;
}

std::string NowRfc3339() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const kube::ResourceRef* ResourceFor(std::string_view api_version, std::string_view kind) {
  static const kube::ResourceRef* const kAll[] = {
      &resources::kResourceQuotas,
      &resources::kLimitRanges,
      &resources::kNodes,
      &resources::kNetworkPolicies,
      &resources::kRoleBindings,
      &resources::kPriorityClasses,
      &resources::kZones,
      &kube::resources::kNamespaces,
      &kube::resources::kConfigMaps,
      &kube::resources::kSecrets,
      &kube::resources::kPods,
      &kube::resources::kServices,
      &kube::resources::kDeployments,
      &kube::resources::kJobs,
      &resources::kHorizontalPodAutoscalers,
      &resources::kTasks,
  };
  for (const kube::ResourceRef* ref : kAll) {
    if (ref->kind == kind && ref->ApiVersion() == api_version) return ref;
  }
  return nullptr;
}

}  // namespace millrace::reconcilers
