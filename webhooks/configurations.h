#pragma once

// The webhook configurations the operator keeps pointing at its self-signed CA.

#include <expected>
#include <string>

#include "kubeclient/client.h"

namespace millrace::webhooks {

// Sets clientConfig.caBundle of every webhook in the ValidatingWebhookConfiguration and the
// MutatingWebhookConfiguration called `name` (each one that exists) to `ca_pem`. Writes only what
// differs; an update that loses a race with another writer is read and retried.
std::expected<void, std::string> InjectCaBundle(kube::Client& client, const std::string& name,
                                                const std::string& ca_pem);

}  // namespace millrace::webhooks
