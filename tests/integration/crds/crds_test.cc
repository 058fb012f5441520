// The CRD manifests against a real API server: they install and become Established, every sample
// is accepted and agrees with the C++ types (including defaults), the schema and CEL rules reject
// the invalid examples the API server can catch on its own (naming the field), and
// `kubectl get millrace` shows the printer columns.
#include <chrono>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crds/defaults.h"
#include "crds/kinds.h"
#include "crds/model_version.h"
#include "crds/pipeline.h"
#include "crds/task.h"
#include "crds/validation.h"
#include "crds/zone.h"
#include "tests/support/cluster.h"
#include "tests/unit/crds/testdata.h"

namespace millrace::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using ::testing::HasSubstr;

// "zones.millrace.io", ...: every kind of crds/kinds.def.
std::vector<std::string> CrdNames() {
  std::vector<std::string> names;
  for (const kube::ResourceRef* kind : api::kKindResources) {
    names.push_back(kind->resource + "." + kind->group);
  }
  return names;
}

bool Established(const json& crd) {
  for (const auto& c : crd.value("/status/conditions"_json_pointer, json::array()))
    if (c.value("type", "") == "Established" && c.value("status", "") == "True") return true;
  return false;
}

// Installs the CRDs once per test binary, as a user would (server-side apply of the directory).
void InstallCrds() {
  static bool installed = false;
  if (installed) return;
  const auto r = C().Kubectl({"apply", "--server-side", "--field-manager=millrace-test", "-f",
                              SourceDir() + "/crds/manifests/"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const std::string& crd : CrdNames()) {
    json obj;
    ASSERT_TRUE(WaitFor(
        [&] {
          const auto got = C().Kubectl({"get", "crd", crd, "-o", "json"});
          if (got.exit_code != 0) return false;
          obj = json::parse(got.out);
          return Established(obj);
        },
        seconds(30)))
        << crd << " never became Established: " << obj.dump(2);
  }
  // Discovery of the new group lags Established a little: wait until kubectl can list each kind.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (const char* kind : {"zones", "tasks", "pipelines", "modelversions"})
          if (C().Kubectl({"get", kind, "-A"}).exit_code != 0) return false;
        return true;
      },
      seconds(30)));
  installed = true;
}

bool Namespaced(const json& obj) { return obj.value("kind", "") != "Zone"; }

// The object without its namespace, so it can be applied into a test namespace.
json InNamespace(json obj) {
  obj["metadata"].erase("namespace");
  return obj;
}

ProcessResult Apply(const json& obj, const std::string& ns, bool dry_run = false) {
  std::vector<std::string> args{"apply", "-f", "-"};
  if (Namespaced(obj)) args.push_back("--namespace=" + ns);
  if (dry_run) args.push_back("--dry-run=server");
  return C().Kubectl(args, InNamespace(obj).dump());
}

template <class T>
void ValidationErrorsOk(const T& obj) {
  EXPECT_TRUE(api::Validate(obj).empty()) << api::ToString(api::Validate(obj));
}

template <class T>
void CheckAgainstServer(const json& sample, const json& stored) {
  // The stored object (schema defaults applied by the API server) parses...
  auto from_server = T::FromJson(stored);
  ASSERT_TRUE(from_server) << api::ToString(from_server.error());
  EXPECT_EQ(from_server->ToJson()["spec"], stored["spec"]) << "the C++ types lose or change fields";
  ValidationErrorsOk(*from_server);
  // ...and the C++ defaults are exactly the schema's defaults.
  auto local = T::FromJson(sample);
  ASSERT_TRUE(local);
  api::Default(*local);
  EXPECT_EQ(local->ToJson()["spec"], stored["spec"])
      << "C++ Default() and the CRD schema's defaults differ";
}

TEST(Crds, InstallAndBecomeEstablished) {
  InstallCrds();
  const auto crd = C().KubectlJson({"get", "crd", "pipelines.millrace.io"});
  EXPECT_EQ(crd["spec"]["names"]["shortNames"], json::array({"pl"}));
  EXPECT_EQ(crd["spec"]["names"]["categories"], json::array({"millrace"}));
  // Applying again is a no-op (the manifests are stable under server-side apply).
  const auto again = C().Kubectl({"apply", "--server-side", "--field-manager=millrace-test", "-f",
                                  SourceDir() + "/crds/manifests/"});
  EXPECT_EQ(again.exit_code, 0) << again.err;
}

TEST(Crds, EverySampleIsAcceptedAndAgreesWithTheTypes) {
  InstallCrds();
  const std::string ns = C().CreateNamespace();
  const auto samples = api::testing::LoadSamples();
  ASSERT_GE(samples.size(), 6U);
  for (const auto& s : samples) {
    SCOPED_TRACE(s.file);
    const auto r = Apply(s.object, ns);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string kind = s.object["kind"];
    const std::string name = s.object["metadata"]["name"];
    std::vector<std::string> get{"get", kind + ".millrace.io", name};
    if (Namespaced(s.object)) get.push_back("--namespace=" + ns);
    const json stored = C().KubectlJson(get);
    ASSERT_TRUE(stored.is_object());
    if (kind == "Zone") CheckAgainstServer<api::Zone>(s.object, stored);
    if (kind == "Task") CheckAgainstServer<api::Task>(s.object, stored);
    if (kind == "Pipeline") CheckAgainstServer<api::Pipeline>(s.object, stored);
    if (kind == "ModelVersion") CheckAgainstServer<api::ModelVersion>(s.object, stored);
  }

  // kubectl get millrace lists them all, with the printer columns.
  const auto all = C().Kubectl({"get", "millrace", "-A"});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  for (const auto& s : samples)
    EXPECT_THAT(all.out, HasSubstr(s.object["metadata"]["name"].get<std::string>()));
  for (const char* column : {"TYPE", "ROLE", "PHASE", "ATTEMPTS", "PROGRESS", "FAILED-STEP",
                             "MODEL", "VERSION", "STAGE", "READY", "AGE"}) {
    EXPECT_THAT(all.out, HasSubstr(column));
  }
  const auto mv = C().Kubectl({"get", "mv", "-n", ns});
  EXPECT_THAT(mv.out, HasSubstr("churn-classifier   7         Production"));
  const auto zones = C().Kubectl({"get", "zn", "-o", "wide"});
  EXPECT_THAT(zones.out, HasSubstr("CPU"));
  EXPECT_THAT(zones.out, HasSubstr("Development"));
}

TEST(Crds, ApiServerRejectsWhatItCanAndNamesTheField) {
  InstallCrds();
  const std::string ns = C().CreateNamespace();
  const auto examples = api::testing::LoadInvalidExamples();
  int rejected = 0;
  for (const auto& ex : examples) {
    SCOPED_TRACE(ex.file);
    ProcessResult r;
    if (ex.update) {
      const auto first = Apply(ex.docs.at(0), ns);
      ASSERT_EQ(first.exit_code, 0) << "the original object must be valid: " << first.err;
      r = Apply(ex.docs.at(1), ns, /*dry_run=*/!ex.apiserver_rejects);
    } else {
      r = Apply(ex.docs.at(0), ns, /*dry_run=*/true);
    }
    if (ex.apiserver_rejects) {
      ++rejected;
      EXPECT_NE(r.exit_code, 0) << "accepted: " << r.out;
      EXPECT_THAT(r.err, HasSubstr(ex.apiserver_path));
    } else {
      // Only the validating webhook (crds/validation.h) catches these; if the API server starts to
      // reject one, mark it "apiserver: reject".
      EXPECT_EQ(r.exit_code, 0) << r.err;
    }
  }
  EXPECT_GE(rejected, 15);
}

TEST(Crds, AFiveHundredStepPipelineFitsTheCelBudgets) {
  InstallCrds();
  const std::string ns = C().CreateNamespace();
  json steps = json::array();
  for (int i = 0; i < 500; ++i) {
    json task = {{"role", i == 0 ? "Spout" : "Bolt"},
                 {"image", "ghcr.io/acme/step:1.0.0"},
                 {"args", {"--step=" + std::to_string(i), "--date={{params.date}}"}},
                 {"resources", {{"requests", {{"cpu", "100m"}, {"memory", "128Mi"}}}}},
                 {"results", {{{"name", "r"}}}},
                 {"retries", {{"limit", 2}}}};
    json step = {{"name", "s" + std::to_string(i)}};
    if (i > 0) {
      task["input"] = {{"batch", {{"uri", "s3://b/" + std::to_string(i - 1)}}}};
      step["dependsOn"] = {"s" + std::to_string(i % 10 == 0 ? 0 : i - 1)};
    }
    step["task"] = task;
    steps.push_back(step);
  }
  const json pipeline = {
      {"apiVersion", "millrace.io/v1alpha1"},
      {"kind", "Pipeline"},
      {"metadata", {{"name", "big"}}},
      {"spec", {{"params", {{{"name", "date"}, {"value", "2026-11-22"}}}}, {"steps", steps}}}};
  auto parsed = api::ParseAndValidate<api::Pipeline>(pipeline);
  ASSERT_TRUE(parsed) << api::ToString(parsed.error());
  // kubectl create: the object is too large for client-side apply's last-applied annotation.
  const auto created = C().Kubectl({"create", "-n", ns, "-f", "-"}, pipeline.dump());
  ASSERT_EQ(created.exit_code, 0) << created.err;
  const auto cancel = C().Kubectl({"patch", "pipeline", "big", "-n", ns, "--type=merge", "-p",
                                   R"({"spec": {"cancel": true}})"});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.err;
  const auto edit = C().Kubectl({"patch", "pipeline", "big", "-n", ns, "--type=json", "-p",
                                 R"([{"op": "replace", "path": "/spec/steps/499/task/image",
                                      "value": "other"}])"});
  EXPECT_NE(edit.exit_code, 0);
  EXPECT_THAT(edit.err, HasSubstr("spec.steps: Invalid value"));
  EXPECT_THAT(edit.err, HasSubstr("a Pipeline is a run"));
}

TEST(Crds, StatusIsASubresource) {
  InstallCrds();
  const std::string ns = C().CreateNamespace();
  C().Apply(R"(
apiVersion: millrace.io/v1alpha1
kind: Task
metadata: {name: t}
spec: {role: Spout, image: busybox}
)",
            ns);
  // A status in the main resource is ignored...
  const auto main = C().Kubectl({"patch", "task", "t", "-n", ns, "--type=merge", "-p",
                                 R"({"status": {"phase": "Running"}})"});
  EXPECT_EQ(main.exit_code, 0) << main.err;
  EXPECT_FALSE(C().KubectlJson({"get", "task", "t", "-n", ns}).contains("status"));
  // ...and written through /status, where the schema still applies.
  const auto status =
      C().Kubectl({"patch", "task", "t", "-n", ns, "--subresource=status", "--type=merge", "-p",
                   R"({"status": {"phase": "Running", "attempts": 1}})"});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  const auto bad = C().Kubectl({"patch", "task", "t", "-n", ns, "--subresource=status",
                                "--type=merge", "-p", R"({"status": {"phase": "Sleeping"}})"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.err, HasSubstr("status.phase"));
  const auto task = api::Task::FromJson(C().KubectlJson({"get", "task", "t", "-n", ns}));
  ASSERT_TRUE(task);
  EXPECT_EQ(task->status->phase, api::TaskPhase::kRunning);
}

}  // namespace
}  // namespace millrace::testing
