// libFuzzer target: arbitrary bytes as the body of a request to every admission endpoint, which
// exercises the AdmissionReview parsing, every kind's spec decoding, defaulting, validation and the
// JSON patch. Anything but a clean answer (a crash, a sanitizer report, an uncaught exception, a
// status the server does not send) is a finding. Built by scripts/fuzz with clang.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "webhooks/admission.h"

namespace {

const millrace::webhooks::ModelVersionLister kOneProductionVersion =
    [](const std::string&) -> std::expected<std::vector<millrace::webhooks::Json>, std::string> {
  return std::vector<millrace::webhooks::Json>{millrace::webhooks::Json::parse(R"({
    "apiVersion":"millrace.io/v1alpha1","kind":"ModelVersion",
    "metadata":{"name":"m-1","namespace":"ns"},
    "spec":{"model":"m","version":"1","stage":"Production",
            "artifact":{"uri":"s3://m/1","format":"onnx"}}})")};
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  for (const std::string& path : millrace::webhooks::EndpointPaths()) {
    const auto answer =
        millrace::webhooks::Answer("POST", path, "application/json", body, kOneProductionVersion);
    if (answer.status != 200 && answer.status != 400 && answer.status != 500) std::abort();
    if (answer.status == 500) std::abort();  // only a failing lister may produce 500
  }
  return 0;
}
