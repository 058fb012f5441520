#include "crds/templates.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace millrace::api::templates {
namespace {

TEST(Templates, FindsAndClassifiesReferences) {
  const auto refs = FindReferences(
      "{{params.date}}/{{ steps.train.results.model_uri }}-{{steps.eval.phase}}"
      "{{pipeline.uid}}{{foo.bar}}{{steps.x.results}}");
  ASSERT_TRUE(refs);
  ASSERT_EQ(refs->size(), 6U);
  EXPECT_EQ((*refs)[0].kind, RefKind::kParam);
  EXPECT_EQ((*refs)[0].name, "date");
  EXPECT_EQ((*refs)[1].kind, RefKind::kStepResult);
  EXPECT_EQ((*refs)[1].name, "train");
  EXPECT_EQ((*refs)[1].field, "model_uri");
  EXPECT_EQ((*refs)[1].expression, "steps.train.results.model_uri");
  EXPECT_EQ((*refs)[2].kind, RefKind::kStepPhase);
  EXPECT_EQ((*refs)[3].kind, RefKind::kPipeline);
  EXPECT_EQ((*refs)[3].field, "uid");
  EXPECT_EQ((*refs)[4].kind, RefKind::kUnknown);
  EXPECT_EQ((*refs)[5].kind, RefKind::kUnknown);
}

TEST(Templates, PlainTextHasNoReferences) {
  EXPECT_TRUE(FindReferences("s3://bucket/{single}/x")->empty());
  EXPECT_FALSE(FindReferences("oops {{params.x").has_value());
}

TEST(Templates, SubstitutesValues) {
  const Values values{{ParamKey("date"), "2026-11-22"},
                      {ResultKey("train", "uri"), "s3://m/7"},
                      {PipelineKey("name"), "run-1"}};
  EXPECT_EQ(Substitute("date={{params.date}}", values), "date=2026-11-22");
  EXPECT_EQ(Substitute("{{ steps.train.results.uri }}/model.onnx ({{pipeline.name}})", values),
            "s3://m/7/model.onnx (run-1)");
  EXPECT_EQ(Substitute("no refs", values), "no refs");
  const auto missing = Substitute("{{params.nope}}", values);
  ASSERT_FALSE(missing);
  EXPECT_THAT(missing.error(), ::testing::HasSubstr("params.nope"));
}

TEST(Templates, SubstitutesEveryStringInJson) {
  const Values values{{"params.x", "42"}};
  const auto doc = nlohmann::json::parse(
      R"({"args": ["--x={{params.x}}", "y"], "env": [{"name": "X", "value": "{{params.x}}"}],
          "n": 3})");
  const auto out = SubstituteJson(doc, values);
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)["args"][0], "--x=42");
  EXPECT_EQ((*out)["env"][0]["value"], "42");
  EXPECT_EQ((*out)["n"], 3);
}

TEST(Templates, ForEachStringReportsPaths) {
  const auto doc = nlohmann::json::parse(
      R"({"args": ["a"], "resources": {"requests": {"nvidia.com/gpu": "1"}}})");
  std::vector<std::string> paths;
  ForEachString(doc, "spec.task",
                [&](const std::string& p, const std::string&) { paths.push_back(p); });
  EXPECT_THAT(paths, ::testing::UnorderedElementsAre(
                         "spec.task.args[0]", "spec.task.resources.requests[nvidia.com/gpu]"));
}

}  // namespace
}  // namespace millrace::api::templates
