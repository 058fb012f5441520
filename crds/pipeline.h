#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "crds/api_types.gen.h"

// The Pipeline's types (PipelineSpec, Step, PipelineStatus, Pipeline, ...) are generated from
// crds/schemas/ by scripts/gen-api; this header adds what the schema cannot say.
namespace millrace::api {

// A parameter's value in effect: value, else default.
inline std::optional<std::string> Effective(const Param& p) {
  return p.value ? p.value : p.default_;
}

// The most children one fan-out step may have (withItems and each matrix list by the schema, the
// matrix's product by validation, withParam's list when the step starts).
inline constexpr size_t kMaxFanOut = 256;

// The most bytes of results a Pipeline's status holds, all steps together (keys and values).
inline constexpr size_t kMaxStoredResults = 262144;

enum class FanOut { kNone, kItems, kParam, kMatrix };

// How a step fans out; the first of withItems, withParam, matrix that is set (validation refuses
// more than one).
inline FanOut FanOutOf(const Step& step) {
  if (!step.with_items.empty()) return FanOut::kItems;
  if (step.with_param) return FanOut::kParam;
  if (!step.matrix.empty()) return FanOut::kMatrix;
  return FanOut::kNone;
}

}  // namespace millrace::api
