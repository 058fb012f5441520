#pragma once

// Loading of config/samples and tests/testdata/invalid for the crds tests (unit and integration).

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "crds/errors.h"

namespace millrace::api::testing {

// The repository root.
std::string SourceDir();

// YAML (one or more documents) to JSON, resolving plain scalars like Kubernetes' YAML decoder:
// null, booleans, integers and floats; quoted scalars stay strings.
std::vector<nlohmann::json> YamlToJson(const std::string& yaml);
std::string ReadFile(const std::string& path);

struct Sample {
  std::string file;  // relative to the repository root
  std::string yaml;
  nlohmann::json object;
};
// Every Millrace object of config/samples/*.yaml (or of `dir`'s, e.g. examples/: not
// kustomization.yaml, not the built-in objects a sample brings along), in file name order.
std::vector<Sample> LoadSamples(const std::string& dir = "config/samples");

// An invalid example: a file with header comments
//   # expect: <path> <reason>        the C++ validation must report this
//   # apiserver: reject|accept       whether the API server (schema + CEL) rejects it on its own
//   # apiserver-path: <path>         the path in the API server's message, if it differs
//   # update: true                   two documents: the object, then an invalid update of it
struct InvalidExample {
  std::string file;
  std::string expect_path;
  std::string expect_reason;
  bool apiserver_rejects = false;
  std::string apiserver_path;
  bool update = false;
  std::vector<std::string> yaml_docs;
  std::vector<nlohmann::json> docs;
};
std::vector<InvalidExample> LoadInvalidExamples();

// `j` decoded as a T (api::Task, api::Pipeline, ...) with apiVersion and kind filled in,
// metadata.uid `uid`, metadata.generation 1, and `status` unless it is null. Throws
// std::runtime_error with the decoding errors if it does not decode.
template <class T>
T ObjectFrom(nlohmann::json j, const std::string& uid, const nlohmann::json& status = nullptr) {
  j["apiVersion"] = "millrace.io/v1alpha1";
  j["kind"] = std::string(T::kKind);
  j["metadata"]["uid"] = uid;
  j["metadata"]["generation"] = 1;
  if (!status.is_null()) j["status"] = status;
  auto object = T::FromJson(j);
  if (!object) throw std::runtime_error(ToString(object.error()));
  return *std::move(object);
}

}  // namespace millrace::api::testing
