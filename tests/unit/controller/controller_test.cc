#include "controller/controller.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

namespace millrace::controller {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

// Records calls and returns what `decide` says; lets a test wait for the n-th call.
class FakeReconciler : public Reconciler {
 public:
  std::function<Outcome(const Request&, const ReconcileContext&)> decide = [](auto&, auto&) {
    return Outcome::Done();
  };

  Outcome Reconcile(const Request& request, const ReconcileContext& context) override {
    const int now = ++active_;
    int seen = max_active_.load();
    while (now > seen && !max_active_.compare_exchange_weak(seen, now)) {
    }
    {
      std::lock_guard lock(mu_);
      if (++active_per_key_[request.key] > 1) ++overlaps_;
    }
    Outcome outcome = Outcome::Done();
    try {
      outcome = decide(request, context);
    } catch (...) {
      Finish(request, context);
      throw;
    }
    Finish(request, context);
    return outcome;
  }

  // Blocks until `n` reconciles have finished (or 10s passed: then the test fails).
  bool WaitForCalls(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, seconds{10}, [&] { return calls_ >= n; });
  }
  int calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::vector<std::string> ids() {
    std::lock_guard lock(mu_);
    return ids_;
  }
  int overlaps() const { return overlaps_.load(); }
  int max_active() const { return max_active_.load(); }

 private:
  void Finish(const Request& request, const ReconcileContext& context) {
    --active_;
    std::lock_guard lock(mu_);
    --active_per_key_[request.key];
    ++calls_;
    ids_.push_back(context.reconcile_id);
    cv_.notify_all();
  }

  std::atomic<int> active_{0};
  std::atomic<int> max_active_{0};
  std::atomic<int> overlaps_{0};
  std::map<std::string, int> active_per_key_;  // guarded by mu_
  std::mutex mu_;
  std::condition_variable cv_;
  int calls_ = 0;
  std::vector<std::string> ids_;
};

class ControllerTest : public ::testing::Test {
 protected:
  ControllerOptions Options(int workers = 1) {
    ControllerOptions o;
    o.name = "task";
    o.workers = workers;
    o.clock = &clock_;
    o.metrics = &registry_;
    o.logger = Logger(std::make_shared<spdlog::sinks::ostream_sink_mt>(log_), LogLevel::kInfo);
    return o;
  }
  std::string Metric(const std::string& line_prefix) {
    const std::string text = registry_.Expose();
    const auto pos = text.find(line_prefix + " ");
    if (pos == std::string::npos) return "absent";
    const auto end = text.find('\n', pos);
    return text.substr(pos + line_prefix.size() + 1, end - pos - line_prefix.size() - 1);
  }

  FakeClock clock_;
  Registry registry_;
  std::ostringstream log_;
  FakeReconciler reconciler_;
};

TEST(ApiErrorPolicy, RefusalsOfTheRequestAsItStandsAreTerminalEverythingElseRetries) {
  const auto error = [](kube::ErrorKind kind, std::string message = "") {
    return kube::Error{.kind = kind,
                       .http_code = 0,
                       .reason = "",
                       .message = std::move(message),
                       .causes = nullptr};
  };
  for (const kube::ErrorKind kind :
       {kube::ErrorKind::kInvalid, kube::ErrorKind::kBadRequest, kube::ErrorKind::kMethodNotAllowed,
        kube::ErrorKind::kForbidden}) {
    const Outcome outcome = Outcome::ApiError("creating Job x", error(kind, "refused"));
    EXPECT_EQ(outcome.kind(), Outcome::Kind::kTerminalError) << kube::ErrorKindName(kind);
    ASSERT_TRUE(outcome.api_error().has_value());
    EXPECT_EQ(outcome.api_error()->kind, kind);
    EXPECT_THAT(outcome.error(), HasSubstr("creating Job x: "));
  }
  for (const kube::ErrorKind kind :
       {kube::ErrorKind::kConflict, kube::ErrorKind::kAlreadyExists, kube::ErrorKind::kNotFound,
        kube::ErrorKind::kGone, kube::ErrorKind::kTimeout, kube::ErrorKind::kTooManyRequests,
        kube::ErrorKind::kServerError, kube::ErrorKind::kTransport, kube::ErrorKind::kUnauthorized,
        kube::ErrorKind::kFenced}) {
    EXPECT_EQ(Outcome::ApiError("x", error(kind)).kind(), Outcome::Kind::kTransientError)
        << kube::ErrorKindName(kind);
  }
  // A ResourceQuota's refusal is a 403 that usage moving (pods finishing) undoes.
  const kube::Error quota = error(kube::ErrorKind::kForbidden,
                                  "jobs.batch \"t-1\" is forbidden: exceeded quota: zone-quota, "
                                  "requested: count/jobs.batch=1, used: count/jobs.batch=4");
  EXPECT_TRUE(IsQuotaRefusal(quota));
  EXPECT_FALSE(IsTerminal(quota));
  EXPECT_EQ(Outcome::ApiError("creating Job t-1", quota).kind(), Outcome::Kind::kTransientError);
  // So is the refusal while the quota controller has not yet counted a new quota's usage.
  const kube::Error uncounted =
      error(kube::ErrorKind::kForbidden,
            "jobs.batch \"t-1\" is forbidden: status unknown for quota: fresh, resources: "
            "count/jobs.batch");
  EXPECT_TRUE(IsQuotaRefusal(uncounted));
  EXPECT_FALSE(IsTerminal(uncounted));
  // A refusal by RBAC is not.
  EXPECT_FALSE(IsQuotaRefusal(error(kube::ErrorKind::kForbidden,
                                    "jobs.batch is forbidden: User \"u\" cannot create resource "
                                    "\"jobs\" in API group \"batch\"")));
}

TEST_F(ControllerTest, SuccessForgetsAndCounts) {
  Controller c(Options(), reconciler_);
  c.Start();
  c.queue().Add("ns/a");
  ASSERT_TRUE(reconciler_.WaitForCalls(1));
  c.Stop();
  EXPECT_EQ(Metric("controller_runtime_reconcile_total{controller=\"task\",result=\"success\"}"),
            "1");
  EXPECT_EQ(c.queue().NumRequeues("ns/a"), 0);
}

TEST_F(ControllerTest, RequestSplitsNamespaceAndName) {
  EXPECT_EQ(Request{"ns/a"}.ns(), "ns");
  EXPECT_EQ(Request{"ns/a"}.name(), "a");
  EXPECT_EQ(Request{"cluster-wide"}.ns(), "");
  EXPECT_EQ(Request{"cluster-wide"}.name(), "cluster-wide");
}

TEST_F(ControllerTest, RequeueAfterReAddsAfterTheDelay) {
  std::atomic<int> n{0};
  reconciler_.decide = [&](auto&, auto&) {
    return ++n == 1 ? Outcome::RequeueAfter(seconds{30}) : Outcome::Done();
  };
  Controller c(Options(), reconciler_);
  c.Start();
  c.queue().Add("ns/a");
  ASSERT_TRUE(reconciler_.WaitForCalls(1));
  ASSERT_TRUE(clock_.WaitForSleeper(clock_.Now() + seconds{30}));  // the re-add is scheduled
  clock_.Advance(seconds{29});
  EXPECT_EQ(c.queue().Len(), 0u);
  EXPECT_EQ(reconciler_.calls(), 1);
  clock_.Advance(seconds{1});
  ASSERT_TRUE(reconciler_.WaitForCalls(2));
  c.Stop();
  EXPECT_EQ(
      Metric("controller_runtime_reconcile_total{controller=\"task\",result=\"requeue_after\"}"),
      "1");
  EXPECT_EQ(c.queue().NumRequeues("ns/a"), 0);
}

TEST_F(ControllerTest, TransientErrorsBackOffExponentiallyAndSuccessForgets) {
  std::atomic<int> n{0};
  reconciler_.decide = [&](auto&, auto&) {
    return ++n <= 3 ? Outcome::TransientError("boom") : Outcome::Done();
  };
  Controller c(Options(), reconciler_);
  c.Start();
  c.queue().Add("ns/a");
  ASSERT_TRUE(reconciler_.WaitForCalls(1));
  ASSERT_TRUE(clock_.WaitForSleeper(clock_.Now() + milliseconds{5}));  // first retry after 5ms
  EXPECT_EQ(c.queue().NumRequeues("ns/a"), 1);
  clock_.Advance(milliseconds{5});
  ASSERT_TRUE(reconciler_.WaitForCalls(2));
  ASSERT_TRUE(clock_.WaitForSleeper(clock_.Now() + milliseconds{10}));
  clock_.Advance(milliseconds{9});
  EXPECT_EQ(c.queue().Len(), 0u);  // second retry waits 10ms
  clock_.Advance(milliseconds{1});
  ASSERT_TRUE(reconciler_.WaitForCalls(3));
  ASSERT_TRUE(clock_.WaitForSleeper(clock_.Now() + milliseconds{20}));
  clock_.Advance(milliseconds{20});
  ASSERT_TRUE(reconciler_.WaitForCalls(4));
  c.Stop();
  EXPECT_EQ(c.queue().NumRequeues("ns/a"), 0);  // success forgot the backoff
  EXPECT_EQ(Metric("controller_runtime_reconcile_total{controller=\"task\",result=\"error\"}"),
            "3");
  EXPECT_EQ(Metric("controller_runtime_reconcile_errors_total{controller=\"task\"}"), "3");
  EXPECT_THAT(log_.str(), HasSubstr("\"error\":\"boom\""));
}

TEST_F(ControllerTest, TerminalErrorIsNotRetried) {
  reconciler_.decide = [](auto&, auto&) { return Outcome::TerminalError("bad spec"); };
  Controller c(Options(), reconciler_);
  c.Start();
  c.queue().Add("ns/a");
  ASSERT_TRUE(reconciler_.WaitForCalls(1));
  c.Stop();  // drains: the outcome has been applied to the queue
  EXPECT_EQ(Metric("workqueue_retries_total{name=\"task\"}"), "0");  // nothing re-added
  EXPECT_EQ(reconciler_.calls(), 1);
  EXPECT_EQ(
      Metric("controller_runtime_reconcile_total{controller=\"task\",result=\"terminal_error\"}"),
      "1");
  EXPECT_EQ(Metric("controller_runtime_reconcile_errors_total{controller=\"task\"}"), "1");
  EXPECT_EQ(c.queue().NumRequeues("ns/a"), 0);
}

TEST_F(ControllerTest, ExceptionIsContainedLoggedAndRetried) {
  std::atomic<int> n{0};
  reconciler_.decide = [&](auto&, auto&) -> Outcome {
    if (++n == 1) throw std::runtime_error("kaput");
    return Outcome::Done();
  };
  Controller c(Options(), reconciler_);
  c.Start();
  c.queue().Add("ns/a");
  ASSERT_TRUE(reconciler_.WaitForCalls(1));
  ASSERT_TRUE(clock_.WaitForSleeper(clock_.Now() + milliseconds{5}));
  EXPECT_EQ(c.queue().NumRequeues("ns/a"), 1);
  clock_.Advance(milliseconds{5});
  ASSERT_TRUE(reconciler_.WaitForCalls(2));
  c.Stop();
  EXPECT_THAT(log_.str(), HasSubstr("kaput"));
  EXPECT_EQ(Metric("controller_runtime_reconcile_total{controller=\"task\",result=\"error\"}"),
            "1");
}

TEST_F(ControllerTest, LogLinesNameControllerObjectAndReconcileId) {
  reconciler_.decide = [](const Request&, const ReconcileContext& ctx) {
    ctx.logger.Info("hello");
    return Outcome::Done();
  };
  Controller c(Options(), reconciler_);
  c.Start();
  c.queue().Add("ns/a");
  ASSERT_TRUE(reconciler_.WaitForCalls(1));
  c.Stop();
  const std::string id = reconciler_.ids().at(0);
  EXPECT_EQ(id.size(), 16u);
  EXPECT_THAT(log_.str(), HasSubstr("\"msg\":\"hello\",\"controller\":\"task\",\"object\":\"ns/"
                                    "a\",\"reconcileID\":\"" +
                                    id + "\""));
}

TEST_F(ControllerTest, SameKeyIsNeverReconciledConcurrently) {
  SystemClock& clock = SystemClock::Instance();
  ControllerOptions options = Options(4);
  options.clock = &clock;
  std::atomic<int> n{0};
  reconciler_.decide = [&](auto&, auto&) {
    // Some work, and occasional retries so delayed re-adds race with direct adds.
    volatile int spin = 0;
    for (int i = 0; i < 1000; ++i) spin = spin + 1;
    return ++n % 7 == 0 ? Outcome::RequeueAfter(milliseconds{1}) : Outcome::Done();
  };
  Controller c(std::move(options), reconciler_);
  c.Start();
  for (int i = 0; i < 20000; ++i) c.queue().Add("ns/k" + std::to_string(i % 6));
  ASSERT_TRUE(reconciler_.WaitForCalls(6));  // every key at least once
  c.Stop();
  EXPECT_EQ(reconciler_.overlaps(), 0);
  EXPECT_GT(reconciler_.max_active(), 0);
}

TEST_F(ControllerTest, StopDrainsTheReconcileInFlightAndSignalsIt) {
  std::mutex mu;
  std::condition_variable cv;
  bool started = false;
  std::atomic<bool> saw_stop{false};
  reconciler_.decide = [&](const Request&, const ReconcileContext& ctx) {
    {
      std::lock_guard lock(mu);
      started = true;
    }
    cv.notify_all();
    // A long reconcile that returns early when asked to stop.
    std::mutex m;
    std::condition_variable_any wait;
    std::unique_lock lock(m);
    wait.wait(lock, ctx.stop, [] { return false; });
    saw_stop = ctx.stop.stop_requested();
    return Outcome::Done();
  };
  Controller c(Options(2), reconciler_);
  c.Start();
  c.queue().Add("ns/a");
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return started; });
  }
  c.queue().Add("ns/b");  // may or may not start before Stop; must not run after Stop returns
  c.Stop();
  EXPECT_TRUE(saw_stop.load());
  const int calls = reconciler_.calls();
  EXPECT_GE(calls, 1);
  c.queue().Add("ns/c");
  EXPECT_EQ(reconciler_.calls(), calls);
  EXPECT_EQ(Metric("controller_runtime_active_workers{controller=\"task\"}"), "0");
}

TEST_F(ControllerTest, StartsOneWorkerAndGrowsToWorkersWhileAllAreBusy) {
  std::mutex mu;
  std::condition_variable cv;
  int running = 0;
  bool release = false;
  reconciler_.decide = [&](auto&, auto&) {
    std::unique_lock lock(mu);
    ++running;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    return Outcome::Done();
  };
  Controller c(Options(4), reconciler_);
  c.Start();
  EXPECT_EQ(c.worker_threads(), 1U);  // nothing to do: one thread
  for (int i = 0; i < 6; ++i) c.queue().Add("ns/k" + std::to_string(i));
  {
    std::unique_lock lock(mu);
    // Each busy worker started another until there were four, all reconciling at once.
    ASSERT_TRUE(cv.wait_for(lock, seconds{10}, [&] { return running == 4; }));
  }
  EXPECT_EQ(c.worker_threads(), 4U);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  ASSERT_TRUE(reconciler_.WaitForCalls(6));
  EXPECT_EQ(reconciler_.max_active(), 4);
  EXPECT_EQ(c.worker_threads(), 4U);  // never more than `workers`
  c.Stop();
}

}  // namespace
}  // namespace millrace::controller
