#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace millrace::api {

// Why a field is rejected. The values are Kubernetes' field.ErrorType names (StatusCause.type),
// so a webhook can hand them to the API server unchanged.
namespace reason {
inline constexpr std::string_view kRequired = "FieldValueRequired";
inline constexpr std::string_view kInvalid = "FieldValueInvalid";
inline constexpr std::string_view kTypeInvalid = "FieldValueTypeInvalid";
inline constexpr std::string_view kNotSupported = "FieldValueNotSupported";
inline constexpr std::string_view kDuplicate = "FieldValueDuplicate";
inline constexpr std::string_view kForbidden = "FieldValueForbidden";
inline constexpr std::string_view kNotFound = "FieldValueNotFound";
inline constexpr std::string_view kTooLong = "FieldValueTooLong";
inline constexpr std::string_view kTooMany = "FieldValueTooMany";
}  // namespace reason

// One problem with one field. `path` uses the API server's notation: spec.steps[2].dependsOn[0],
// map keys in brackets: spec.resources.requests[cpu].
struct FieldError {
  std::string path;
  std::string reason;  // one of reason::k*
  std::string detail;  // a sentence for the user

  bool operator==(const FieldError&) const = default;
};

using ValidationErrors = std::vector<FieldError>;

// The API server's words for a reason (field.ErrorType.String()): "FieldValueForbidden" ->
// "Forbidden", "FieldValueInvalid" -> "Invalid value"; unknown reasons as they are.
std::string_view ReasonText(std::string_view reason);

// "spec.input: Forbidden: a Spout ingests data and has no input", as the API server words its own
// field errors, so a webhook denial reads like a schema one.
std::string ToString(const FieldError& error);
// All errors, one per line.
std::string ToString(const ValidationErrors& errors);

}  // namespace millrace::api
