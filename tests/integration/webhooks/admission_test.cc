// The admission webhooks end to end: the real API server calls the real millrace-controller's
// webhook server on 127.0.0.1 over TLS, configured by config/webhook/manifests.yaml (the service
// reference swapped for a URL). kubectl shows users the field and the reason.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
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

namespace fs = std::filesystem;

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
    op_ = StartWebhookOperator("webhook-operator.log", "127.0.0.1:0");
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

  // The operator serving the webhooks on `address` from cert_dir_. A small AddressSanitizer
  // quarantine (scripts/test's build) keeps its resident memory close to what it really holds.
  static std::unique_ptr<Subprocess> StartWebhookOperator(const std::string& log,
                                                          const std::string& address) {
    return StartOperator(log,
                         {"--webhook-bind-address=" + address, "--webhook-cert-dir=" + cert_dir_},
                         {"ASAN_OPTIONS=quarantine_size_mb=16"});
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

// The deletion check of a ModelVersion only warns, so it fails open: with the operator down, a
// namespace holding ModelVersions is deleted all the same.
TEST_F(WebhookTest, ANamespaceWithModelVersionsIsDeletedWhileTheOperatorIsDown) {
  const std::string doomed = C().CreateNamespace("doomed");
  for (const char* v : {"1", "2"}) {
    const std::string mv = std::string("apiVersion: millrace.io/v1alpha1\nkind: ModelVersion\n") +
                           "metadata: {name: ads-" + v + "}\nspec: {model: ads, version: \"" + v +
                           "\", artifact: {uri: \"s3://m/" + v + "\", format: onnx}}\n";
    ASSERT_EQ(C().Kubectl({"apply", "-n", doomed, "-f", "-"}, mv).exit_code, 0);
  }
  ExpectCleanStop(*op_);
  ASSERT_EQ(C().Kubectl({"delete", "namespace", doomed, "--wait=false"}).exit_code, 0);
  EXPECT_TRUE(WaitFor(
      [&] {
        return C().Kubectl({"get", "namespace", doomed}).exit_code != 0;
      },
      seconds(90)))
      << C().Kubectl({"get", "namespace", doomed, "-o", "yaml"}).out;
  op_ = StartWebhookOperator("webhook-operator-2.log", "127.0.0.1:" + std::to_string(port_));
  EXPECT_TRUE(WaitFor([&] { return DeniedByWebhook(kInvalidPipeline, ns_); }, seconds(30)))
      << op_->Log();
}

// Resident memory of `pid` in KiB (VmRSS), 0 when unknown.
long RssKib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmRSS:")) return std::stol(line.substr(6));
  }
  return 0;
}

// Two dozen clients send 8 MiB bodies, half of them at 100 KiB/s, for a while. Reviews from the
// API server keep being answered within its timeout, bodies beyond the in-flight budget are
// refused at once (503), and the operator's memory stays far below what the bodies add up to.
TEST_F(WebhookTest, SlowAndHugeBodiesDoNotStopValidReviewsNorExhaustMemory) {
  const std::string body = C().state_dir() + "/huge-body.json";
  std::ofstream(body) << std::string((8u << 20) - 4096, 'x');
  const std::string url =
      "https://127.0.0.1:" + std::to_string(port_) + "/validate-millrace-io-v1alpha1-task";
  const long rss_before = RssKib(op_->pid());
  std::vector<std::unique_ptr<Subprocess>> flood;
  for (int i = 0; i < 24; ++i) {
    const std::string rate = i % 2 == 0 ? "" : "--limit-rate 100k ";
    flood.push_back(std::make_unique<Subprocess>(
        std::vector<std::string>{
            "bash", "-c",
            "for n in 1 2 3 4 5 6 7 8; do curl -sk -m 15 -o /dev/null -w '%{http_code}\\n' " +
                rate + "-H 'Content-Type: application/json' --data-binary @" + body + " " + url +
                "; done"},
        C().state_dir() + "/flood-" + std::to_string(i) + ".log"));
  }
  long rss_peak = rss_before;
  int reviews = 0, answered = 0;
  auto slowest = std::chrono::milliseconds::zero();
  const auto until = std::chrono::steady_clock::now() + seconds(15);
  while (std::chrono::steady_clock::now() < until) {
    const auto start = std::chrono::steady_clock::now();
    ++reviews;
    if (DeniedByWebhook(kInvalidPipeline, ns_)) ++answered;
    slowest = std::max(slowest, std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - start));
    rss_peak = std::max(rss_peak, RssKib(op_->pid()));
  }
  for (auto& f : flood) f->Signal(SIGTERM);
  std::cout << "[ metric ] under the flood: " << answered << "/" << reviews
            << " reviews answered by the webhook, slowest " << slowest.count() << " ms; RSS "
            << rss_before / 1024 << " -> " << rss_peak / 1024 << " MiB\n";
  EXPECT_EQ(answered, reviews) << "a review was not answered within the API server's timeout";
  EXPECT_GT(reviews, 5);
  EXPECT_LT(slowest, seconds(5));
  EXPECT_GT(WebhookRequests("/validate-millrace-io-v1alpha1-task", "503"), 0)
      << "the in-flight budget never refused a body";
  // 24 bodies of 8 MiB are 192 MiB; the budget holds 32 MiB of them at once.
  EXPECT_LT(rss_peak - rss_before, 128 * 1024)
      << "RSS grew by " << (rss_peak - rss_before) / 1024 << " MiB";
  EXPECT_TRUE(op_->Running());
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
