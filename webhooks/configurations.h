#pragma once

// The webhook configurations the operator keeps pointing at its self-signed CA.

#include <chrono>
#include <expected>
#include <string>
#include <string_view>
#include <thread>

#include "controller/logging.h"
#include "controller/runnable.h"
#include "kubeclient/client.h"

namespace millrace::webhooks {

// Sets clientConfig.caBundle of every webhook in the ValidatingWebhookConfiguration and the
// MutatingWebhookConfiguration called `name` (each one that exists) to `ca_pem`. Writes only what
// differs; an update that loses a race with another writer is read and retried.
std::expected<void, std::string> InjectCaBundle(kube::ReadWriter& client, const std::string& name,
                                                const std::string& ca_pem);

// Keeps the webhook configurations called `name` on `ca_pem` (InjectCaBundle every `period`):
// they may be created after the operator starts (kubectl apply of a whole directory) or rewritten
// by a redeploy. A runnable of the manager, on every replica: its client must have no write fence.
// A failure is logged when it differs from the last one.
class CaBundleInjector final : public controller::Runnable {
 public:
  CaBundleInjector(kube::ReadWriter& client, std::string name, std::string ca_pem,
                   controller::Logger logger,
                   std::chrono::milliseconds period = std::chrono::seconds{5});
  ~CaBundleInjector() override { Stop(); }
  CaBundleInjector(const CaBundleInjector&) = delete;
  CaBundleInjector& operator=(const CaBundleInjector&) = delete;

  std::string_view runnable_name() const override { return "CA injector"; }
  std::expected<void, std::string> Start() override;
  void Stop() override { thread_ = {}; }  // requests stop and joins

 private:
  void Run(const std::stop_token& stop);

  kube::ReadWriter& client_;
  const std::string name_;
  const std::string ca_pem_;
  const controller::Logger logger_;
  const std::chrono::milliseconds period_;
  std::jthread thread_;
};

}  // namespace millrace::webhooks
