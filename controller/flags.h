#pragma once

#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controller/clock.h"

namespace millrace::controller {

// millrace-controller's command line.
struct Flags {
  std::string kubeconfig;  // "" = $KUBECONFIG, in-cluster, then ~/.kube/config
  std::string context;
  double kube_api_qps = 50;
  int kube_api_burst = 100;
  std::string bind_address = ":8080";  // /healthz, /readyz, /metrics; "0" disables
  bool leader_elect = false;
  std::string leader_election_namespace;  // "" = $POD_NAMESPACE, else the kubeconfig namespace
  std::string leader_election_id = "millrace-controller";
  Duration lease_duration = std::chrono::seconds{15};
  Duration renew_deadline = std::chrono::seconds{10};
  Duration retry_period = std::chrono::seconds{1};
  int workers = 16;                        // per controller
  Duration cache_sync_timeout = std::chrono::minutes{2};
  std::string webhook_bind_address = "0";  // the admission webhooks' HTTPS port; "0" disables
  std::string webhook_cert_dir;            // tls.crt/tls.key, reloaded on change; "" = self-signed
  std::vector<std::string> webhook_hosts = {"millrace-webhook.millrace-system.svc", "localhost",
                                            "127.0.0.1"};  // the self-signed certificate's SANs
  std::string webhook_configuration;  // Validating/MutatingWebhookConfiguration to give our CA
  std::string log_level = "info";
  bool help = false;
  bool version = false;
};

// Parses `--name=value`, `--name value` and bare booleans (`--leader-elect`). Unknown flags and
// bad values are errors naming the flag.
std::expected<Flags, std::string> ParseFlags(const std::vector<std::string_view>& args);
std::string FlagsUsage();

// "500ms", "15s", "2m", "1h", "1m30s".
std::optional<Duration> ParseFlagDuration(std::string_view text);
// ":8080" -> {"0.0.0.0", 8080}; "127.0.0.1:0" -> any free port.
std::optional<std::pair<std::string, uint16_t>> ParseBindAddress(std::string_view text);

}  // namespace millrace::controller
