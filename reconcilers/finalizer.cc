#include "reconcilers/finalizer.h"

#include <algorithm>

namespace millrace::reconcilers {
namespace {

kube::Result<nlohmann::json> PatchFinalizers(kube::Writer& client, const kube::ResourceRef& ref,
                                             std::string_view ns, std::string_view name,
                                             const std::string& resource_version,
                                             nlohmann::json list) {
  const nlohmann::json patch = {
      {"metadata", {{"finalizers", std::move(list)}, {"resourceVersion", resource_version}}}};
  return client.Patch(ref, ns, name, patch);
}

}  // namespace

bool HasFinalizer(const std::vector<std::string>& finalizers, std::string_view finalizer) {
  return std::ranges::find(finalizers, finalizer) != finalizers.end();
}

kube::Result<nlohmann::json> AddFinalizer(kube::Writer& client, const kube::ResourceRef& ref,
                                          std::string_view ns, std::string_view name,
                                          const std::string& resource_version,
                                          const std::vector<std::string>& finalizers,
                                          std::string_view finalizer) {
  nlohmann::json list = finalizers;
  list.push_back(finalizer);
  return PatchFinalizers(client, ref, ns, name, resource_version, std::move(list));
}

kube::Result<void> RemoveFinalizer(kube::Writer& client, const kube::ResourceRef& ref,
                                   std::string_view ns, std::string_view name,
                                   const std::string& resource_version,
                                   const std::vector<std::string>& finalizers,
                                   std::string_view finalizer) {
  nlohmann::json list = nlohmann::json::array();
  for (const std::string& f : finalizers) {
    if (f != finalizer) list.push_back(f);
  }
  auto patched = PatchFinalizers(client, ref, ns, name, resource_version, std::move(list));
  if (!patched && !patched.error().IsNotFound()) return std::unexpected(patched.error());
  return {};
}

}  // namespace millrace::reconcilers
