#pragma once

#include <cstddef>
#include <expected>
#include <map>
#include <string>
#include <string_view>

#include "crds/api_types.gen.h"

// The Task's types (TaskSpec, TaskStatus, Task, ...) are generated from crds/schemas/ by
// scripts/gen-api; this header adds what the schema cannot say.
namespace millrace::api {

// The most a task may write to its termination message (results), in bytes: the kubelet's limit.
inline constexpr size_t kMaxResultsBytes = 4096;

// A task whose input is a stream, or that declares a service, runs as a long-lived service.
inline bool Streaming(const TaskSpec& spec) {
  return spec.service.has_value() || (spec.input && spec.input->stream.has_value());
}
inline bool Cancelled(const TaskSpec& spec) { return spec.cancel.value_or(false); }

// TaskSpec alone (e.g. a Pipeline step's task), with paths relative to `path`.
std::expected<TaskSpec, ValidationErrors> TaskSpecFromJson(const Json& j,
                                                           const std::string& path = "spec");

// Why a termination message is not results.
struct ResultsError {
  // Over kMaxResultsBytes, or cut there by the kubelet: a real kubelet keeps the last 4096 bytes of
  // /dev/termination-log, so a longer message reaches the pod's status as a tail of exactly that
  // size that does not parse.
  bool too_large = false;
  std::string message;
};

// Parses a termination message into results: a JSON object of strings, at most kMaxResultsBytes.
// The error says why it was refused (too large or cut off by the kubelet, not an object, a
// non-string value).
std::expected<std::map<std::string, std::string>, ResultsError> ParseResults(
    std::string_view message);

}  // namespace millrace::api
