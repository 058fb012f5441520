#include "controller/flags.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <map>

namespace millrace::controller {
namespace {

template <typename T>
bool ParseNumber(std::string_view text, T& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc{} && ptr == end;
}

std::optional<bool> ParseBool(std::string_view text) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  return std::nullopt;
}

}  // namespace

std::optional<Duration> ParseFlagDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  Duration total{};
  while (!text.empty()) {
    size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
    int64_t n = 0;
    if (digits == 0 || !ParseNumber(text.substr(0, digits), n)) return std::nullopt;
    text.remove_prefix(digits);
    if (text.starts_with("ms")) {
      total += std::chrono::milliseconds{n};
      text.remove_prefix(2);
    } else if (text.starts_with('s')) {
      total += std::chrono::seconds{n};
      text.remove_prefix(1);
    } else if (text.starts_with('m')) {
      total += std::chrono::minutes{n};
      text.remove_prefix(1);
    } else if (text.starts_with('h')) {
      total += std::chrono::hours{n};
      text.remove_prefix(1);
    } else {
      return std::nullopt;
    }
  }
  return total;
}

std::optional<std::pair<std::string, uint16_t>> ParseBindAddress(std::string_view text) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  uint16_t port = 0;
  if (!ParseNumber(text.substr(colon + 1), port)) return std::nullopt;
  std::string host(text.substr(0, colon));
  return std::pair{host.empty() ? std::string("0.0.0.0") : host, port};
}

std::string FlagsUsage() {
  return R"(Usage: millrace-controller [flags]

Runs the Millrace operator: Zone, Task, Pipeline and ModelVersion controllers.

Flags:
  --kubeconfig PATH                 kubeconfig file (default: $KUBECONFIG, in-cluster, ~/.kube/config)
  --context NAME                    kubeconfig context (default: current-context)
  --kube-api-qps N                  client-side rate limit to the API server (default 50)
  --kube-api-burst N                burst above the rate limit (default 100)
  --bind-address HOST:PORT          serve /healthz, /readyz and /metrics (default :8080; 0 disables)
  --leader-elect                    elect a leader among replicas on a Lease (default false)
  --leader-election-namespace NS    the Lease's namespace (default $POD_NAMESPACE, else the
                                    kubeconfig namespace)
  --leader-election-id NAME         the Lease's name (default millrace-controller)
  --lease-duration D                how long a standby waits on an unrenewed lease (default 15s)
  --renew-deadline D                how long the leader retries renewing before it stops writing
                                    and exits (default 10s)
  --retry-period D                  how often to renew or retry acquiring (default 1s)
  --workers N                       at most N concurrent reconciles per controller (default 16)
  --cache-sync-timeout D            exit 1 when the caches have not synced by then (default 2m)
  --webhook-bind-address HOST:PORT  serve the admission webhooks over HTTPS (default 0: off;
                                    the Helm chart and config/ use :9443)
  --webhook-cert-dir DIR            tls.crt and tls.key, re-read when they change (cert-manager,
                                    a Secret volume); default: a self-signed CA and certificate
                                    generated at start-up
  --webhook-hosts H1,H2             the self-signed certificate's DNS names and IP addresses
                                    (default millrace-webhook.millrace-system.svc,localhost,127.0.0.1)
  --webhook-configuration NAME      with a self-signed certificate: set the caBundle of the
                                    Validating- and MutatingWebhookConfiguration NAME to its CA
  --log-level LEVEL                 debug, info, warn or error (default info)
  --version                         print the version and exit
  --help                            print this help and exit
Durations: 500ms, 15s, 2m, 1h30m.
)";
}

std::expected<Flags, std::string> ParseFlags(const std::vector<std::string_view>& args) {
  Flags f;
  using Setter = std::function<bool(std::string_view)>;
  auto text = [](std::string& out) -> Setter {
    return [&out](std::string_view v) { return out.assign(v), true; };
  };
  auto duration = [](Duration& out) -> Setter {
    return [&out](std::string_view v) {
      auto d = ParseFlagDuration(v);
      if (!d || *d <= Duration::zero()) return false;
      return out = *d, true;
    };
  };
  const std::map<std::string_view, Setter> valued = {
      {"kubeconfig", text(f.kubeconfig)},
      {"context", text(f.context)},
      {"kube-api-qps", [&](std::string_view v) { return ParseNumber(v, f.kube_api_qps); }},
      {"kube-api-burst",
       [&](std::string_view v) {
         return ParseNumber(v, f.kube_api_burst) && f.kube_api_burst > 0;
       }},
      {"bind-address",
       [&](std::string_view v) {
         return (v == "0" || ParseBindAddress(v)) && (f.bind_address = v, true);
       }},
      {"leader-election-namespace", text(f.leader_election_namespace)},
      {"leader-election-id", text(f.leader_election_id)},
      {"lease-duration", duration(f.lease_duration)},
      {"renew-deadline", duration(f.renew_deadline)},
      {"retry-period", duration(f.retry_period)},
      {"workers", [&](std::string_view v) { return ParseNumber(v, f.workers) && f.workers > 0; }},
      {"cache-sync-timeout", duration(f.cache_sync_timeout)},
      {"webhook-bind-address",
       [&](std::string_view v) {
         return (v == "0" || ParseBindAddress(v)) && (f.webhook_bind_address = v, true);
       }},
      {"webhook-cert-dir", text(f.webhook_cert_dir)},
      {"webhook-hosts",
       [&](std::string_view v) {
         f.webhook_hosts.clear();
         for (size_t start = 0; start <= v.size();) {
           const size_t comma = std::min(v.find(',', start), v.size());
           if (comma > start) f.webhook_hosts.emplace_back(v.substr(start, comma - start));
           start = comma + 1;
         }
         return !f.webhook_hosts.empty();
       }},
      {"webhook-configuration", text(f.webhook_configuration)},
      {"log-level",
       [&](std::string_view v) {
         return (v == "debug" || v == "info" || v == "warn" || v == "error") &&
                (f.log_level = v, true);
       }},
  };
  const std::map<std::string_view, bool*> booleans = {
      {"leader-elect", &f.leader_elect}, {"help", &f.help}, {"version", &f.version}};

  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "-h") arg = "--help";
    if (!arg.starts_with("--"))
      return std::unexpected("unexpected argument \"" + std::string(arg) + "\"");
    arg.remove_prefix(2);
    std::optional<std::string_view> value;
    if (const auto eq = arg.find('='); eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    }
    const std::string name(arg);
    if (const auto b = booleans.find(arg); b != booleans.end()) {
      const auto parsed = value ? ParseBool(*value) : std::optional<bool>(true);
      if (!parsed) return std::unexpected("--" + name + ": want true or false");
      *b->second = *parsed;
      continue;
    }
    const auto setter = valued.find(arg);
    if (setter == valued.end()) return std::unexpected("unknown flag --" + name + " (see --help)");
    if (!value) {
      if (i + 1 >= args.size()) return std::unexpected("--" + name + " needs a value");
      value = args[++i];
    }
    if (!setter->second(*value)) {
      return std::unexpected("--" + name + ": invalid value \"" + std::string(*value) + "\"");
    }
  }
  if (f.renew_deadline >= f.lease_duration) {
    return std::unexpected("--renew-deadline must be shorter than --lease-duration");
  }
  if (f.retry_period >= f.renew_deadline) {
    return std::unexpected("--retry-period must be shorter than --renew-deadline");
  }
  return f;
}

}  // namespace millrace::controller
