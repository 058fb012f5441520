#pragma once

// A test fixture for end-to-end tests of the reconcilers: the real millrace-controller binary
// (MILLRACE_CONTROLLER_BINARY, compiled into the test) runs against the binary's cluster, and each
// test works in a namespace of its own.

#include <algorithm>
#include <chrono>
#include <csignal>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace millrace::testing {

// The names every operator test uses.
using nlohmann::json;
using std::chrono::seconds;
using ::testing::HasSubstr;

class OperatorTest : public ::testing::Test {
 protected:
  using json = nlohmann::json;

  // Starts millrace-controller with `extra` flags and `env` ("NAME=value", e.g. failpoints:
  // MILLRACE_FAILPOINTS=...), logging to the cluster's state directory.
  static std::unique_ptr<Subprocess> StartOperator(const std::string& log_name,
                                                   const std::vector<std::string>& extra = {},
                                                   const std::vector<std::string>& env = {}) {
    std::vector<std::string> argv = {MILLRACE_CONTROLLER_BINARY,
                                     "--kubeconfig=" + Cluster::Get().kubeconfig(),
                                     "--bind-address=127.0.0.1:0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<Subprocess>(argv, Cluster::Get().state_dir() + "/" + log_name, env);
  }

  // For a suite's SetUpTestSuite: the CRDs, then the operator.
  static void StartSuite(const std::string& log_name, const std::vector<std::string>& extra = {}) {
    Cluster::Get().InstallCrds();
    op_ = StartOperator(log_name, extra);
  }
  // The suite's operator must still run, then stop cleanly on SIGTERM: exit code 0 and no
  // sanitizer report (scripts/test runs it under AddressSanitizer and UBSan).
  static void TearDownTestSuite() {
    if (op_) ExpectCleanStop(*op_);
    op_.reset();
  }

  // For one test: the suite's operator is stopped (cleanly) and replaced by one started with
  // `extra` flags and `env` (failpoints, say); when the guard goes, that one is stopped and a plain
  // operator started again.
  class OperatorSwap {
   public:
    OperatorSwap(const std::string& log_name, const std::vector<std::string>& extra,
                 const std::vector<std::string>& env) {
      ExpectCleanStop(*op_);
      op_ = StartOperator(log_name, extra, env);
    }
    ~OperatorSwap() {
      ExpectCleanStop(*op_);
      op_ = StartOperator("restarted-" + std::to_string(++restarts_) + ".log");
    }
    OperatorSwap(const OperatorSwap&) = delete;
    OperatorSwap& operator=(const OperatorSwap&) = delete;

   private:
    static inline int restarts_ = 0;
  };

  // SIGTERMs `process` and fails the current test (or suite) unless it was still running, exits
  // 0 within 30 s, and its log holds no sanitizer report.
  static void ExpectCleanStop(Subprocess& process) {
    if (!process.Running()) {
      ADD_FAILURE() << "the operator exited before the end: " << Tail(process.Log());
      return;
    }
    // SIGTERM is handled from before the operator logs "starting"; one sent earlier (right after a
    // restart, under ASan's slow start) would kill it with the default action.
    WaitFor([&] { return !process.Running() || LogLine(process, "starting").is_object(); },
            std::chrono::seconds{30});
    process.Signal(SIGTERM);
    const std::optional<int> code = process.Wait(std::chrono::seconds{30});
    EXPECT_EQ(code, std::optional<int>(0))
        << "the operator's exit on SIGTERM: " << Tail(process.Log());
    ExpectNoSanitizerReport(process);
  }

  static std::string Tail(const std::string& log, size_t bytes = 6000) {
    return log.substr(log.size() > bytes ? log.size() - bytes : 0);
  }

  void SetUp() override { ns_ = Cluster::Get().CreateNamespace(); }
  void TearDown() override {
    if (!HasFailure() || !op_) return;
    std::cerr << "operator log (tail):\n" << Tail(op_->Log());
  }

  // The last line of `process`'s JSON log whose msg is `msg` (null when there is none yet), e.g.
  // "serving admission webhooks" with the port the operator bound.
  static json LogLine(const Subprocess& process, std::string_view msg) {
    json found;
    std::istringstream lines(process.Log());
    for (std::string line; std::getline(lines, line);) {
      json entry = json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (entry.is_object() && StringAt(entry, "msg") == msg) found = std::move(entry);
    }
    return found;
  }

  // `kubectl get kind name -o json` in the test's namespace; null when it does not exist.
  json Get(const std::string& kind, const std::string& name) const {
    const auto r = Cluster::Get().Kubectl({"get", kind, name, "-n", ns_, "-o", "json"});
    return r.exit_code == 0 ? json::parse(r.out) : json();
  }

  // object.<key> when it is a string, else "" (absent, null, or object not an object).
  static std::string StringAt(const json& object, const std::string& key) {
    if (!object.is_object()) return "";
    const auto it = object.find(key);
    return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
  }

  // status.<field> as a string, or "" before the operator wrote a status.
  static std::string StatusField(const json& object, const std::string& field) {
    return object.is_object() && object.contains("status") ? StringAt(object["status"], field) : "";
  }
  static std::string Phase(const json& object) { return StatusField(object, "phase"); }

  // The reasons of the events about our resource `name` (written as events.k8s.io/v1, read through
  // core/v1, whose field selectors every release supports), oldest first. Events about a built-in
  // object of the same name (a Deployment's, say) are not ours; those carry a null eventTime.
  std::vector<std::string> EventReasons(const std::string& name) const {
    const json events = Cluster::Get().KubectlJson(
        {"get", "events", "-n", ns_, "--field-selector", "involvedObject.name=" + name});
    std::vector<std::pair<std::string, std::string>> seen;
    for (const auto& e : events["items"]) {
      if (!StringAt(e.value("involvedObject", json::object()), "apiVersion")
               .starts_with("millrace.io/"))
        continue;
      seen.emplace_back(StringAt(e, "eventTime"), StringAt(e, "reason"));
    }
    std::sort(seen.begin(), seen.end());
    std::vector<std::string> reasons;
    for (auto& [time, reason] : seen) reasons.push_back(reason);
    return reasons;
  }

  // Waits until `holds` is true of `kind` `name` (null while it does not exist); returns the
  // object as last seen, for the test to assert on.
  json WaitForObject(const std::string& kind, const std::string& name,
                     const std::function<bool(const json&)>& holds,
                     std::chrono::seconds timeout) const {
    json object;
    WaitFor(
        [&] {
          object = Get(kind, name);
          return holds(object);
        },
        timeout);
    return object;
  }

  // Waits until `kind` `name` has status.phase `phase`; returns it as last seen.
  json WaitForPhase(const std::string& kind, const std::string& name, const std::string& phase,
                    std::chrono::seconds timeout) const {
    return WaitForObject(
        kind, name, [&](const json& o) { return Phase(o) == phase; }, timeout);
  }

  // True when `object` exists and is being deleted (metadata.deletionTimestamp is set).
  static bool Terminating(const json& object) {
    return object.is_object() && object["metadata"].contains("deletionTimestamp");
  }

  // kubectl patch --type=merge of `kind` `name` in the test's namespace; kubectl's exit code.
  int MergePatch(const std::string& kind, const std::string& name, const std::string& patch) const {
    return C().Kubectl({"patch", kind, name, "-n", ns_, "--type=merge", "-p", patch}).exit_code;
  }

  // Sets (hold) or clears the finalizers of `kind` `name` to millrace-test/hold, so that a
  // deletion of it waits until the test lets it go; returns kubectl's exit code.
  int Hold(const std::string& kind, const std::string& name, bool hold) const {
    return MergePatch(kind, name,
                      hold ? R"({"metadata":{"finalizers":["millrace-test/hold"]}})"
                           : R"({"metadata":{"finalizers":null}})");
  }

  std::string ns_;
  static inline std::unique_ptr<Subprocess> op_;
};

}  // namespace millrace::testing
