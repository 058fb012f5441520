#pragma once

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

}  // namespace millrace::api
