#include "webhooks/configurations.h"

#include <array>
#include <condition_variable>
#include <mutex>
#include <utility>

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

std::expected<void, std::string> InjectCaBundle(kube::ReadWriter& client, const std::string& name,
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

CaBundleInjector::CaBundleInjector(kube::ReadWriter& client, std::string name, std::string ca_pem,
                                   controller::Logger logger, std::chrono::milliseconds period)
    : client_(client),
      name_(std::move(name)),
      ca_pem_(std::move(ca_pem)),
      logger_(std::move(logger)),
      period_(period) {}

std::expected<void, std::string> CaBundleInjector::Start() {
  thread_ = std::jthread([this](const std::stop_token& stop) { Run(stop); });
  return {};
}

void CaBundleInjector::Run(const std::stop_token& stop) {
  std::string last_error;
  std::mutex mu;
  std::condition_variable_any cv;
  for (;;) {
    auto injected = InjectCaBundle(client_, name_, ca_pem_);
    const std::string error = injected ? "" : injected.error();
    if (!error.empty() && error != last_error) {
      logger_.With("error", error).Warn("cannot set the webhook configurations' caBundle");
    }
    last_error = error;
    std::unique_lock lock(mu);
    if (cv.wait_for(lock, stop, period_, [] { return false; }) || stop.stop_requested()) return;
  }
}

}  // namespace millrace::webhooks
