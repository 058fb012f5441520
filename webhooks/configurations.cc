#include "webhooks/configurations.h"

#include <array>

#include "webhooks/base64.h"

namespace millrace::webhooks {
namespace {

const kube::ResourceRef kValidatingWebhookConfigurations{"admissionregistration.k8s.io", "v1",
                                                         "validatingwebhookconfigurations", false,
                                                         "ValidatingWebhookConfiguration"};
const kube::ResourceRef kMutatingWebhookConfigurations{"admissionregistration.k8s.io", "v1",
                                                       "mutatingwebhookconfigurations", false,
                                                       "MutatingWebhookConfiguration"};

}  // namespace

std::expected<void, std::string> InjectCaBundle(kube::Client& client, const std::string& name,
                                                const std::string& ca_pem) {
  const std::string bundle = Base64(ca_pem);
  for (const kube::ResourceRef* ref :
       std::array{&kValidatingWebhookConfigurations, &kMutatingWebhookConfigurations}) {
    for (int attempt = 0;; ++attempt) {
      auto current = client.Get(*ref, "", name);
      if (!current && current.error().kind == kube::ErrorKind::kNotFound) break;
      if (!current)
        return std::unexpected(ref->kind + " " + name + ": " + current.error().ToString());
      bool changed = false;
      for (auto& webhook : (*current)["webhooks"]) {
        auto& client_config = webhook["clientConfig"];
        if (client_config.value("caBundle", "") != bundle) {
          client_config["caBundle"] = bundle;
          changed = true;
        }
      }
      if (!changed) break;
      auto updated = client.Update(*ref, *current);
      if (updated) break;
      if (updated.error().kind != kube::ErrorKind::kConflict || attempt >= 5) {
        return std::unexpected(ref->kind + " " + name + ": " + updated.error().ToString());
      }
    }
  }
  return {};
}

}  // namespace millrace::webhooks
