// The C++ types and the CRD schemas agree field for field: an object with *every* property of a
// schema set (spec and status, synthesized from the manifest) survives FromJson -> ToJson
// unchanged, so a field added to a schema but forgotten in the C++ types (or misspelled) fails
// here.
#include <gtest/gtest.h>

#include "crds/model_version.h"
#include "crds/pipeline.h"
#include "crds/task.h"
#include "crds/zone.h"
#include "tests/unit/crds/testdata.h"

namespace millrace::api {
namespace {

// A value valid for the C++ parsers for every property of `schema`.
Json Synthesize(const Json& schema) {
  if (schema.contains("enum")) return schema["enum"][0];
  if (schema.value("x-kubernetes-int-or-string", false)) return "250m";
  if (schema.value("x-kubernetes-preserve-unknown-fields", false)) return {{"free", {"form", 1}}};
  const std::string type = schema.value("type", "");
  if (type == "string") {
    if (schema.value("format", "") == "date-time") return "2026-11-22T09:00:00Z";
    if (schema.value("pattern", "").starts_with("^([0-9]+(\\.[0-9]+)?(ns")) return "90s";
    return "x";
  }
  if (type == "integer") return schema.value("minimum", 0) + 1;
  if (type == "number") return 1.5;
  if (type == "boolean") return true;
  if (type == "array") return Json::array({Synthesize(schema["items"])});
  if (type == "object") {
    Json out = Json::object();
    if (schema.contains("additionalProperties")) {
      out["key"] = Synthesize(schema["additionalProperties"]);
    }
    if (schema.contains("properties")) {
      for (const auto& [name, prop] : schema["properties"].items()) out[name] = Synthesize(prop);
    }
    return out;
  }
  ADD_FAILURE() << "no synthesis for " << schema.dump();
  return nullptr;
}

template <class T>
void CheckKind(const std::string& manifest) {
  SCOPED_TRACE(manifest);
  const auto crd = testing::YamlToJson(testing::ReadFile(testing::SourceDir() + manifest)).at(0);
  const Json& root = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
  Json obj = {{"apiVersion", "millrace.io/v1alpha1"},
              {"kind", crd["spec"]["names"]["kind"]},
              {"metadata", {{"name", "x"}}},
              {"spec", Synthesize(root["properties"]["spec"])},
              {"status", Synthesize(root["properties"]["status"])}};
  auto parsed = T::FromJson(obj);
  ASSERT_TRUE(parsed) << ToString(parsed.error());
  const Json back = parsed->ToJson();
  EXPECT_EQ(back["spec"], obj["spec"]) << "diff: " << Json::diff(obj["spec"], back["spec"]).dump(2);
  EXPECT_EQ(back["status"], obj["status"])
      << "diff: " << Json::diff(obj["status"], back["status"]).dump(2);
}

TEST(SchemaAgreement, ZoneTypesCoverEveryField) { CheckKind<Zone>("/crds/manifests/zones.yaml"); }
TEST(SchemaAgreement, TaskTypesCoverEveryField) { CheckKind<Task>("/crds/manifests/tasks.yaml"); }
TEST(SchemaAgreement, PipelineTypesCoverEveryField) {
  CheckKind<Pipeline>("/crds/manifests/pipelines.yaml");
}
TEST(SchemaAgreement, ModelVersionTypesCoverEveryField) {
  CheckKind<ModelVersion>("/crds/manifests/modelversions.yaml");
}

}  // namespace
}  // namespace millrace::api
