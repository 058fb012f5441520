#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kubeclient/error.h"

namespace millrace::kube {

// A kubeconfig `exec` credential plugin (client.authentication.k8s.io/v1 or v1beta1).
struct ExecConfig {
  std::string api_version{};  // the ExecCredential apiVersion the plugin speaks
  std::string command{};      // a relative path with a '/' is resolved against the kubeconfig's dir
  std::vector<std::string> args{};
  std::vector<std::pair<std::string, std::string>> env{};  // added to this process' environment
  std::string interactive_mode{};                          // Never / IfAvailable / Always
  bool provide_cluster_info = false;  // pass the cluster in KUBERNETES_EXEC_INFO
};

// How to reach and authenticate to one API server. Loaders fill it; NewClient() consumes it.
// Data fields hold PEM bytes; when a *_data field is empty its *_file is read by NewClient().
struct Config {
  std::string server{};  // https://host:port, possibly with a path prefix (https://lb/k8s/a)
  std::string ca_data{};
  std::string ca_file{};
  std::string client_cert_data{};
  std::string client_cert_file{};
  std::string client_key_data{};
  std::string client_key_file{};
  std::string token{};       // static bearer token
  std::string token_file{};  // bearer token re-read whenever the file changes (rotated SA tokens)
  std::optional<ExecConfig> exec{};
  bool insecure_skip_tls_verify = false;
  std::string proxy_url{};
  bool disable_compression = false;
  std::string default_namespace = "default";  // the context's namespace (or the SA's)
  std::string context{};                      // the kubeconfig context used, for messages

  double qps = 20;  // client-side rate limit; <= 0 disables it
  int burst = 30;
  std::chrono::milliseconds timeout{30'000};  // a whole non-watch request
  std::chrono::milliseconds connect_timeout{10'000};
  int max_retries = 4;       // for idempotent requests on transient failures, 429 and 5xx
  std::string user_agent{};  // default "millrace/<version>"
  // Asked just before each attempt of a write (POST, PUT, PATCH, DELETE) goes on the wire, after
  // the connection is made: an Error stops the request unsent and is what the call returns. Must
  // be quick and thread-safe. The leader's fence (controller/leader_election.h): a replica that
  // may have lost its lease sends nothing.
  std::function<std::optional<Error>()> write_fence{};
};

struct KubeconfigOptions {
  // Files merged in order (first file to set a map key or current-context wins). Empty means
  // $KUBECONFIG (a colon-separated list; files that do not exist are skipped) or ~/.kube/config.
  std::vector<std::string> paths{};
  std::string context{};  // overrides current-context
};

Result<Config> LoadKubeconfig(const KubeconfigOptions& options = {});

inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

struct InClusterOptions {
  std::string root = kServiceAccountDir;  // holds token, ca.crt, namespace
  std::string host{};
  std::string port{};  // empty: KUBERNETES_SERVICE_HOST / _PORT
};

Result<Config> LoadInCluster(const InClusterOptions& options = {});

// $KUBECONFIG if set; else in-cluster when KUBERNETES_SERVICE_HOST is set; else ~/.kube/config.
Result<Config> LoadDefault();

}  // namespace millrace::kube
