#include "controller/flags.h"

#include <gtest/gtest.h>

namespace millrace::controller {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(Flags, DefaultsMatchTheDocumentedOnes) {
  auto f = ParseFlags({});
  ASSERT_TRUE(f) << f.error();
  EXPECT_EQ(f->bind_address, ":8080");
  EXPECT_FALSE(f->leader_elect);
  EXPECT_EQ(f->lease_duration, seconds(15));
  EXPECT_EQ(f->renew_deadline, seconds(10));
  EXPECT_EQ(f->retry_period, seconds(1));
  EXPECT_EQ(f->leader_election_id, "millrace-controller");
}

TEST(Flags, BothValueSpellingsAndBareBooleans) {
  auto f = ParseFlags({"--leader-elect", "--kubeconfig", "/k", "--retry-period=250ms",
                       "--workers=8", "--log-level", "debug"});
  ASSERT_TRUE(f) << f.error();
  EXPECT_TRUE(f->leader_elect);
  EXPECT_EQ(f->kubeconfig, "/k");
  EXPECT_EQ(f->retry_period, milliseconds(250));
  EXPECT_EQ(f->workers, 8);
  EXPECT_EQ(f->log_level, "debug");
  auto off = ParseFlags({"--leader-elect=false"});
  ASSERT_TRUE(off);
  EXPECT_FALSE(off->leader_elect);
}

TEST(Flags, ErrorsNameTheFlag) {
  EXPECT_EQ(ParseFlags({"--nope"}).error(), "unknown flag --nope (see --help)");
  EXPECT_EQ(ParseFlags({"--workers=0"}).error(), "--workers: invalid value \"0\"");
  EXPECT_EQ(ParseFlags({"--kubeconfig"}).error(), "--kubeconfig needs a value");
  EXPECT_EQ(ParseFlags({"--log-level=loud"}).error(), "--log-level: invalid value \"loud\"");
  EXPECT_EQ(ParseFlags({"--renew-deadline=20s"}).error(),
            "--renew-deadline must be shorter than --lease-duration");
  EXPECT_EQ(ParseFlags({"stray"}).error(), "unexpected argument \"stray\"");
}

TEST(Flags, WebhookServerIsOffUnlessAskedFor) {
  auto f = ParseFlags({});
  ASSERT_TRUE(f) << f.error();
  EXPECT_EQ(f->webhook_bind_address, "0");
  EXPECT_TRUE(f->webhook_cert_dir.empty());
  EXPECT_EQ(f->webhook_hosts.front(), "millrace-webhook.millrace-system.svc");
  auto on = ParseFlags({"--webhook-bind-address=:9443", "--webhook-hosts=a.svc,127.0.0.1",
                        "--webhook-configuration", "millrace-webhook"});
  ASSERT_TRUE(on) << on.error();
  EXPECT_EQ(on->webhook_bind_address, ":9443");
  EXPECT_EQ(on->webhook_hosts, (std::vector<std::string>{"a.svc", "127.0.0.1"}));
  EXPECT_EQ(on->webhook_configuration, "millrace-webhook");
  EXPECT_EQ(ParseFlags({"--webhook-bind-address=9443"}).error(),
            "--webhook-bind-address: invalid value \"9443\"");
  EXPECT_EQ(ParseFlags({"--webhook-hosts=,"}).error(), "--webhook-hosts: invalid value \",\"");
}

TEST(Flags, DurationsAndBindAddresses) {
  EXPECT_EQ(ParseFlagDuration("1m30s"), seconds(90));
  EXPECT_EQ(ParseFlagDuration("2h"), std::chrono::hours(2));
  EXPECT_EQ(ParseFlagDuration("15"), std::nullopt);
  EXPECT_EQ(ParseFlagDuration("s"), std::nullopt);
  EXPECT_EQ(ParseBindAddress(":8080"), (std::pair<std::string, uint16_t>{"0.0.0.0", 8080}));
  EXPECT_EQ(ParseBindAddress("127.0.0.1:0"), (std::pair<std::string, uint16_t>{"127.0.0.1", 0}));
  EXPECT_EQ(ParseBindAddress("localhost"), std::nullopt);
  EXPECT_EQ(ParseBindAddress(":99999"), std::nullopt);
}

}  // namespace
}  // namespace millrace::controller
