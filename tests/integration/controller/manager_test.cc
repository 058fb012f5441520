// millrace-controller processes against a real control plane: leader election on a Lease (one
// leader; SIGKILL fails over within the lease duration; SIGTERM hands over at once), probes, and
// /metrics checked with the Prometheus Python client's parser.
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace millrace::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

Cluster& C() { return Cluster::Get(); }

// The operator's informers need Millrace's CRDs.
class LeaderElection : public ::testing::Test {
 protected:
  void SetUp() override { C().InstallCrds(); }
};
using Manager = LeaderElection;

uint16_t FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// One millrace-controller process with leader election in `ns`.
struct Operator {
  uint16_t port;
  std::unique_ptr<Subprocess> process;

  Operator(const std::string& ns, const std::string& name, const std::vector<std::string>& extra)
      : port(FreePort()) {
    std::vector<std::string> argv = {MILLRACE_CONTROLLER_BINARY,
                                     "--kubeconfig=" + C().kubeconfig(),
                                     "--bind-address=127.0.0.1:" + std::to_string(port),
                                     "--leader-elect",
                                     "--leader-election-namespace=" + ns,
                                     "--leader-election-id=millrace-test"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process = std::make_unique<Subprocess>(argv, C().state_dir() + "/" + name + ".log");
  }

  std::string Get(const std::string& path) const {
    const auto r =
        RunProcess({"curl", "-s", "-m", "2", "http://127.0.0.1:" + std::to_string(port) + path});
    return r.exit_code == 0 ? r.out : std::string{};
  }
  int Status(const std::string& path) const {
    const auto r = RunProcess({"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "2",
                               "http://127.0.0.1:" + std::to_string(port) + path});
    return r.exit_code == 0 ? std::stoi(r.out) : 0;
  }
  // 1 leader, 0 standby, -1 not answering.
  int Leading() const {
    const std::string metrics = Get("/metrics");
    const std::string series = "leader_election_master_status{name=\"millrace-test\"} ";
    const auto at = metrics.find(series);
    return at == std::string::npos ? -1 : std::stoi(metrics.substr(at + series.size()));
  }
};

const std::vector<std::string> kFastLease = {"--lease-duration=4s", "--renew-deadline=3s",
                                             "--retry-period=500ms"};

std::string Holder(const std::string& ns) {
  const auto r = C().Kubectl(
      {"get", "lease", "millrace-test", "-n", ns, "-o", "jsonpath={.spec.holderIdentity}"});
  return r.exit_code == 0 ? r.out : std::string{};
}

// Waits until exactly one of the two leads and returns its index.
int WaitForOneLeader(const Operator& a, const Operator& b, seconds timeout) {
  int leader = -1;
  WaitFor(
      [&] {
        const int la = a.Leading(), lb = b.Leading();
        leader = la == 1 && lb == 0 ? 0 : (lb == 1 && la == 0 ? 1 : -1);
        return leader >= 0;
      },
      timeout);
  return leader;
}

TEST_F(LeaderElection, ExactlyOneLeadsAndSigkillFailsOverWithinTheLeaseDuration) {
  const std::string ns = C().CreateNamespace();
  std::vector<Operator> ops;
  ops.emplace_back(ns, "le-kill-a", kFastLease);
  ops.emplace_back(ns, "le-kill-b", kFastLease);
  const int leader = WaitForOneLeader(ops[0], ops[1], seconds(60));
  ASSERT_GE(leader, 0) << ops[0].process->Log() << ops[1].process->Log();
  EXPECT_FALSE(Holder(ns).empty());

  // For a few lease renewals, never two leaders.
  const auto until = Clock::now() + seconds(3);
  while (Clock::now() < until) {
    ASSERT_FALSE(ops[0].Leading() == 1 && ops[1].Leading() == 1) << "two leaders at once";
  }

  const std::string old_holder = Holder(ns);
  ops[static_cast<size_t>(leader)].process->Signal(SIGKILL);
  const auto killed = Clock::now();
  const Operator& standby = ops[static_cast<size_t>(1 - leader)];
  ASSERT_TRUE(WaitFor([&] { return standby.Leading() == 1; }, seconds(30)))
      << standby.process->Log();
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - killed);
  EXPECT_NE(Holder(ns), old_holder);
  // The standby waits out the lease from the last renewal it saw: lease duration plus one retry
  // period of observation lag, plus the polling here.
  EXPECT_LE(took.count(), 4000 + 500 + 1000) << "took " << took.count() << " ms";
  std::cout << "[ metric ] SIGKILL failover took " << took.count() << " ms (lease 4s)\n";
}

TEST_F(LeaderElection, SigtermReleasesTheLeaseAndTheStandbyLeadsWithinTwoSeconds) {
  const std::string ns = C().CreateNamespace();
  // The default retry period (1s) decides how soon a standby notices a released lease.
  const std::vector<std::string> defaults = {};
  std::vector<Operator> ops;
  ops.emplace_back(ns, "le-term-a", defaults);
  ops.emplace_back(ns, "le-term-b", defaults);
  const int leader = WaitForOneLeader(ops[0], ops[1], seconds(60));
  ASSERT_GE(leader, 0) << ops[0].process->Log() << ops[1].process->Log();

  Operator& old = ops[static_cast<size_t>(leader)];
  old.process->Signal(SIGTERM);
  const auto termed = Clock::now();
  const Operator& standby = ops[static_cast<size_t>(1 - leader)];
  ASSERT_TRUE(WaitFor([&] { return standby.Leading() == 1; }, seconds(20)))
      << standby.process->Log();
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - termed);
  EXPECT_LE(took.count(), 2000) << "took " << took.count() << " ms";
  std::cout << "[ metric ] SIGTERM handover took " << took.count() << " ms\n";
  EXPECT_EQ(old.process->Wait(seconds(10)), 0) << "graceful exit: " << old.process->Log();
  EXPECT_NE(old.process->Log().find("released the lease"), std::string::npos);
}

TEST_F(Manager, ProbesAnswerAndMetricsParseAsPrometheusTextAndMove) {
  const std::string ns = C().CreateNamespace();
  Operator op(ns, "metrics", kFastLease);
  ASSERT_TRUE(WaitFor([&] { return op.Leading() == 1; }, seconds(60))) << op.process->Log();
  EXPECT_EQ(op.Status("/healthz"), 200);
  EXPECT_EQ(op.Status("/readyz"), 200);
  EXPECT_EQ(op.Status("/nope"), 404);

  // The Prometheus client's own parser reads every family; print the lease requests it saw.
  const std::string parse = R"(
import sys
from prometheus_client.parser import text_string_to_metric_families
total = 0
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        if s.name == "rest_client_requests_total" and s.labels.get("verb") in ("get", "update"):
            total += s.value
print(int(total))
)";
  auto lease_requests = [&] {
    const auto r = RunProcess({"/usr/bin/python3", "-c", parse}, op.Get("/metrics"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? std::stoi(r.out) : -1;
  };
  const int before = lease_requests();
  EXPECT_GT(before, 0);
  // Renewals every 500ms move the request counters.
  EXPECT_TRUE(WaitFor([&] { return lease_requests() >= before + 2; }, seconds(10)));
  const std::string metrics = op.Get("/metrics");
  for (const char* family : {"process_resident_memory_bytes", "leader_election_master_status",
                             "rest_client_requests_total"}) {
    EXPECT_NE(metrics.find(family), std::string::npos) << family;
  }
  // Every request so far went over connections it opened: at least the lease's and the watches'.
  const std::string opened = "\nmillrace_api_connections_opened_total ";
  const size_t at = metrics.find(opened);
  ASSERT_NE(at, std::string::npos) << metrics;
  EXPECT_GE(std::stod(metrics.substr(at + opened.size())), 1.0);
  op.process->Signal(SIGTERM);
  EXPECT_EQ(op.process->Wait(seconds(10)), 0);
}

TEST_F(Manager, BadFlagsAreRejectedWithTheFlagName) {
  const auto r = RunProcess({MILLRACE_CONTROLLER_BINARY, "--lease-duration=soon"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--lease-duration"), std::string::npos) << r.err;
  const auto help = RunProcess({MILLRACE_CONTROLLER_BINARY, "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--leader-elect"), std::string::npos);
}

}  // namespace
}  // namespace millrace::testing
