#include "kubeclient/config.h"

#include <cstdlib>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kubeclient/util.h"
#include "tests/unit/kubeclient/temp_dir.h"

namespace millrace::kube {
namespace {

using ::testing::HasSubstr;
using testing::TempDir;

constexpr char kFirst[] = R"(
apiVersion: v1
kind: Config
current-context: first
clusters:
- name: shared
  cluster:
    server: https://first.example:6443/prefix
    certificate-authority-data: Q0EtREFUQQ==
- name: other
  cluster: {server: "https://other.example", insecure-skip-tls-verify: true}
users:
- name: alice
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
contexts:
- name: first
  context: {cluster: shared, user: alice, namespace: team-a}
- name: to-other
  context: {cluster: other, user: tokened}
)";

constexpr char kSecond[] = R"(
current-context: second-wins-not
clusters:
- name: shared
  cluster: {server: "https://ignored.example"}
users:
- name: tokened
  user: {token: abc123}
- name: filed
  user: {tokenFile: tokens/t, client-certificate: certs/c.crt, client-key: certs/c.key}
- name: plugin
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./bin/get-token
      args: [--cluster, x]
      env: [{name: FOO, value: bar}]
      interactiveMode: Never
      provideClusterInfo: true
contexts:
- name: second
  context: {cluster: shared, user: filed}
- name: exec
  context: {cluster: other, user: plugin}
)";

// kFirst and kSecond written to <dir>/a/config and <dir>/b/config and loaded in that order, with
// `context` (empty: the current context).
auto LoadBoth(TempDir& dir, const std::string& context) {
  const auto a = dir.Write("a/config", kFirst);
  const auto b = dir.Write("b/config", kSecond);
  return LoadKubeconfig({.paths = {a, b}, .context = context});
}

TEST(Kubeconfig, FirstFileWinsForMapKeysAndCurrentContext) {
  TempDir dir;
  const auto config = LoadBoth(dir, "");
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(config->context, "first");
  EXPECT_EQ(config->server, "https://first.example:6443/prefix");  // not the second file's
  EXPECT_EQ(config->ca_data, "CA-DATA");
  EXPECT_EQ(config->client_cert_data, "CERT");
  EXPECT_EQ(config->client_key_data, "KEY");
  EXPECT_EQ(config->default_namespace, "team-a");
  EXPECT_FALSE(config->insecure_skip_tls_verify);
}

TEST(Kubeconfig, ExplicitContextOverridesCurrentAndCanUseEntriesFromAnyFile) {
  TempDir dir;
  const auto config = LoadBoth(dir, "to-other");
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(config->server, "https://other.example");
  EXPECT_TRUE(config->insecure_skip_tls_verify);
  EXPECT_EQ(config->token, "abc123");  // user defined in the second file
  EXPECT_EQ(config->default_namespace, "default");
}

TEST(Kubeconfig, FilesAreResolvedAgainstTheDirectoryOfTheirKubeconfig) {
  TempDir dir;
  dir.Write("b/tokens/t", "file-token\n");
  dir.Write("b/certs/c.crt", "CERT-FROM-FILE");
  dir.Write("b/certs/c.key", "KEY-FROM-FILE");
  const auto config = LoadBoth(dir, "second");
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(config->token_file, dir.path() + "/b/tokens/t");
  EXPECT_EQ(config->client_cert_file, dir.path() + "/b/certs/c.crt");
  EXPECT_EQ(config->client_cert_data, "CERT-FROM-FILE");
  EXPECT_EQ(config->client_key_data, "KEY-FROM-FILE");
}

TEST(Kubeconfig, ExecPluginSpecIsParsed) {
  TempDir dir;
  const auto config = LoadBoth(dir, "exec");
  ASSERT_TRUE(config) << config.error().ToString();
  ASSERT_TRUE(config->exec.has_value());
  EXPECT_EQ(config->exec->api_version, "client.authentication.k8s.io/v1");
  EXPECT_EQ(config->exec->command, dir.path() + "/b/bin/get-token");
  EXPECT_THAT(config->exec->args, ::testing::ElementsAre("--cluster", "x"));
  ASSERT_EQ(config->exec->env.size(), 1U);
  EXPECT_EQ(config->exec->env[0].first, "FOO");
  EXPECT_EQ(config->exec->env[0].second, "bar");
  EXPECT_EQ(config->exec->interactive_mode, "Never");
  EXPECT_TRUE(config->exec->provide_cluster_info);
}

TEST(Kubeconfig, MissingCertificateFileNamesThePath) {
  TempDir dir;
  const auto b = dir.Write("b/config", kSecond);
  const auto config = LoadKubeconfig({.paths = {b}, .context = "second"});
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().kind, ErrorKind::kConfig);
  EXPECT_THAT(config.error().message, HasSubstr(dir.path() + "/b/"));
  EXPECT_THAT(config.error().message, HasSubstr(b));
}

TEST(Kubeconfig, MissingExplicitFileNamesThePath) {
  const auto config = LoadKubeconfig({.paths = {"/nonexistent/kubeconfig"}, .context = {}});
  ASSERT_FALSE(config);
  EXPECT_THAT(config.error().message, HasSubstr("/nonexistent/kubeconfig"));
  EXPECT_THAT(config.error().message, HasSubstr("No such file"));
}

TEST(Kubeconfig, MalformedYamlNamesTheFile) {
  TempDir dir;
  const auto bad = dir.Write("bad", "clusters: [unclosed\n  - {");
  const auto config = LoadKubeconfig({.paths = {bad}, .context = {}});
  ASSERT_FALSE(config);
  EXPECT_THAT(config.error().message, HasSubstr(bad));
  EXPECT_THAT(config.error().message, HasSubstr("not valid YAML"));
}

TEST(Kubeconfig, BadBase64IsReported) {
  TempDir dir;
  const auto f = dir.Write("k", R"(
current-context: c
clusters: [{name: x, cluster: {server: "https://h", certificate-authority-data: "!!notbase64"}}]
contexts: [{name: c, context: {cluster: x}}]
)");
  const auto config = LoadKubeconfig({.paths = {f}, .context = {}});
  ASSERT_FALSE(config);
  EXPECT_THAT(config.error().message, HasSubstr("certificate-authority-data is not valid base64"));
  EXPECT_THAT(config.error().message, HasSubstr(f));
}

TEST(Kubeconfig, UnknownContextAndUndefinedClusterAreReported) {
  TempDir dir;
  const auto a = dir.Write("a", kFirst);
  auto config = LoadKubeconfig({.paths = {a}, .context = "nope"});
  ASSERT_FALSE(config);
  EXPECT_THAT(config.error().message, HasSubstr("context 'nope' is not defined"));
  const auto f =
      dir.Write("k", "current-context: c\ncontexts: [{name: c, context: {cluster: gone}}]\n");
  config = LoadKubeconfig({.paths = {f}, .context = {}});
  ASSERT_FALSE(config);
  EXPECT_THAT(config.error().message, HasSubstr("cluster 'gone'"));
}

TEST(Kubeconfig, KubeconfigEnvListSkipsMissingFiles) {
  TempDir dir;
  const auto a = dir.Write("a", kFirst);
  ::setenv("KUBECONFIG", (dir.path() + "/missing:" + a).c_str(), 1);
  const auto config = LoadKubeconfig();
  ::unsetenv("KUBECONFIG");
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(config->context, "first");
}

TEST(InCluster, ReadsServiceAccountFilesAndEnvironment) {
  TempDir dir;
  dir.Write("token", "sa-token");
  dir.Write("ca.crt", "CA");
  dir.Write("namespace", "ops\n");
  const auto config = LoadInCluster({.root = dir.path(), .host = "10.96.0.1", .port = "443"});
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->token_file, dir.path() + "/token");
  EXPECT_EQ(config->ca_data, "CA");
  EXPECT_EQ(config->default_namespace, "ops");

  const auto v6 = LoadInCluster({.root = dir.path(), .host = "fd00::1", .port = "6443"});
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->server, "https://[fd00::1]:6443");
}

TEST(InCluster, MissingTokenNamesThePath) {
  TempDir dir;
  dir.Write("ca.crt", "CA");
  const auto config = LoadInCluster({.root = dir.path(), .host = "h", .port = "1"});
  ASSERT_FALSE(config);
  EXPECT_THAT(config.error().message, HasSubstr(dir.path() + "/token"));
}

TEST(InCluster, NeedsServiceHostAndPort) {
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  const auto config = LoadInCluster({.root = "/nonexistent", .host = {}, .port = {}});
  ASSERT_FALSE(config);
  EXPECT_THAT(config.error().message, HasSubstr("KUBERNETES_SERVICE_HOST"));
}

TEST(Base64, RoundTripsAndRejectsGarbage) {
  for (const std::string s : {"", "a", "ab", "abc", "abcd", "hello, world\n"}) {
    EXPECT_EQ(internal::Base64Decode(internal::Base64Encode(s)), s);
  }
  EXPECT_EQ(internal::Base64Decode("aGVs\nbG8="), "hello");
  EXPECT_FALSE(internal::Base64Decode("a$b").has_value());
}

}  // namespace
}  // namespace millrace::kube
