// AdmissionReview handling without a server: every sample is admitted and gets only additive
// defaults, every invalid example is denied naming its field and reason, and malformed reviews and
// requests get the HTTP answer the API server can act on.
#include "webhooks/admission.h"

#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crds/errors.h"
#include "tests/unit/crds/testdata.h"
#include "webhooks/server.h"

namespace millrace::webhooks {
namespace {

using ::testing::HasSubstr;

Json Request(const std::string& operation, const Json& object, const Json& old_object = nullptr) {
  const Json& meta = object.is_object() ? object["metadata"] : old_object["metadata"];
  const std::string kind = object.is_object() ? object["kind"] : old_object["kind"];
  Json request = {{"uid", "d2b1c3e4-0000-4000-8000-000000000001"},
                  {"kind", {{"group", "millrace.io"}, {"version", "v1alpha1"}, {"kind", kind}}},
                  {"operation", operation},
                  {"name", meta.value("name", "")},
                  {"namespace", kind == "Zone" ? "" : "team-a"},
                  {"object", object},
                  {"oldObject", old_object}};
  return {{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"request", request}};
}

Endpoint Validating(const std::string& kind) { return {Operation::kValidate, kind}; }
Endpoint Mutating(const std::string& kind) { return {Operation::kMutate, kind}; }

Json Respond(const Endpoint& endpoint, const Json& review, const ModelVersionLister& list = {}) {
  auto answered = Review(endpoint, review, list);
  EXPECT_TRUE(answered.has_value()) << (answered ? "" : answered.error().message);
  if (!answered) return nullptr;
  EXPECT_EQ((*answered)["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ((*answered)["kind"], "AdmissionReview");
  EXPECT_EQ((*answered)["response"]["uid"], review["request"]["uid"]);
  return (*answered)["response"];
}

Json DecodedPatch(const Json& response) {
  const std::string encoded = response.value("patch", "");
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : encoded) {
    if (c == '=') break;
    buffer = (buffer << 6) | static_cast<uint32_t>(kAlphabet.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return Json::parse(out);
}

TEST(Endpoints, KubebuilderStylePathsMapToKinds) {
  const auto task = EndpointFor("/validate-millrace-io-v1alpha1-task?timeout=5s");
  ASSERT_TRUE(task.has_value());
  EXPECT_EQ(task->kind, "Task");
  EXPECT_EQ(task->operation, Operation::kValidate);
  const auto mv = EndpointFor("/mutate-millrace-io-v1alpha1-modelversion");
  ASSERT_TRUE(mv.has_value());
  EXPECT_EQ(mv->kind, "ModelVersion");
  EXPECT_EQ(mv->operation, Operation::kMutate);
  EXPECT_FALSE(EndpointFor("/validate-millrace-io-v1alpha1-pod").has_value());
  EXPECT_FALSE(EndpointFor("/validate-apps-v1-deployment").has_value());
  EXPECT_EQ(EndpointPaths().size(), 10u);  // validate and mutate for each of the 5 kinds
  for (const auto& path : EndpointPaths()) EXPECT_TRUE(EndpointFor(path).has_value()) << path;
}

TEST(Admission, EverySampleAndExampleIsAdmittedAndDefaultsOnlyAdd) {
  auto samples = api::testing::LoadSamples();
  for (auto& example : api::testing::LoadSamples("examples")) samples.push_back(std::move(example));
  for (const auto& sample : samples) {
    SCOPED_TRACE(sample.file);
    const std::string kind = sample.object["kind"];
    const Json allowed = Respond(Validating(kind), Request("CREATE", sample.object));
    EXPECT_EQ(allowed["allowed"], true) << allowed.dump(2);
    const Json mutated = Respond(Mutating(kind), Request("CREATE", sample.object));
    EXPECT_EQ(mutated["allowed"], true);
    if (!mutated.contains("patch")) continue;
    EXPECT_EQ(mutated["patchType"], "JSONPatch");
    const Json patch = DecodedPatch(mutated);
    for (const auto& op : patch) {
      EXPECT_EQ(op["op"], "add") << op.dump();
      EXPECT_TRUE(op["path"].get<std::string>().starts_with("/spec/")) << op.dump();
    }
    // Applying the patch gives an object that needs no more defaults.
    const Json defaulted = sample.object.patch(patch);
    EXPECT_FALSE(Respond(Mutating(kind), Request("CREATE", defaulted)).contains("patch"));
  }
}

TEST(Admission, DefaultsFillWhatIsMissing) {
  const Json task = Json::parse(R"({"apiVersion":"millrace.io/v1alpha1","kind":"Task",
    "metadata":{"name":"t","namespace":"team-a"},
    "spec":{"role":"Spout","image":"busybox"}})");
  const Json response = Respond(Mutating("Task"), Request("CREATE", task));
  ASSERT_TRUE(response.contains("patch")) << response.dump(2);
  const Json defaulted = task.patch(DecodedPatch(response));
  EXPECT_EQ(defaulted["spec"]["cancel"], false) << defaulted.dump(2);
  EXPECT_EQ(defaulted["spec"]["image"], "busybox");
}

TEST(Admission, EveryInvalidExampleIsDeniedNamingTheFieldAndReason) {
  const auto examples = api::testing::LoadInvalidExamples();
  ASSERT_GE(examples.size(), 25u);
  for (const auto& ex : examples) {
    SCOPED_TRACE(ex.file);
    const std::string kind = ex.docs.back()["kind"];
    const Json review = ex.update ? Request("UPDATE", ex.docs.at(1), ex.docs.at(0))
                                  : Request("CREATE", ex.docs.at(0));
    const Json response = Respond(Validating(kind), review);
    ASSERT_EQ(response["allowed"], false) << response.dump(2);
    const Json& status = response["status"];
    EXPECT_EQ(status["code"], 422);
    EXPECT_EQ(status["reason"], "Invalid");
    EXPECT_THAT(status["message"].get<std::string>(),
                HasSubstr(ex.expect_path + ": " + std::string(api::ReasonText(ex.expect_reason))));
    bool cause = false;
    for (const auto& c : status["details"]["causes"]) {
      cause = cause || (c["field"] == ex.expect_path && c["reason"] == ex.expect_reason);
    }
    EXPECT_TRUE(cause) << status.dump(2);
  }
}

TEST(Admission, UpdatesThatLeaveTheSpecAloneAreAdmittedEvenIfItNoLongerValidates) {
  // An object admitted under older rules must still take label edits and finalizer removal.
  const auto examples = api::testing::LoadInvalidExamples();
  const auto cycle = std::find_if(examples.begin(), examples.end(), [](const auto& ex) {
    return ex.file.ends_with("pipeline-cycle.yaml");
  });
  ASSERT_NE(cycle, examples.end());
  Json old_object = cycle->docs.at(0);
  Json labelled = old_object;
  labelled["metadata"]["labels"] = {{"team", "a"}};
  EXPECT_EQ(Respond(Validating("Pipeline"), Request("UPDATE", labelled, old_object))["allowed"],
            true);
}

TEST(Admission, ASecondProductionVersionOfAModelIsDenied) {
  auto version = [](const std::string& name, const std::string& v, const std::string& stage) {
    return Json{{"apiVersion", "millrace.io/v1alpha1"},
                {"kind", "ModelVersion"},
                {"metadata", {{"name", name}, {"namespace", "team-a"}}},
                {"spec",
                 {{"model", "churn"},
                  {"version", v},
                  {"artifact", {{"uri", "s3://m/" + v}, {"format", "onnx"}}},
                  {"stage", stage}}},
                {"status", {{"stage", stage}}}};
  };
  const Json production = version("churn-1", "1", "Production");
  const ModelVersionLister one_in_production = [&](const std::string& ns) {
    EXPECT_EQ(ns, "team-a");
    return std::vector<Json>{production};
  };
  const Json second =
      Respond(Validating("ModelVersion"), Request("CREATE", version("churn-2", "2", "Production")),
              one_in_production);
  EXPECT_EQ(second["allowed"], false);
  EXPECT_THAT(second["status"]["message"].get<std::string>(), HasSubstr("spec.stage"));
  // Staging is fine, and so is the first Production version.
  EXPECT_EQ(
      Respond(Validating("ModelVersion"), Request("CREATE", version("churn-2", "2", "Staging")),
              one_in_production)["allowed"],
      true);
  const ModelVersionLister none = [](const std::string&) { return std::vector<Json>{}; };
  EXPECT_EQ(Respond(Validating("ModelVersion"), Request("CREATE", production), none)["allowed"],
            true);
  // Deleting the Production version is allowed, with a warning.
  const Json deleted =
      Respond(Validating("ModelVersion"), Request("DELETE", nullptr, production), none);
  EXPECT_EQ(deleted["allowed"], true);
  ASSERT_TRUE(deleted.contains("warnings"));
  EXPECT_THAT(deleted["warnings"][0].get<std::string>(), HasSubstr("stops serving model churn"));
  // When the versions cannot be listed, the request fails closed with a 500.
  const ModelVersionLister broken =
      [](const std::string&) -> std::expected<std::vector<Json>, std::string> {
    return std::unexpected("timeout");
  };
  const HttpAnswer failed =
      Answer("POST", "/validate-millrace-io-v1alpha1-modelversion", "application/json",
             Request("CREATE", version("churn-3", "3", "Production")).dump(), broken);
  EXPECT_EQ(failed.status, 500u);
  EXPECT_THAT(failed.body, HasSubstr("timeout"));
}

TEST(Admission, UpdatesAreNotDefaulted) {
  // A stored Pipeline whose steps lack defaults must stay editable: its steps are immutable.
  const Json task = Json::parse(R"({"apiVersion":"millrace.io/v1alpha1","kind":"Task",
    "metadata":{"name":"t","namespace":"team-a"},"spec":{"role":"Spout","image":"busybox"}})");
  EXPECT_FALSE(Respond(Mutating("Task"), Request("UPDATE", task, task)).contains("patch"));
}

TEST(Admission, AKindTheEndpointDoesNotServeIsRefused) {
  const Json task = Json::parse(R"({"apiVersion":"millrace.io/v1alpha1","kind":"Task",
    "metadata":{"name":"t"},"spec":{"role":"Spout","image":"busybox"}})");
  const Json response = Respond(Validating("Pipeline"), Request("CREATE", task));
  EXPECT_EQ(response["allowed"], false);
  EXPECT_EQ(response["status"]["code"], 400);
}

TEST(Answer, MalformedRequestsGetFourHundreds) {
  const std::string path = "/validate-millrace-io-v1alpha1-task";
  EXPECT_EQ(Answer("POST", "/validate-v1-pod", "application/json", "{}", {}).status, 404u);
  EXPECT_EQ(Answer("GET", path, "", "", {}).status, 405u);
  EXPECT_EQ(Answer("POST", path, "text/yaml", "a: b", {}).status, 415u);
  EXPECT_EQ(Answer("POST", path, "application/json", "{not json", {}).status, 400u);
  EXPECT_EQ(Answer("POST", path, "application/json", "[1,2]", {}).status, 400u);
  // Nesting that would exhaust the stack when copied is refused while parsing.
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const HttpAnswer too_deep = Answer("POST", path, "application/json", deep, {});
  EXPECT_EQ(too_deep.status, 400u);
  EXPECT_THAT(too_deep.body, HasSubstr("nests deeper"));
  const HttpAnswer no_uid =
      Answer("POST", path, "application/json",
             R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}})", {});
  EXPECT_EQ(no_uid.status, 400u);
  EXPECT_THAT(no_uid.body, HasSubstr("uid"));
  // A request whose object is not even an object is answered (denied), not dropped.
  Json review = Request("CREATE", Json::object({{"kind", "Task"}, {"metadata", Json::object()}}));
  review["request"]["object"] = 42;
  const HttpAnswer odd = Answer("POST", path, "application/json", review.dump(), {});
  EXPECT_EQ(odd.status, 200u);
  EXPECT_EQ(Json::parse(odd.body)["response"]["allowed"], false);
}

}  // namespace
}  // namespace millrace::webhooks
