#pragma once

#include <string>
#include <string_view>

#include "crds/api_types.gen.h"

// The ModelVersion's types (ModelVersionSpec, ModelVersionStatus, ModelVersion, ...) are generated
// from crds/schemas/ by scripts/gen-api; this header adds what the schema cannot say.
namespace millrace::api {

// The name a ModelVersion must have: <model>-<version> (unique per namespace by construction).
inline std::string ModelVersionName(std::string_view model, std::string_view version) {
  return std::string(model) + "-" + std::string(version);
}

}  // namespace millrace::api
