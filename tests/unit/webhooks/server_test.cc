// The webhook server over real TLS on loopback (no API server): it answers reviews, refuses TLS
// below 1.2, survives oversized and malformed requests, and picks up a rotated certificate from its
// directory without a restart.
#include "webhooks/server.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/cluster.h"

namespace millrace::webhooks {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

struct Reply {
  long status = 0;  // 0: no HTTP answer (see error)
  std::string body;
  std::string error;
  std::string serial;  // the server certificate's serial number, hex, as curl reports it
};

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// POSTs `body` to https://127.0.0.1:port/path trusting only `ca_pem`.
Reply Post(uint16_t port, const std::string& path, const std::string& body,
           const std::string& ca_pem, long max_tls = CURL_SSLVERSION_MAX_DEFAULT) {
  Reply reply;
  CURL* curl = curl_easy_init();
  const std::string url = "https://127.0.0.1:" + std::to_string(port) + path;
  curl_blob ca{const_cast<char*>(ca_pem.data()), ca_pem.size(), CURL_BLOB_COPY};
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &ca);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(curl, CURLOPT_CERTINFO, 1L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1 | max_tls);
  if (const CURLcode rc = curl_easy_perform(curl); rc != CURLE_OK) {
    reply.error = curl_easy_strerror(rc);
  } else {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply.status);
    curl_certinfo* info = nullptr;
    curl_easy_getinfo(curl, CURLINFO_CERTINFO, &info);
    for (curl_slist* field = info != nullptr && info->num_of_certs > 0 ? info->certinfo[0]
                                                                       : nullptr;
         field != nullptr; field = field->next) {
      const std::string line = field->data;
      if (line.starts_with("Serial Number:")) reply.serial = line.substr(14);
    }
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return reply;
}

// "0a:7c:..." or "0A7C..." -> "A7C..." (curl's format depends on its TLS backend version, and
// OpenSSL pads to whole bytes): both sides of a comparison go through this.
std::string Hex(std::string serial) {
  std::string out;
  for (char c : serial) {
    if (std::isxdigit(static_cast<unsigned char>(c)))
      out.push_back(static_cast<char>(std::toupper(c)));
  }
  while (out.size() > 1 && out.front() == '0') out.erase(out.begin());
  return out;
}

const std::string kReview = R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
  "request":{"uid":"u-1","kind":{"group":"millrace.io","version":"v1alpha1","kind":"Task"},
  "operation":"CREATE","name":"t","namespace":"a","object":{"apiVersion":"millrace.io/v1alpha1",
  "kind":"Task","metadata":{"name":"t","namespace":"a"},
  "spec":{"role":"Spout","image":"busybox","input":{"batch":{"uri":"s3://x"}}}}}})";

// Any free loopback port, with `certificate` or the files of `cert_dir`.
WebhookServerOptions Loopback(std::optional<CertificatePem> certificate,
                              std::string cert_dir = "") {
  WebhookServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  options.certificate = std::move(certificate);
  options.cert_dir = std::move(cert_dir);
  return options;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = GenerateCa("test-ca");
    ASSERT_TRUE(ca.has_value()) << ca.error();
    ca_ = *ca;
  }
  CertificatePem Issue() {
    auto cert = IssueServingCertificate(ca_, {"localhost", "127.0.0.1"});
    EXPECT_TRUE(cert.has_value());
    return cert.value_or(CertificatePem{});
  }
  CertificatePem ca_;
};

TEST_F(ServerTest, AnswersReviewsOverTls12OrNewerOnly) {
  WebhookServer server(Loopback(Issue()));
  ASSERT_TRUE(server.Start().has_value());
  const Reply denied =
      Post(server.port(), "/validate-millrace-io-v1alpha1-task", kReview, ca_.certificate);
  ASSERT_EQ(denied.status, 200) << denied.error;
  const auto review = nlohmann::json::parse(denied.body);
  EXPECT_EQ(review["response"]["uid"], "u-1");
  EXPECT_EQ(review["response"]["allowed"], false);
  EXPECT_THAT(review["response"]["status"]["message"].get<std::string>(),
              HasSubstr("spec.input: Forbidden: a Spout"));

  const Reply old_tls = Post(server.port(), "/validate-millrace-io-v1alpha1-task", kReview,
                             ca_.certificate, CURL_SSLVERSION_MAX_TLSv1_1);
  EXPECT_EQ(old_tls.status, 0) << "TLS 1.1 was accepted";

  const Reply untrusted = Post(server.port(), "/validate-millrace-io-v1alpha1-task", kReview,
                               GenerateCa("other-ca")->certificate);
  EXPECT_EQ(untrusted.status, 0) << "a certificate from another CA verified";
}

TEST_F(ServerTest, OversizedAndMalformedRequestsGetFourHundredsAndTheServerStaysUp) {
  WebhookServerOptions options = Loopback(Issue());
  options.max_request_bytes = 64 * 1024;
  WebhookServer server(std::move(options));
  ASSERT_TRUE(server.Start().has_value());
  const std::string path = "/validate-millrace-io-v1alpha1-task";
  const Reply big = Post(server.port(), path, std::string(200 * 1024, 'x'), ca_.certificate);
  EXPECT_EQ(big.status, 413) << big.error;
  EXPECT_EQ(Post(server.port(), path, "{\"apiVersion\":", ca_.certificate).status, 400);
  EXPECT_EQ(Post(server.port(), "/validate-v1-pod", kReview, ca_.certificate).status, 404);
  EXPECT_EQ(Post(server.port(), path, kReview, ca_.certificate).status, 200);
}

TEST_F(ServerTest, ARotatedCertificateInTheDirectoryServesWithoutARestart) {
  const fs::path dir =
      fs::temp_directory_path() / ("millrace-webhook-certs-" + std::to_string(getpid()));
  fs::create_directories(dir);
  // Written as a Secret volume updates: new files, then an atomic rename over the old ones.
  auto write = [&](const CertificatePem& pem) {
    for (const auto& [name, text] :
         {std::pair{"tls.crt", pem.certificate}, std::pair{"tls.key", pem.key}}) {
      std::ofstream(dir / (std::string(name) + ".new")) << text;
      fs::rename(dir / (std::string(name) + ".new"), dir / name);
    }
  };
  const CertificatePem first = Issue(), second = Issue();
  write(first);
  WebhookServerOptions options = Loopback(std::nullopt, dir.string());
  options.reload_interval = std::chrono::milliseconds(20);
  WebhookServer server(std::move(options));
  ASSERT_TRUE(server.Start().has_value());
  const std::string path = "/validate-millrace-io-v1alpha1-task";
  const Reply before = Post(server.port(), path, kReview, ca_.certificate);
  ASSERT_EQ(before.status, 200) << before.error;
  EXPECT_EQ(Hex(before.serial), Hex(SerialNumber(first.certificate)));

  write(second);
  Reply after;
  EXPECT_TRUE(millrace::testing::WaitFor(
      [&] {
        after = Post(server.port(), path, kReview, ca_.certificate);
        return after.status == 200 && Hex(after.serial) == Hex(SerialNumber(second.certificate));
      },
      std::chrono::seconds(10)))
      << "still serving " << after.serial << " " << after.error;
  EXPECT_EQ(server.serving_serial(), SerialNumber(second.certificate));

  // A broken pair leaves the last good one serving.
  const CertificatePem third = Issue();
  write({third.certificate, "not a key"});
  const Reply broken = Post(server.port(), path, kReview, ca_.certificate);
  EXPECT_EQ(broken.status, 200) << broken.error;
  EXPECT_EQ(Hex(broken.serial), Hex(SerialNumber(second.certificate)));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace millrace::webhooks
