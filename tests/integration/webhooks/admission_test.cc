// The admission webhooks end to end: the real API server calls the real millrace-controller's
// webhook server on 127.0.0.1 over TLS, configured by config/webhook/manifests.yaml (the service
// reference swapped for a URL). kubectl shows users the field and the reason.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crds/errors.h"
#include "tests/support/cluster.h"
#include "tests/support/operator_test.h"
#include "tests/support/process.h"
#include "tests/unit/crds/testdata.h"
#include "webhooks/certificates.h"

namespace millrace::testing {
namespace {

using nlohmann::json;
using std::chrono::seconds;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

Cluster& C() { return Cluster::Get(); }

std::string Base64(const std::string& in) {
  const auto r = RunProcess({"base64", "-w0"}, in);
  return r.out;
}

// Writes tls.crt and tls.key as a Secret volume update does: new files renamed over the old.
void WriteCertDir(const fs::path& dir, const webhooks::CertificatePem& pem) {
  fs::create_directories(dir);
  for (const auto& [name, text] :
       {std::pair{"tls.crt", pem.certificate}, std::pair{"tls.key", pem.key}}) {
    std::ofstream(dir / (std::string(name) + ".new")) << text;
    fs::rename(dir / (std::string(name) + ".new"), dir / name);
  }
}

// config/webhook/manifests.yaml pointed at https://127.0.0.1:port, trusting `ca_pem`, renamed to
// `name` and (when `namespace_label` is set) limited to namespaces carrying that label.
std::string WebhookConfigurations(uint16_t port, const std::string& ca_pem, const std::string& name,
                                  const std::string& namespace_label = "") {
  std::string out;
  for (json config : api::testing::YamlToJson(
           api::testing::ReadFile(SourceDir() + "/config/webhook/manifests.yaml"))) {
    config["metadata"]["name"] = name;
    config["metadata"].erase("annotations");
    for (auto& webhook : config["webhooks"]) {
      const std::string path = webhook["clientConfig"]["service"]["path"];
      webhook["clientConfig"] = {{"url", "https://127.0.0.1:" + std::to_string(port) + path}};
      if (!ca_pem.empty()) webhook["clientConfig"]["caBundle"] = Base64(ca_pem);
      if (!namespace_label.empty()) {
        webhook["namespaceSelector"] = {
            {"matchExpressions", {{{"key", namespace_label}, {"operator", "Exists"}}}}};
      }
    }
    out += config.dump() + "\n";
  }
  return out;
}

class WebhookTest : public OperatorTest {
 protected:
  static void SetUpTestSuite() {
    Cluster::Get().InstallCrds();
    cert_dir_ = C().state_dir() + "/webhook-certs";
    ca_ = webhooks::GenerateCa("webhook-test-ca").value();
    serving_ = webhooks::IssueServingCertificate(ca_, {"127.0.0.1"}).value();
    WriteCertDir(cert_dir_, serving_);
    op_ = StartOperator("webhook-operator.log",
                        {"--webhook-bind-address=127.0.0.1:0", "--webhook-cert-dir=" + cert_dir_});
    json serving;
    ASSERT_TRUE(WaitFor(
        [&] {
          serving = LogLine(*op_, "serving admission webhooks");
          return serving.is_object();
        },
        seconds(30)))
        << op_->Log();
    port_ = serving["port"].get<uint16_t>();
    C().Apply(WebhookConfigurations(port_, ca_.certificate, "millrace-webhook"));
    // Admission is live once an invalid object is refused by the webhook.
    ASSERT_TRUE(WaitFor([] { return DeniedByWebhook(kInvalidPipeline, "default"); }, seconds(30)))
        << ApplyDryRun(kInvalidPipeline, "default").err << "\noperator log:\n"
        << op_->Log();
  }

  // Only the webhook catches a dependency cycle (the schema cannot).
  static constexpr const char* kInvalidPipeline = R"(
apiVersion: millrace.io/v1alpha1
kind: Pipeline
metadata: {name: cyclic}
spec:
  steps:
  - {name: a, dependsOn: [b], task: {role: Spout, image: busybox}}
  - {name: b, dependsOn: [a], task: {role: Spout, image: busybox}}
)";
  static ProcessResult ApplyDryRun(const std::string& manifest, const std::string& ns) {
    return C().Kubectl({"apply", "--dry-run=server", "-n", ns, "-f", "-"}, manifest);
  }
  // The probe's cycle is refused (only a webhook can: the schema admits cycles).
  static bool DeniedByWebhook(const std::string& manifest, const std::string& ns) {
    const auto r = ApplyDryRun(manifest, ns);
    return r.exit_code != 0 &&
           r.err.find("spec.steps[0].dependsOn: Invalid value: dependency cycle") !=
               std::string::npos;
  }

  // The operator's controller_runtime_webhook_requests_total for one path and code.
  double WebhookRequests(const std::string& path, const std::string& code) const {
    const json serving = LogLine(*op_, "serving /healthz, /readyz and /metrics");
    const auto r =
        RunProcess({"curl", "-sf",
                    "http://127.0.0.1:" + std::to_string(serving["port"].get<int>()) + "/metrics"});
    const std::string series = "controller_runtime_webhook_requests_total{webhook=\"" + path +
                               "\",code=\"" + code + "\"} ";
    const auto at = r.out.find(series);
    return at == std::string::npos ? 0 : std::stod(r.out.substr(at + series.size()));
  }

  static inline std::string cert_dir_;
  static inline webhooks::CertificatePem ca_, serving_;
  static inline uint16_t port_ = 0;
};

TEST_F(WebhookTest, EveryInvalidExampleIsDeniedAtApplyNamingTheFieldAndReason) {
  int denied = 0;
  for (const auto& ex : api::testing::LoadInvalidExamples()) {
    if (ex.apiserver_rejects) continue;  // the schema refuses these before any webhook runs
    SCOPED_TRACE(ex.file);
    ProcessResult r;
    if (ex.update) {
      const auto first = C().Kubectl({"apply", "-n", ns_, "-f", "-"}, ex.yaml_docs.at(0));
      ASSERT_EQ(first.exit_code, 0) << "the original object must be admitted: " << first.err;
      r = C().Kubectl({"apply", "-n", ns_, "-f", "-"}, ex.yaml_docs.at(1));
    } else {
      r = C().Kubectl({"apply", "-n", ns_, "-f", "-"}, ex.yaml_docs.at(0));
    }
    // The schema admits these examples, so the refusal is the webhook's; kubectl words it like
    // the API server's own field errors.
    EXPECT_NE(r.exit_code, 0) << "admitted: " << r.out;
    EXPECT_THAT(r.err, HasSubstr("is invalid"));
    EXPECT_THAT(r.err,
                HasSubstr(ex.expect_path + ": " + std::string(api::ReasonText(ex.expect_reason))));
    ++denied;
  }
  EXPECT_GT(denied, 0);
}

TEST_F(WebhookTest, SamplesAreAdmittedWithDefaultsByBothWebhooks) {
  const double validated = WebhookRequests("/validate-millrace-io-v1alpha1-task", "200");
  const double mutated = WebhookRequests("/mutate-millrace-io-v1alpha1-task", "200");
  for (const auto& sample : api::testing::LoadSamples()) {
    if (sample.object["kind"] == "Zone") continue;  // cluster-scoped; the zone tests cover them
    SCOPED_TRACE(sample.file);
    json object = sample.object;
    object["metadata"].erase("namespace");  // into this test's namespace
    const auto r = C().Kubectl({"apply", "-n", ns_, "-f", "-"}, object.dump());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const json task = Get("task", "ingest-crm-2026-11-22");
  ASSERT_TRUE(task.is_object());
  EXPECT_EQ(task["spec"]["cancel"], false) << task.dump(2);
  EXPECT_GT(WebhookRequests("/validate-millrace-io-v1alpha1-task", "200"), validated);
  EXPECT_GT(WebhookRequests("/mutate-millrace-io-v1alpha1-task", "200"), mutated);
}

TEST_F(WebhookTest, ASecondProductionVersionOfAModelIsDenied) {
  auto version = [](const std::string& v) {
    return "apiVersion: millrace.io/v1alpha1\nkind: ModelVersion\nmetadata: {name: fraud-" + v +
           "}\nspec: {model: fraud, version: \"" + v +
           "\", stage: Production, artifact: {uri: \"s3://m/" + v + "\", format: onnx}}\n";
  };
  ASSERT_EQ(C().Kubectl({"apply", "-n", ns_, "-f", "-"}, version("1")).exit_code, 0);
  // The reconciler records the stage; the webhook checks the recorded Production versions.
  ASSERT_TRUE(
      WaitFor([&] { return StatusField(Get("modelversion", "fraud-1"), "stage") == "Production"; },
              seconds(60)));
  const auto second = C().Kubectl({"create", "-n", ns_, "-f", "-"}, version("2"));
  EXPECT_NE(second.exit_code, 0);
  EXPECT_THAT(second.err, HasSubstr("spec.stage"));
  EXPECT_THAT(second.err, HasSubstr("version 1 of model fraud is already in Production"));
}

TEST_F(WebhookTest, DeletingTheProductionVersionWarns) {
  const std::string mv =
      "apiVersion: millrace.io/v1alpha1\nkind: ModelVersion\nmetadata: {name: spam-1}\n"
      "spec: {model: spam, version: \"1\", stage: Production, "
      "artifact: {uri: \"s3://m/1\", format: onnx}}\n";
  ASSERT_EQ(C().Kubectl({"apply", "-n", ns_, "-f", "-"}, mv).exit_code, 0);
  ASSERT_TRUE(
      WaitFor([&] { return StatusField(Get("modelversion", "spam-1"), "stage") == "Production"; },
              seconds(60)));
  const auto r = C().Kubectl({"delete", "modelversion", "spam-1", "-n", ns_});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("stops serving model spam"));
}

TEST_F(WebhookTest, ARotatedCertificateKeepsAdmissionWorkingWithoutARestart) {
  const auto rotated = webhooks::IssueServingCertificate(ca_, {"127.0.0.1"}).value();
  const std::string serial = webhooks::SerialNumber(rotated.certificate);
  WriteCertDir(cert_dir_, rotated);
  ASSERT_TRUE(WaitFor(
      [&] {
        // New connections pick up the new pair; the API server opens them as it needs.
        (void)ApplyDryRun(kInvalidPipeline, ns_);
        const json loaded = LogLine(*op_, "serving certificate loaded");
        return loaded.is_object() && StringAt(loaded, "serial") == serial;
      },
      seconds(30)))
      << op_->Log();
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(DeniedByWebhook(kInvalidPipeline, ns_));
  EXPECT_TRUE(op_->Running()) << "the operator restarted";
}

TEST_F(WebhookTest, ASelfSignedOperatorInjectsItsCaIntoTheConfiguration) {
  // A second operator with a generated certificate, and a configuration without a caBundle that
  // only covers namespaces labelled for it: the operator fills the caBundle in, then admits.
  auto self_signed =
      StartOperator("webhook-self-signed.log",
                    {"--webhook-bind-address=127.0.0.1:0", "--webhook-hosts=127.0.0.1",
                     "--webhook-configuration=millrace-self-signed", "--bind-address=0"});
  json serving;
  ASSERT_TRUE(WaitFor(
      [&] {
        serving = LogLine(*self_signed, "serving admission webhooks");
        return serving.is_object();
      },
      seconds(30)))
      << self_signed->Log();
  const std::string label = "millrace-test/self-signed";
  ASSERT_EQ(C().Kubectl({"label", "namespace", ns_, label + "=yes"}).exit_code, 0);
  C().Apply(
      WebhookConfigurations(serving["port"].get<uint16_t>(), "", "millrace-self-signed", label));
  EXPECT_TRUE(WaitFor(
      [&] {
        const json config = C().KubectlJson(
            {"get", "validatingwebhookconfiguration", "millrace-self-signed", "-o", "json"});
        return !config["webhooks"][0]["clientConfig"].value("caBundle", "").empty();
      },
      seconds(30)));
  // Both webhooks now cover this namespace; the self-signed one must answer for a valid object to
  // be admitted at all (failurePolicy Fail).
  const std::string valid =
      "apiVersion: millrace.io/v1alpha1\nkind: Task\nmetadata: {name: ok}\n"
      "spec: {role: Spout, image: busybox}\n";
  EXPECT_TRUE(WaitFor([&] { return ApplyDryRun(valid, ns_).exit_code == 0; }, seconds(30)))
      << ApplyDryRun(valid, ns_).err;
  EXPECT_TRUE(DeniedByWebhook(kInvalidPipeline, ns_));
  C().Kubectl({"delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration",
               "millrace-self-signed"});
}

}  // namespace
}  // namespace millrace::testing
