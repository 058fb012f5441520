#include "tests/support/cluster.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

namespace millrace::testing {
namespace {

std::unique_ptr<Cluster>& Instance() {
  static std::unique_ptr<Cluster> cluster;
  return cluster;
}

std::string ClusterScript() { return SourceDir() + "/scripts/cluster"; }

// Reads `export KEY=value` lines from the env file written by `scripts/cluster up`.
std::string EnvValue(const std::string& env_file, std::string_view key) {
  std::ifstream in(env_file);
  std::string line;
  const std::string prefix = "export " + std::string(key) + "=";
  while (std::getline(in, line))
    if (line.starts_with(prefix)) return line.substr(prefix.size());
  throw std::runtime_error("no " + std::string(key) + " in " + env_file);
}

std::string DnsLabel(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u))
      out.push_back(static_cast<char>(std::tolower(u)));
    else if (!out.empty() && out.back() != '-')
      out.push_back('-');
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

}  // namespace

std::string SourceDir() { return MILLRACE_SOURCE_DIR; }

std::string KwokStageDelay(const std::string& stage, const std::string& delay) {
  const std::string key = stage + ".stage.kwok.x-k8s.io/";
  return key + "delay: \"" + delay + "\", " + key + "jitter-delay: \"" + delay + "\"";
}

Cluster& Cluster::Get() {
  if (!Instance()) throw std::logic_error("no cluster: the test binary must use cluster_main");
  return *Instance();
}

void Cluster::Start(std::string_view binary_name) {
  auto c = std::unique_ptr<Cluster>(new Cluster());
  c->name_ = DnsLabel(std::string(binary_name).substr(0, 24)) + "-" + std::to_string(getpid());
  std::vector<std::string> up_args = {ClusterScript(), "up",          "--name",
                                      c->name_,        "--owner-pid", std::to_string(getpid())};
  // MILLRACE_TEST_CLUSTER_ARGS: more `scripts/cluster up` flags, space-separated (--real-node).
  if (const char* extra = std::getenv("MILLRACE_TEST_CLUSTER_ARGS")) {
    std::istringstream words(extra);
    for (std::string w; words >> w;) up_args.push_back(w);
  }
  const ProcessResult up = RunProcess(up_args);
  if (up.exit_code != 0) {
    throw std::runtime_error("scripts/cluster up failed (" + std::to_string(up.exit_code) + "):\n" +
                             up.err);
  }
  std::string env_file = up.out;
  env_file.erase(env_file.find_last_not_of("\n ") + 1);
  c->kubeconfig_ = EnvValue(env_file, "KUBECONFIG");
  c->state_dir_ = EnvValue(env_file, "MILLRACE_CLUSTER_STATE");
  c->bin_ = EnvValue(env_file, "MILLRACE_TESTBED_BIN");
  c->apiserver_ = EnvValue(env_file, "MILLRACE_APISERVER");
  c->etcd_ = EnvValue(env_file, "MILLRACE_ETCD");
  setenv("KUBECONFIG", c->kubeconfig_.c_str(), 1);
  Instance() = std::move(c);
}

void Cluster::Stop() {
  if (!Instance()) return;
  RunProcess({ClusterScript(), "down", "--name", Instance()->name_});
  Instance().reset();
}

ProcessResult Cluster::Kubectl(std::vector<std::string> args, std::string_view input) const {
  args.insert(args.begin(), {bin_ + "/kubectl", "--kubeconfig=" + kubeconfig_});
  return RunProcess(args, input);
}

nlohmann::json Cluster::KubectlJson(std::vector<std::string> args) const {
  args.emplace_back("-o");
  args.emplace_back("json");
  const ProcessResult r = Kubectl(args);
  if (r.exit_code != 0) {
    ADD_FAILURE() << "kubectl failed: " << r.err;
    return nullptr;
  }
  return nlohmann::json::parse(r.out);
}

void Cluster::Apply(std::string_view manifest, std::string_view ns) const {
  std::vector<std::string> args{"apply", "-f", "-"};
  if (!ns.empty()) args.push_back("--namespace=" + std::string(ns));
  const ProcessResult r = Kubectl(args, manifest);
  EXPECT_EQ(r.exit_code, 0) << "kubectl apply failed: " << r.err << "\nmanifest:\n" << manifest;
}

std::string Cluster::TestToken() const {
  std::ifstream in(state_dir_ + "/pki/tokens.csv");
  std::string line;
  std::getline(in, line);
  return line.substr(0, line.find(','));
}

std::string Cluster::TokenKubeconfig() const {
  return KubeconfigFor(TestToken(), "test-token-user.kubeconfig");
}

std::string Cluster::KubeconfigFor(const std::string& token, const std::string& file) const {
  const std::string path = state_dir_ + "/" + file;
  std::ofstream(path) << "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
                      << "    server: " << apiserver_ << "\n"
                      << "    certificate-authority: " << state_dir_ << "/pki/ca.crt\n"
                      << "users:\n- name: u\n  user:\n    token: " << token << "\n"
                      << "contexts:\n- name: c\n  context: {cluster: c, user: u}\n"
                      << "current-context: c\n";
  return path;
}

std::vector<nlohmann::json> Cluster::AuditLog() const {
  // Rotated files (audit-<time>.log, at 100 MB) oldest first, then audit.log.
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(state_dir_ + "/logs")) {
    const std::string name = entry.path().filename().string();
    if (name.starts_with("audit-") && name.ends_with(".log")) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  files.push_back(state_dir_ + "/logs/audit.log");
  std::vector<nlohmann::json> events;
  for (const auto& file : files) {
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) {
      auto event = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (event.is_object()) events.push_back(std::move(event));  // a line being written: skipped
    }
  }
  return events;
}

void Cluster::InstallCrds() const {
  const std::string dir = SourceDir() + "/crds/manifests";
  const ProcessResult applied =
      Kubectl({"apply", "--server-side", "--field-manager=millrace-tests", "-f", dir});
  ASSERT_EQ(applied.exit_code, 0) << applied.err;
  const ProcessResult established =
      Kubectl({"wait", "--for=condition=Established", "-f", dir, "--timeout=60s"});
  ASSERT_EQ(established.exit_code, 0) << established.err;
}

bool Cluster::CreateZone(const std::string& name, std::string_view deletion_policy) const {
  Apply("apiVersion: millrace.io/v1alpha1\nkind: Zone\nmetadata: {name: " + name +
        "}\nspec: {type: Development, owner: {kind: User, name: dev}, deletionPolicy: " +
        std::string(deletion_policy) + "}\n");
  const bool active = WaitFor(
      [&] {
        return Kubectl({"get", "zone", name, "-o", "jsonpath={.status.phase}"}).out == "Active";
      },
      std::chrono::seconds(60));
  EXPECT_TRUE(active) << "zone " << name << " never became Active";
  return active;
}

std::string Cluster::CreateNamespace(std::string_view suffix) const {
  static std::atomic<int> counter{0};
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string base = info != nullptr ? DnsLabel(info->name()) : "test";
  base = base.substr(0, 40);
  std::string ns = base + "-" + std::to_string(++counter);
  if (!suffix.empty()) ns += "-" + DnsLabel(suffix);
  const ProcessResult r = Kubectl({"create", "namespace", ns});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const bool ready = WaitFor(
      [&] {
        return Kubectl({"get", "serviceaccount", "default", "-n", ns}).exit_code == 0;
      },
      std::chrono::seconds(30));
  EXPECT_TRUE(ready) << "namespace " << ns << " never got its default ServiceAccount";
  return ns;
}

void Cluster::StopComponent(std::string_view component) const {
  const auto r =
      RunProcess({ClusterScript(), "stop-component", "--name", name_, std::string(component)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

void Cluster::StartComponent(std::string_view component) const {
  const auto r =
      RunProcess({ClusterScript(), "start-component", "--name", name_, std::string(component)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

nlohmann::json Cluster::Etcd(std::string_view path, const nlohmann::json& body) const {
  const auto r =
      RunProcess({"curl", "-sf", "-X", "POST", etcd_ + std::string(path), "-d", body.dump()});
  EXPECT_EQ(r.exit_code, 0) << "etcd " << path << ": " << r.err;
  return nlohmann::json::parse(r.out, nullptr, false);
}

namespace {
std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned n = (static_cast<unsigned char>(in[i]) << 16U) |
                       (static_cast<unsigned char>(in[i + 1]) << 8U) |
                       static_cast<unsigned char>(in[i + 2]);
    for (int shift : {18, 12, 6, 0}) out += kAlphabet[(n >> static_cast<unsigned>(shift)) & 63U];
  }
  if (i < in.size()) {
    unsigned n = static_cast<unsigned>(static_cast<unsigned char>(in[i])) << 16U;
    if (i + 1 < in.size()) n |= static_cast<unsigned>(static_cast<unsigned char>(in[i + 1])) << 8U;
    out += kAlphabet[(n >> 18U) & 63U];
    out += kAlphabet[(n >> 12U) & 63U];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6U) & 63U] : '=';
    out += '=';
  }
  return out;
}
}  // namespace

void Cluster::EtcdPut(std::string_view key, std::string_view value) const {
  Etcd("/v3/kv/put", {{"key", Base64(key)}, {"value", Base64(value)}});
}

void Cluster::EtcdDelete(std::string_view resource, std::string_view ns,
                         std::string_view name) const {
  const std::string key =
      "/registry/" + std::string(resource) + "/" + std::string(ns) + "/" + std::string(name);
  const auto answer = Etcd("/v3/kv/deleterange", {{"key", Base64(key)}});
  EXPECT_EQ(answer.value("deleted", std::string("0")), "1") << key << ": " << answer.dump();
}

int64_t Cluster::EtcdCompact() const {
  const auto range = Etcd("/v3/kv/range", {{"key", Base64("/")}});
  const int64_t revision = std::stoll(range["header"]["revision"].get<std::string>());
  Etcd("/v3/kv/compaction", {{"revision", revision}, {"physical", true}});
  return revision;
}

bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  // The one wait-for-condition of the integration tests: the condition is checked against the
  // cluster until it holds or the deadline passes. Conditions read the API server (no event to
  // block on), so between checks the thread pauses until the next poll, never past the deadline.
  constexpr auto kPollInterval = std::chrono::milliseconds(100);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (condition()) return true;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return false;
    std::this_thread::sleep_until(std::min(now + kPollInterval, deadline));
  }
}

}  // namespace millrace::testing
