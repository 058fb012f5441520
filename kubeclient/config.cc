#include "kubeclient/config.h"

#include <cstdlib>
#include <filesystem>
#include <map>
#include <utility>

#include <sys/stat.h>
#include <yaml-cpp/yaml.h>

#include "kubeclient/util.h"

namespace millrace::kube {
namespace {

namespace fs = std::filesystem;
using internal::ReadFile;

Error ConfigError(std::string message) { return MakeError(ErrorKind::kConfig, std::move(message)); }

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

// A named entry (cluster, user or context) and the directory of the file that defined it, against
// which its relative paths resolve.
struct Entry {
  YAML::Node node;
  std::string dir;
  std::string file;
};

struct Merged {
  std::map<std::string, Entry> clusters, users, contexts;
  std::string current_context;
};

std::string Resolve(const std::string& dir, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute()) return path;
  return (fs::path(dir) / path).lexically_normal().string();
}

std::string Scalar(const YAML::Node& node, const char* key) {
  const YAML::Node v = node[key];
  return v && v.IsScalar() ? v.as<std::string>() : std::string();
}

Result<void> MergeFile(const std::string& path, Merged& merged) {
  auto text = ReadFile(path, "kubeconfig");
  if (!text) return std::unexpected(text.error());
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const YAML::Exception& e) {
    return std::unexpected(ConfigError("kubeconfig " + path + " is not valid YAML: " + e.what()));
  }
  if (!root || root.IsNull()) return {};  // an empty file contributes nothing
  if (!root.IsMap()) return std::unexpected(ConfigError("kubeconfig " + path + " is not a map"));
  const std::string dir = fs::path(path).parent_path().string();
  const auto merge_list = [&](const char* key, const char* inner,
                              std::map<std::string, Entry>& into) -> Result<void> {
    const YAML::Node list = root[key];
    if (!list || list.IsNull()) return {};
    if (!list.IsSequence()) {
      return std::unexpected(ConfigError("kubeconfig " + path + ": " + key + " is not a list"));
    }
    for (const auto& item : list) {
      const std::string name = item.IsMap() ? Scalar(item, "name") : "";
      if (name.empty()) {
        return std::unexpected(
            ConfigError("kubeconfig " + path + ": an entry of " + key + " has no name"));
      }
      YAML::Node body = item[inner];
      if (body && !body.IsMap() && !body.IsNull()) {
        return std::unexpected(ConfigError("kubeconfig " + path + ": " + key + " entry '" + name +
                                           "' has a " + inner + " that is not a map"));
      }
      into.try_emplace(name, Entry{body ? body : YAML::Node(YAML::NodeType::Map), dir, path});
    }
    return {};
  };
  try {
    if (auto r = merge_list("clusters", "cluster", merged.clusters); !r) return r;
    if (auto r = merge_list("users", "user", merged.users); !r) return r;
    if (auto r = merge_list("contexts", "context", merged.contexts); !r) return r;
    if (merged.current_context.empty()) merged.current_context = Scalar(root, "current-context");
  } catch (const YAML::Exception& e) {
    return std::unexpected(ConfigError("kubeconfig " + path + ": " + e.what()));
  }
  return {};
}

// Fills `data` from `inline_b64` (base64) or `file` (read now, so a bad path fails at load time).
Result<void> LoadPem(const Entry& e, const char* data_key, const char* file_key, std::string& data,
                     std::string& file) {
  const std::string b64 = Scalar(e.node, data_key);
  if (!b64.empty()) {
    auto decoded = internal::Base64Decode(b64);
    if (!decoded) {
      return std::unexpected(
          ConfigError("kubeconfig " + e.file + ": " + data_key + " is not valid base64"));
    }
    data = std::move(*decoded);
    return {};
  }
  file = Resolve(e.dir, Scalar(e.node, file_key));
  if (file.empty()) return {};
  auto read = ReadFile(file, std::string(file_key) + " (from kubeconfig " + e.file + ")");
  if (!read) return std::unexpected(read.error());
  data = std::move(*read);
  return {};
}

Result<void> LoadUser(const Entry& user, Config& config) {
  const YAML::Node& u = user.node;
  if (u["auth-provider"]) {
    return std::unexpected(ConfigError("kubeconfig " + user.file +
                                       ": auth-provider is not supported; use an exec plugin"));
  }
  if (auto r = LoadPem(user, "client-certificate-data", "client-certificate",
                       config.client_cert_data, config.client_cert_file);
      !r) {
    return r;
  }
  if (auto r = LoadPem(user, "client-key-data", "client-key", config.client_key_data,
                       config.client_key_file);
      !r) {
    return r;
  }
  if (config.client_cert_data.empty() != config.client_key_data.empty()) {
    return std::unexpected(ConfigError("kubeconfig " + user.file +
                                       ": a client certificate needs both certificate and key"));
  }
  config.token = Scalar(u, "token");
  config.token_file = Resolve(user.dir, Scalar(u, "tokenFile"));
  if (config.token.empty() && !config.token_file.empty()) {
    auto read = ReadFile(config.token_file, "tokenFile (from kubeconfig " + user.file + ")");
    if (!read) return std::unexpected(read.error());
  }
  if (const YAML::Node exec = u["exec"]; exec && exec.IsMap()) {
    ExecConfig x;
    x.api_version = Scalar(exec, "apiVersion");
    x.command = Scalar(exec, "command");
    if (x.command.empty()) {
      return std::unexpected(ConfigError("kubeconfig " + user.file + ": exec has no command"));
    }
    if (x.api_version != "client.authentication.k8s.io/v1" &&
        x.api_version != "client.authentication.k8s.io/v1beta1") {
      return std::unexpected(ConfigError("kubeconfig " + user.file + ": exec apiVersion '" +
                                         x.api_version +
                                         "' is not client.authentication.k8s.io/v1 or v1beta1"));
    }
    if (x.command.find('/') != std::string::npos) x.command = Resolve(user.dir, x.command);
    if (const YAML::Node args = exec["args"]; args && args.IsSequence()) {
      for (const auto& a : args) x.args.push_back(a.as<std::string>());
    }
    if (const YAML::Node env = exec["env"]; env && env.IsSequence()) {
      for (const auto& kv : env) x.env.emplace_back(Scalar(kv, "name"), Scalar(kv, "value"));
    }
    x.interactive_mode = Scalar(exec, "interactiveMode");
    if (const YAML::Node p = exec["provideClusterInfo"]; p && p.IsScalar()) {
      x.provide_cluster_info = p.as<bool>();
    }
    config.exec = std::move(x);
  }
  return {};
}

std::vector<std::string> SplitPathList(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    const size_t colon = list.find(':', start);
    const size_t end = colon == std::string::npos ? list.size() : colon;
    if (end > start) out.push_back(list.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::string Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

}  // namespace

Result<Config> LoadKubeconfig(const KubeconfigOptions& options) {
  std::vector<std::string> paths = options.paths;
  bool skip_missing = false;
  if (paths.empty()) {
    if (const std::string env = Getenv("KUBECONFIG"); !env.empty()) {
      paths = SplitPathList(env);
      skip_missing = true;  // kubectl's rule for $KUBECONFIG
    } else {
      paths.push_back(Getenv("HOME") + "/.kube/config");
    }
  }
  Merged merged;
  std::string files;
  int loaded = 0;
  for (const auto& path : paths) {
    files += (files.empty() ? "" : ", ") + path;
    if (skip_missing && !Exists(path)) continue;
    if (auto r = MergeFile(path, merged); !r) return std::unexpected(r.error());
    ++loaded;
  }
  if (loaded == 0) return std::unexpected(ConfigError("no kubeconfig file exists among " + files));

  Config config;
  config.context = options.context.empty() ? merged.current_context : options.context;
  if (config.context.empty()) {
    return std::unexpected(ConfigError("kubeconfig " + files + " sets no current-context"));
  }
  const auto ctx = merged.contexts.find(config.context);
  if (ctx == merged.contexts.end()) {
    return std::unexpected(
        ConfigError("context '" + config.context + "' is not defined in kubeconfig " + files));
  }
  try {
    const std::string cluster_name = Scalar(ctx->second.node, "cluster");
    const std::string user_name = Scalar(ctx->second.node, "user");
    if (const std::string ns = Scalar(ctx->second.node, "namespace"); !ns.empty()) {
      config.default_namespace = ns;
    }
    const auto cluster = merged.clusters.find(cluster_name);
    if (cluster == merged.clusters.end()) {
      return std::unexpected(ConfigError("context '" + config.context + "' names cluster '" +
                                         cluster_name + "', not defined in kubeconfig " + files));
    }
    const Entry& c = cluster->second;
    config.server = Scalar(c.node, "server");
    if (config.server.empty()) {
      return std::unexpected(
          ConfigError("kubeconfig " + c.file + ": cluster '" + cluster_name + "' has no server"));
    }
    if (const YAML::Node v = c.node["insecure-skip-tls-verify"]; v && v.IsScalar()) {
      config.insecure_skip_tls_verify = v.as<bool>();
    }
    config.proxy_url = Scalar(c.node, "proxy-url");
    if (const YAML::Node v = c.node["disable-compression"]; v && v.IsScalar()) {
      config.disable_compression = v.as<bool>();
    }
    if (auto r = LoadPem(c, "certificate-authority-data", "certificate-authority", config.ca_data,
                         config.ca_file);
        !r) {
      return std::unexpected(r.error());
    }
    if (!user_name.empty()) {
      const auto user = merged.users.find(user_name);
      if (user == merged.users.end()) {
        return std::unexpected(ConfigError("context '" + config.context + "' names user '" +
                                           user_name + "', not defined in kubeconfig " + files));
      }
      if (auto r = LoadUser(user->second, config); !r) return std::unexpected(r.error());
    }
  } catch (const YAML::Exception& e) {
    return std::unexpected(ConfigError("kubeconfig " + files + ": " + e.what()));
  }
  return config;
}

Result<Config> LoadInCluster(const InClusterOptions& options) {
  const std::string host = options.host.empty() ? Getenv("KUBERNETES_SERVICE_HOST") : options.host;
  const std::string port = options.port.empty() ? Getenv("KUBERNETES_SERVICE_PORT") : options.port;
  if (host.empty() || port.empty()) {
    return std::unexpected(ConfigError(
        "not in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set"));
  }
  Config config;
  config.server =
      "https://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
  config.token_file = options.root + "/token";
  if (auto token = ReadFile(config.token_file, "service account token"); !token) {
    return std::unexpected(token.error());
  }
  config.ca_file = options.root + "/ca.crt";
  auto ca = ReadFile(config.ca_file, "service account CA");
  if (!ca) return std::unexpected(ca.error());
  config.ca_data = std::move(*ca);
  if (auto ns = ReadFile(options.root + "/namespace", "service account namespace")) {
    std::string value = std::move(*ns);
    value.erase(value.find_last_not_of(" \n\r\t") + 1);
    if (!value.empty()) config.default_namespace = value;
  }
  config.context = "in-cluster";
  return config;
}

Result<Config> LoadDefault() {
  if (!Getenv("KUBECONFIG").empty()) return LoadKubeconfig();
  if (!Getenv("KUBERNETES_SERVICE_HOST").empty()) return LoadInCluster();
  return LoadKubeconfig();
}

}  // namespace millrace::kube
