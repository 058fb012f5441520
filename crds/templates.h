#pragma once

// Template references in Pipeline step specs, resolved when a step starts:
//   {{params.<name>}}                 a pipeline parameter
//   {{steps.<step>.results.<result>}} a declared result of an earlier step (a dependency)
//   {{steps.<step>.phase}}            a step's phase (finally steps only)
//   {{pipeline.name}} {{pipeline.namespace}} {{pipeline.uid}}, and {{pipeline.phase}} (finally
//   only)
//   {{item}} {{item.<key>}}           a fan-out step's item (withItems, withParam, matrix)
// Spaces inside the braces are allowed ({{ params.x }}). Text outside braces is kept as is.

#include <cstddef>
#include <expected>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace millrace::api::templates {

enum class RefKind {
  kParam,       // params.<name>: name
  kStepResult,  // steps.<step>.results.<result>: name = step, field = result
  kStepPhase,   // steps.<step>.phase: name = step
  kPipeline,    // pipeline.<field>: field is name, namespace, uid or phase
  kItem,        // item (field empty) or item.<key> (field = key)
  kUnknown,     // anything else between braces
};

struct Reference {
  RefKind kind = RefKind::kUnknown;
  std::string expression;  // the text between the braces, trimmed: "steps.train.results.uri"
  std::string name;
  std::string field;
  size_t offset = 0;  // of "{{" in the text
  size_t length = 0;  // up to and including "}}"

  // The canonical variable key used by Substitute(): the trimmed expression.
  const std::string& key() const { return expression; }
};

// All references in `text`, in order; an error for an unterminated "{{".
std::expected<std::vector<Reference>, std::string> FindReferences(std::string_view text);

// Variable values by key ("params.date", "steps.train.results.uri", "pipeline.name").
using Values = std::map<std::string, std::string, std::less<>>;

// Replaces every reference with its value; an error names the first reference with no value.
std::expected<std::string, std::string> Substitute(std::string_view text, const Values& values);

// Substitute() on every string in a JSON document (object keys are left alone).
std::expected<nlohmann::json, std::string> SubstituteJson(const nlohmann::json& doc,
                                                          const Values& values);

// The key of a reference, for building Values: ParamKey("date") == "params.date".
std::string ParamKey(std::string_view param);
std::string ResultKey(std::string_view step, std::string_view result);
std::string PhaseKey(std::string_view step);
std::string PipelineKey(std::string_view field);
// "item" for an empty key, else "item.<key>".
std::string ItemKey(std::string_view key);

// Calls visit(path, string) for every string in `doc`; paths extend `path` like
// spec.steps[0].task.args[1] and spec.steps[0].task.nodeSelector[zone].
void ForEachString(const nlohmann::json& doc, const std::string& path,
                   const std::function<void(const std::string&, const std::string&)>& visit);

}  // namespace millrace::api::templates
