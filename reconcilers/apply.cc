#include "reconcilers/apply.h"

#include <cstdint>
#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace millrace::reconcilers {

bool Subsumes(const nlohmann::json& live, const nlohmann::json& desired) {
  if (desired.is_object()) {
    if (!live.is_object()) return false;
    for (auto field = desired.begin(); field != desired.end(); ++field) {
      const auto it = live.find(field.key());
      if (it == live.end()) {
        if (!field->is_null()) return false;
        continue;
      }
      if (!Subsumes(*it, *field)) return false;
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

kube::Result<bool> ApplyIfChanged(kube::Writer& client, const kube::ResourceRef& ref,
                                  const nlohmann::json& desired, const controller::Object& cached) {
  const nlohmann::json stamped = WithAppliedHash(desired);
  if (cached && Subsumes(*cached, stamped)) return false;
  auto applied = client.Apply(
      ref, stamped, kube::ApplyOptions{.field_manager = std::string(kFieldManager), .force = true});
  if (!applied) return std::unexpected(std::move(applied.error()));
  return true;
}

std::expected<int, ApplyFailure> ApplyChildren(kube::Writer& client,
                                               const std::vector<nlohmann::json>& children,
                                               const controller::Caches& caches) {
  int written = 0;
  for (const nlohmann::json& child : children) {
    const std::string kind = child.value("kind", "");
    const kube::ResourceRef& ref = ResourceOf(child.value("apiVersion", ""), kind);
    const std::string name = child["metadata"].value("name", "");
    auto applied =
        ApplyIfChanged(client, ref, child, caches.Of(ref).Get(controller::ObjectKey(child)));
    if (!applied) {
      std::string what = kind;
      what.append(" ").append(name);
      return std::unexpected(ApplyFailure{std::move(what), std::move(applied.error())});
    }
    written += *applied ? 1 : 0;
  }
  return written;
}

std::expected<void, ApplyFailure> DeleteChildren(kube::Writer& client,
                                                 const std::vector<ChildRef>& children) {
  for (const ChildRef& child : children) {
    auto deleted =
        client.Delete(ResourceOf(child.api_version, child.kind), child.namespace_, child.name,
                      {.propagation_policy = "Background",
                       .grace_period_seconds = std::nullopt,
                       .precondition_uid = child.uid,
                       .precondition_resource_version = {},
                       .dry_run = false});
    if (!deleted && !deleted.error().IsNotFound()) {
      return std::unexpected(
          ApplyFailure{child.kind + " " + child.name, std::move(deleted.error())});
    }
  }
  return {};
}

kube::Result<void> PatchStatusIfChanged(kube::StatusWriter& client, const kube::ResourceRef& ref,
                                        const api::ObjectMeta& object, const nlohmann::json& patch,
                                        controller::MutationCache& written) {
  if (patch.is_null()) return {};
  // Conditional on the resourceVersion the status was planned from: a write by anyone else since
  // (another replica, a user's edit) makes it a Conflict, retried on a fresh read, instead of one
  // status silently overwriting the other.
  nlohmann::json conditional = patch;
  conditional["metadata"]["resourceVersion"] = object.resource_version;
  auto patched = client.PatchStatus(ref, object.namespace_, object.name, conditional);
  if (patched) {
    written.Written(object.resource_version, std::move(*patched));
  } else if (!patched.error().IsNotFound()) {
    return std::unexpected(std::move(patched.error()));
  }
  return {};
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
  for (const kube::ResourceRef* ref : kube::resources::kWellKnown) {
    if (ref->kind == kind && ref->ApiVersion() == api_version) return ref;
  }
  for (const kube::ResourceRef* ref : api::kKindResources) {
    if (ref->kind == kind && ref->ApiVersion() == api_version) return ref;
  }
  return nullptr;
}

const kube::ResourceRef& ResourceOf(std::string_view api_version, std::string_view kind) {
  const kube::ResourceRef* ref = ResourceFor(api_version, kind);
  if (ref == nullptr) {
    throw std::logic_error("Millrace writes no " + std::string(kind) + " of " +
                           std::string(api_version) + ": add it to ResourceFor()");
  }
  return *ref;
}

}  // namespace millrace::reconcilers
