// millrace-controller processes against a real control plane: leader election on a Lease (one
// leader; SIGKILL fails over within the lease duration; SIGTERM hands over at once), probes, and
// /metrics checked with the Prometheus Python client's parser.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <sstream>
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

  Operator(const std::string& ns, const std::string& name, const std::vector<std::string>& extra,
           const std::string& kubeconfig = C().kubeconfig(),
           const std::vector<std::string>& env = {})
      : port(FreePort()) {
    std::vector<std::string> argv = {MILLRACE_CONTROLLER_BINARY,
                                     "--kubeconfig=" + kubeconfig,
                                     "--bind-address=127.0.0.1:" + std::to_string(port),
                                     "--leader-elect",
                                     "--leader-election-namespace=" + ns,
                                     "--leader-election-id=millrace-test"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process = std::make_unique<Subprocess>(argv, C().state_dir() + "/" + name + ".log", env);
  }

  // The identity it elects with (and names itself by in its User-Agent), from its log.
  std::string Identity() const {
    std::istringstream lines(process->Log());
    for (std::string line; std::getline(lines, line);) {
      const json entry = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (entry.is_object() && entry.value("msg", "") == "waiting to acquire the lease") {
        return entry.value("identity", "");
      }
    }
    return "";
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
  // The value of one series of /metrics (name and labels as exposed), -1 when absent.
  double Metric(const std::string& series) const {
    const std::string metrics = Get("/metrics");
    const auto at = metrics.find(series + " ");
    return at == std::string::npos ? -1 : std::stod(metrics.substr(at + series.size() + 1));
  }
  // 1 leader, 0 standby, -1 not answering.
  int Leading() const {
    return static_cast<int>(Metric("leader_election_master_status{name=\"millrace-test\"}"));
  }
};

const std::vector<std::string> kFastLease = {"--lease-duration=4s", "--renew-deadline=3s",
                                             "--retry-period=500ms"};

std::string Holder(const std::string& ns) {
  const auto r = C().Kubectl(
      {"get", "lease", "millrace-test", "-n", ns, "-o", "jsonpath={.spec.holderIdentity}"});
  return r.exit_code == 0 ? r.out : std::string{};
}

// Two replicas, <name>-a and <name>-b, electing a leader in `ns`.
std::vector<Operator> TwoReplicas(const std::string& ns, const std::string& name,
                                  const std::vector<std::string>& extra,
                                  const std::vector<std::string>& env = {}) {
  std::vector<Operator> ops;
  ops.reserve(2);
  ops.emplace_back(ns, name + "-a", extra, C().kubeconfig(), env);
  ops.emplace_back(ns, name + "-b", extra, C().kubeconfig(), env);
  return ops;
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
  std::vector<Operator> ops = TwoReplicas(ns, "le-kill", kFastLease);
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
  std::vector<Operator> ops = TwoReplicas(ns, "le-term", defaults);
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

// A task whose pod runs `seconds` (kwok's pod-complete stage waits that long).
std::string Task(const std::string& name, int run_seconds) {
  return "apiVersion: millrace.io/v1alpha1\nkind: Task\nmetadata:\n  name: " + name +
         "\n  annotations: {" + KwokStageDelay("pod-complete", std::to_string(run_seconds) + "s") +
         "}\nspec:\n  role: Spout\n  output: {batch: {uri: \"s3://lake/raw\"}}\n"
         "  image: busybox\n";
}

bool IsWrite(const json& event) {
  const std::string verb = event.value("verb", "");
  return verb == "create" || verb == "update" || verb == "patch" || verb == "delete" ||
         verb == "deletecollection";
}

// The leader is frozen (SIGSTOP) past its lease while work keeps arriving, the standby takes
// over, then the old leader is resumed: the API server's audit log shows no write from the old
// leader after the standby's first lease write. A failpoint holds every Task reconcile a second
// before its status write, so the freeze catches reconciles about to write; the old leader's
// fence refuses them, and its kernel timer kills it while frozen, so even a write that passed the
// fence just before the freeze never goes out.
TEST_F(LeaderElection, AFrozenLeaderMakesNoWriteAfterTheStandbyTookOver) {
  const std::string ns = C().CreateNamespace();
  // An injected fault, not synchronisation: the operator holds each status write 1 s.
  const std::vector<std::string> slow_writes = {
      "MILLRACE_FAILPOINTS=task.before-status-patch=sleep(1000)"};
  std::vector<Operator> ops = TwoReplicas(ns, "le-freeze", kFastLease, slow_writes);
  const int leader = WaitForOneLeader(ops[0], ops[1], seconds(60));
  ASSERT_GE(leader, 0) << ops[0].process->Log() << ops[1].process->Log();
  Operator& old = ops[static_cast<size_t>(leader)];
  Operator& standby = ops[static_cast<size_t>(1 - leader)];
  // The standby logs its identity once its caches are synced, which may come after the leader
  // leads (ASan replicas on a busy machine sync slowly).
  ASSERT_TRUE(
      WaitFor([&] { return !old.Identity().empty() && !standby.Identity().empty(); }, seconds(60)))
      << standby.process->Log();
  const std::string old_id = old.Identity(), new_id = standby.Identity();

  for (int i = 0; i < 10; ++i) C().Apply(Task("before-" + std::to_string(i), 4), ns);
  ASSERT_TRUE(WaitFor(
      [&] {
        const json tasks = C().KubectlJson({"get", "tasks", "-n", ns, "-o", "json"});
        return std::all_of(tasks["items"].begin(), tasks["items"].end(),
                           [](const json& t) { return t.contains("status"); });
      },
      seconds(60)));

  // Reconciles in flight: new tasks, each held a second before its status write.
  for (int i = 0; i < 5; ++i) C().Apply(Task("racing-" + std::to_string(i), 2), ns);
  old.process->Signal(SIGSTOP);
  // Work the frozen leader's watches will bring it when it wakes.
  for (int i = 0; i < 10; ++i) C().Apply(Task("during-" + std::to_string(i), 2), ns);
  ASSERT_TRUE(WaitFor([&] { return standby.Leading() == 1; }, seconds(30)))
      << standby.process->Log();
  ASSERT_TRUE(WaitFor([&] { return Holder(ns) == new_id; }, seconds(10)));
  // Frozen past its fence, its own kernel timer kills it before it can resume (the standby took
  // over only after the lease duration, later than the timer). Then it is resumed, should it
  // still be there, and may try to write.
  const bool killed_while_frozen = WaitFor([&] { return !old.process->Running(); }, seconds(20));
  old.process->Signal(SIGCONT);
  EXPECT_TRUE(killed_while_frozen);
  EXPECT_EQ(old.process->Wait(seconds(20)), std::optional<int>(128 + SIGKILL))
      << old.process->Log();

  // The standby finishes everything.
  ASSERT_TRUE(WaitFor(
      [&] {
        const json tasks = C().KubectlJson({"get", "tasks", "-n", ns, "-o", "json"});
        return tasks["items"].size() == 25 &&
               std::all_of(tasks["items"].begin(), tasks["items"].end(), [](const json& t) {
                 return t.value("status", json::object()).value("phase", "") == "Succeeded";
               });
      },
      seconds(120)))
      << "standby running: " << standby.process->Running() << "\n"
      << C().Kubectl({"get", "tasks", "-n", ns}).out
      << standby.process->Log().substr(
             standby.process->Log().size() > 3000 ? standby.process->Log().size() - 3000 : 0);

  const std::vector<json> audit = C().AuditLog();
  std::string takeover;  // the standby's first successful lease write
  for (const json& e : audit) {
    const json& ref = e.value("objectRef", json::object());
    if (IsWrite(e) && ref.value("resource", "") == "leases" && ref.value("namespace", "") == ns &&
        e.value("userAgent", "").find(new_id) != std::string::npos &&
        e.value("responseStatus", json::object()).value("code", 0) < 300) {
      takeover = e.value("requestReceivedTimestamp", "");
      break;
    }
  }
  ASSERT_FALSE(takeover.empty()) << "no lease write by " << new_id << " in the audit log";
  int old_writes = 0;
  std::vector<std::string> late;
  for (const json& e : audit) {
    if (!IsWrite(e) || e.value("userAgent", "").find(old_id) == std::string::npos) continue;
    ++old_writes;
    // Timestamps are RFC 3339 with microseconds in UTC: they order as strings.
    if (e.value("requestReceivedTimestamp", "") >= takeover) late.push_back(e.dump());
  }
  EXPECT_GT(old_writes, 0) << "the old leader wrote nothing at all: is its User-Agent logged?";
  EXPECT_TRUE(late.empty()) << late.size() << " writes by the old leader after " << takeover
                            << ", first: " << late.front();
}

// Someone else takes the lease (here by hand): the leader finds it at its next renewal and exits 1
// at once, its fence closed first, without waiting for its in-flight reconciles (held a second
// each by a failpoint).
TEST_F(LeaderElection, ALeaderThatFindsItsLeaseTakenExitsAtOnce) {
  const std::string ns = C().CreateNamespace();
  // An injected fault, not synchronisation: the operator holds each status write 1 s.
  Operator op(ns, "le-taken", kFastLease, C().kubeconfig(),
              {"MILLRACE_FAILPOINTS=task.before-status-patch=sleep(1000)"});
  ASSERT_TRUE(WaitFor([&] { return op.Leading() == 1; }, seconds(60))) << op.process->Log();
  for (int i = 0; i < 5; ++i) C().Apply(Task("taken-" + std::to_string(i), 2), ns);
  const auto patched =
      C().Kubectl({"patch", "lease", "millrace-test", "-n", ns, "--type=merge", "-p",
                   R"({"spec":{"holderIdentity":"intruder","leaseDurationSeconds":60}})"});
  ASSERT_EQ(patched.exit_code, 0) << patched.err;
  EXPECT_EQ(op.process->Wait(seconds(10)), std::optional<int>(1)) << op.process->Log();
  EXPECT_NE(op.process->Log().find("another candidate holds the lease"), std::string::npos)
      << op.process->Log();
}

// The unprivileged token user may list and watch everything the operator reads except
// PriorityClasses: every informer but one syncs and delivers events, one never does.
void GrantAllButPriorityClasses() {
  C().Apply(R"(
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: millrace-test-almost-reader}
rules:
- apiGroups: ["", apps, batch, autoscaling, networking.k8s.io, rbac.authorization.k8s.io,
              millrace.io, coordination.k8s.io, events.k8s.io]
  resources: ["*"]
  verbs: [get, list, watch, create, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: millrace-test-almost-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: millrace-test-almost-reader}
subjects: [{kind: User, name: test-token-user, apiGroup: rbac.authorization.k8s.io}]
)");
}

// Objects arriving on the synced informers while the operator stops: the shutdown must not free
// a queue an informer still pushes into (the operator runs under AddressSanitizer in CI).
class TaskStream {
 public:
  explicit TaskStream(std::string ns)
      : ns_(std::move(ns)), thread_([this](std::stop_token stop) {
          for (int i = 0; !stop.stop_requested() && i < 200; ++i) {
            C().Kubectl({"create", "-n", ns_, "-f", "-"}, Task("stream-" + std::to_string(i), 1));
          }
        }) {}

 private:
  std::string ns_;
  std::jthread thread_;
};

TEST_F(Manager, SigtermWhileCachesSyncExitsCleanly) {
  const std::string ns = C().CreateNamespace();
  GrantAllButPriorityClasses();
  TaskStream stream(ns);
  Operator op(ns, "stop-in-sync", kFastLease, C().TokenKubeconfig());
  ASSERT_TRUE(WaitFor(
      [&] { return op.process->Log().find("informer synced") != std::string::npos; }, seconds(30)))
      << op.process->Log();
  EXPECT_EQ(op.Status("/readyz"), 503) << "one informer can never sync";
  op.process->Signal(SIGTERM);
  EXPECT_EQ(op.process->Wait(seconds(20)), std::optional<int>(0)) << op.process->Log();
  ExpectNoSanitizerReport(*op.process);
}

TEST_F(Manager, ACacheSyncTimeoutExitsOneCleanly) {
  const std::string ns = C().CreateNamespace();
  GrantAllButPriorityClasses();
  TaskStream stream(ns);
  std::vector<std::string> flags = kFastLease;
  flags.push_back("--cache-sync-timeout=3s");
  Operator op(ns, "sync-timeout", flags, C().TokenKubeconfig());
  EXPECT_EQ(op.process->Wait(seconds(30)), std::optional<int>(1)) << op.process->Log();
  EXPECT_NE(op.process->Log().find("cache did not sync in time"), std::string::npos);
  ExpectNoSanitizerReport(*op.process);
}

TEST_F(Manager, SigtermToAStandbyExitsCleanly) {
  const std::string ns = C().CreateNamespace();
  std::vector<Operator> ops = TwoReplicas(ns, "standby", kFastLease);
  const int leader = WaitForOneLeader(ops[0], ops[1], seconds(60));
  ASSERT_GE(leader, 0);
  TaskStream stream(ns);
  Operator& standby = ops[static_cast<size_t>(1 - leader)];
  // The stream's events are reaching the standby's caches.
  ASSERT_TRUE(WaitFor(
      [&] {
        return standby.Metric("millrace_informer_objects{resource=\"tasks.millrace.io\"}") > 0;
      },
      seconds(30)))
      << standby.Get("/metrics");
  standby.process->Signal(SIGTERM);
  EXPECT_EQ(standby.process->Wait(seconds(20)), std::optional<int>(0)) << standby.process->Log();
  ExpectNoSanitizerReport(*standby.process);
  ops[static_cast<size_t>(leader)].process->Signal(SIGTERM);
  EXPECT_EQ(ops[static_cast<size_t>(leader)].process->Wait(seconds(20)), std::optional<int>(0));
  ExpectNoSanitizerReport(*ops[static_cast<size_t>(leader)].process);
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
