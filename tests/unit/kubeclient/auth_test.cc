#include "kubeclient/auth.h"

#include <chrono>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/unit/kubeclient/temp_dir.h"

namespace millrace::kube {
namespace {

using std::chrono::system_clock;
using ::testing::HasSubstr;
using testing::TempDir;

int CountLines(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

// A plugin that records each run (with its KUBERNETES_EXEC_INFO and $FOO) and prints a token
// "tok-<first arg>" that expires at 2030-01-01T00:00:00Z.
std::string WritePlugin(const TempDir& dir, std::string_view api_version) {
  const std::string script =
      "#!/bin/sh\n"
      "echo \"$KUBERNETES_EXEC_INFO $FOO\" >> '" +
      dir.path() +
      "/runs'\n"
      "printf '%s' '{\"apiVersion\": \"" +
      std::string(api_version) +
      "\", \"kind\": \"ExecCredential\", \"status\": {\"token\": \"tok-'\"$1\"'\", "
      "\"expirationTimestamp\": \"2030-01-01T00:00:00Z\"}}'\n";
  const std::string path = dir.Write("plugin.sh", script);
  ::chmod(path.c_str(), 0755);
  return path;
}

Config ExecConfigFor(const std::string& command, std::string api_version) {
  Config c;
  c.server = "https://example";
  c.exec = ExecConfig{std::move(api_version), command, {"7"}, {{"FOO", "bar"}}, "Never", false};
  return c;
}

TEST(Authenticator, ExecPluginTokenIsCachedUntilExpiryAndRefreshedAfterInvalidate) {
  TempDir dir;
  const auto plugin = WritePlugin(dir, "client.authentication.k8s.io/v1");
  system_clock::time_point now = *ParseRfc3339("2029-12-31T23:00:00Z");
  Authenticator auth(ExecConfigFor(plugin, "client.authentication.k8s.io/v1"), [&] { return now; });
  auto creds = auth.Get();
  ASSERT_TRUE(creds) << creds.error().ToString();
  EXPECT_EQ(creds->token, "tok-7");
  ASSERT_TRUE(auth.Get());
  EXPECT_EQ(CountLines(dir.path() + "/runs"), 1);  // cached
  now = *ParseRfc3339("2030-01-01T00:00:01Z");     // expired: run again
  ASSERT_TRUE(auth.Get());
  EXPECT_EQ(CountLines(dir.path() + "/runs"), 2);
  EXPECT_TRUE(auth.Invalidate());  // as after a 401
  ASSERT_TRUE(auth.Get());
  EXPECT_EQ(CountLines(dir.path() + "/runs"), 3);

  std::ifstream runs(dir.path() + "/runs");
  std::string first;
  std::getline(runs, first);
  EXPECT_THAT(first, HasSubstr(R"("kind":"ExecCredential")"));
  EXPECT_THAT(first, HasSubstr(R"("interactive":false)"));
  EXPECT_THAT(first, HasSubstr(" bar"));  // env from the kubeconfig
}

TEST(Authenticator, ExecPluginV1beta1AndApiVersionMismatch) {
  TempDir dir;
  const auto plugin = WritePlugin(dir, "client.authentication.k8s.io/v1beta1");
  Authenticator good(ExecConfigFor(plugin, "client.authentication.k8s.io/v1beta1"));
  const auto ok = good.Get();
  ASSERT_TRUE(ok) << ok.error().ToString();
  EXPECT_EQ(ok->token, "tok-7");
  Authenticator bad(ExecConfigFor(plugin, "client.authentication.k8s.io/v1"));
  const auto creds = bad.Get();
  ASSERT_FALSE(creds);
  EXPECT_THAT(creds.error().message, HasSubstr("answered apiVersion"));
}

TEST(Authenticator, FailingPluginReportsItsStderr) {
  TempDir dir;
  const auto plugin = dir.Write("fail.sh", "#!/bin/sh\necho 'login required' >&2\nexit 3\n");
  ::chmod(plugin.c_str(), 0755);
  Authenticator auth(ExecConfigFor(plugin, "client.authentication.k8s.io/v1"));
  const auto creds = auth.Get();
  ASSERT_FALSE(creds);
  EXPECT_THAT(creds.error().message, HasSubstr("exited with 3"));
  EXPECT_THAT(creds.error().message, HasSubstr("login required"));

  Authenticator missing(ExecConfigFor(dir.path() + "/nope", "client.authentication.k8s.io/v1"));
  const auto none = missing.Get();
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().message, HasSubstr(dir.path() + "/nope"));
}

TEST(Authenticator, TokenFileIsReReadWhenItChanges) {
  TempDir dir;
  const auto file = dir.Write("token", "first\n");
  Config c;
  c.server = "https://example";
  c.token_file = file;
  Authenticator auth(c);
  EXPECT_EQ(auth.Get()->token, "first");
  dir.Write("token", "second-token");  // a different size, so seen even within one mtime tick
  EXPECT_EQ(auth.Get()->token, "second-token");
}

TEST(ParseRfc3339, UtcFractionsAndOffsets) {
  const auto utc = ParseRfc3339("2026-11-22T10:00:00Z");
  ASSERT_TRUE(utc);
  EXPECT_EQ(ParseRfc3339("2026-11-22T10:00:00.123456Z"), utc);
  EXPECT_EQ(ParseRfc3339("2026-11-22T12:00:00+02:00"), utc);
  EXPECT_EQ(ParseRfc3339("2026-11-22T05:00:00-05:00"), utc);
  EXPECT_FALSE(ParseRfc3339("yesterday"));
  EXPECT_FALSE(ParseRfc3339("2026-11-22T10:00:00"));
}

}  // namespace
}  // namespace millrace::kube
