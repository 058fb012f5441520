#include "reconcilers/apply.h"

#include <cstdint>
#include <cstdio>
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

nlohmann::json WithAppliedHash(nlohmann::json desired) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a, over the dump (object keys sorted)
  for (const char c : desired.dump()) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  desired["metadata"]["annotations"][std::string(kAppliedHashAnnotation)] = hex;
  return desired;
}

kube::Result<bool> ApplyIfChanged(kube::Client& client, const kube::ResourceRef& ref,
                                  const nlohmann::json& desired, const controller::Object& cached) {
  const nlohmann::json stamped = WithAppliedHash(desired);
  if (cached && Subsumes(*cached, stamped)) return false;
  auto applied = client.Apply(
      ref, stamped, kube::ApplyOptions{.field_manager = std::string(kFieldManager), .force = true});
  if (!applied) return std::unexpected(std::move(applied.error()));
  return true;
}

std::expected<void, ApplyFailure> ApplyChildren(
    kube::Client& client, const std::vector<nlohmann::json>& children,
    const std::function<controller::Object(std::string_view kind, const std::string& key)>&
        cached) {
  for (const nlohmann::json& child : children) {
    const std::string kind = child.value("kind", "");
    const kube::ResourceRef* ref = ResourceFor(child.value("apiVersion", ""), kind);
    if (ref == nullptr) continue;
    const auto& meta = child["metadata"];
    const std::string ns = meta.value("namespace", "");
    const std::string name = meta.value("name", "");
    auto applied =
        ApplyIfChanged(client, *ref, child, cached(kind, ns.empty() ? name : ns + "/" + name));
    if (!applied)
      return std::unexpected(ApplyFailure{kind + " " + name, std::move(applied.error())});
  }
  return {};
}

std::optional<std::string> DeleteChildren(kube::Client& client,
                                          const std::vector<ChildRef>& children) {
  for (const ChildRef& child : children) {
    const kube::ResourceRef* ref = ResourceFor(child.api_version, child.kind);
    if (ref == nullptr) continue;
    auto deleted = client.Delete(*ref, child.namespace_, child.name,
                                 {.propagation_policy = "Background",
                                  .grace_period_seconds = std::nullopt,
                                  .precondition_uid = {},
                                  .precondition_resource_version = {},
                                  .dry_run = false});
    if (!deleted && !deleted.error().IsNotFound()) {
      return "deleting " + child.kind + " " + child.name + ": " + deleted.error().ToString();
    }
  }
  return std::nullopt;
}

std::optional<std::string> PatchStatusIfChanged(kube::Client& client, const kube::ResourceRef& ref,
                                                const api::ObjectMeta& object,
                                                const nlohmann::json& patch,
                                                controller::MutationCache& written) {
  if (patch.is_null()) return std::nullopt;
  // Conditional on the resourceVersion the status was planned from: a write by anyone else since
  // (another replica, a user's edit) makes it a Conflict, retried on a fresh read, instead of one
  // status silently overwriting the other.
  nlohmann::json conditional = patch;
  conditional["metadata"]["resourceVersion"] = object.resource_version;
  auto patched = client.PatchStatus(ref, object.namespace_, object.name, conditional);
  if (patched) {
    written.Written(object.resource_version, std::move(*patched));
  } else if (!patched.error().IsNotFound()) {
    return "patching the status: " + patched.error().ToString();
  }
  return std::nullopt;
}

controller::MutationCache WrittenCache(controller::Informer& informer) {
  controller::MutationCache written(informer.store());
  informer.AddHandler(written.Observer());
  return written;
}

controller::Informer& AddInformer(controller::Manager& manager, const kube::ResourceRef& ref,
                                  std::string label_selector) {
  controller::InformerOptions options;
  options.resource = ref;
  options.label_selector = std::move(label_selector);
  return manager.AddInformer(std::move(options));
}

std::string ManagedBySelector() {
  return std::string(kManagedByLabel) + "=" + std::string(kManagedByValue);
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
