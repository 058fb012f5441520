#include "crds/task.h"

namespace millrace::api {

std::expected<TaskSpec, ValidationErrors> TaskSpecFromJson(const Json& j, const std::string& path) {
  ValidationErrors errors;
  codec::Context c{errors};
  TaskSpec spec;
  Decode(c, j, path, spec);
  if (!errors.empty()) return std::unexpected(std::move(errors));
  return spec;
}

std::expected<std::map<std::string, std::string>, ResultsError> ParseResults(
    std::string_view message) {
  const auto invalid = [](std::string why) {
    return std::unexpected(ResultsError{.too_large = false, .message = std::move(why)});
  };
  const std::string limit = std::to_string(kMaxResultsBytes);
  if (message.size() > kMaxResultsBytes) {
    return std::unexpected(ResultsError{.too_large = true,
                                        .message = "results are " + std::to_string(message.size()) +
                                                   " bytes; the limit is " + limit});
  }
  std::map<std::string, std::string> out;
  if (message.find_first_not_of(" \t\r\n") == std::string_view::npos) return out;
  const Json j = Json::parse(message, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() && message.size() == kMaxResultsBytes) {
    return std::unexpected(ResultsError{
        .too_large = true,
        .message = "the termination message reached the kubelet's limit of " + limit +
                   " bytes, of which it keeps only the last ones; results must fit in " + limit +
                   " bytes"});
  }
  if (!j.is_object()) return invalid("results must be a JSON object of strings");
  for (const auto& [k, v] : j.items()) {
    if (!v.is_string()) return invalid("result \"" + k + "\" is not a string");
    out[k] = v.get<std::string>();
  }
  return out;
}

}  // namespace millrace::api
