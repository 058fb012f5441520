#pragma once

// admission.k8s.io/v1 AdmissionReview handling for Zones, Tasks, Pipelines and ModelVersions, free
// of any transport: a review (JSON) in, a review with a response out. Validation and defaulting are
// crds/'s (crds/validation.h, crds/defaults.h), the same code the reconcilers run.

#include <expected>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace millrace::webhooks {

using Json = nlohmann::json;

// The endpoints, in kubebuilder's naming: /validate-millrace-io-v1alpha1-task, /mutate-...-task.
enum class Operation { kValidate, kMutate };
struct Endpoint {
  Operation operation;
  std::string kind;  // "Task"
};
// The endpoint a URL path names, if any (a query string is ignored).
std::optional<Endpoint> EndpointFor(std::string_view path);
// Every endpoint's path, for the server's routes and the docs.
std::vector<std::string> EndpointPaths();

// The other ModelVersions of a namespace (objects as JSON), for the one-Production-per-model rule;
// an error string when they cannot be read (the review then fails closed with a 500 status).
using ModelVersionLister =
    std::function<std::expected<std::vector<Json>, std::string>(const std::string& ns)>;

// A review that cannot be answered at all (not an AdmissionReview, no request.uid): the server
// answers 400 with `message`.
struct BadReview {
  std::string message;
};

// Answers an AdmissionReview sent to `endpoint`:
// - validate, CREATE: the object parses and passes Validate() (and, for a ModelVersion created in
//   Production, no other version of the model is in Production); UPDATE: ValidateUpdate(old, new),
//   skipped when the spec is unchanged or the object is being deleted, so finalizer and label edits
//   never fail on rules newer than the object; DELETE of a Production ModelVersion is allowed with
//   a warning. A denial is status 422 "Invalid" whose message and causes name each field and
//   reason; warnings (legal but suspicious) travel in response.warnings.
// - mutate, CREATE: a JSONPatch that only adds the defaults crds/defaults.h fills in (never
//   rewrites a value the user wrote); no patch when nothing is missing. Updates are not patched. An
//   object that does not parse is admitted unchanged here: the validating webhook denies it with
//   the reason.
std::expected<Json, BadReview> Review(const Endpoint& endpoint, const Json& review,
                                      const ModelVersionLister& list_model_versions);

// An HTTP answer, before transport.
struct HttpAnswer {
  unsigned status = 200;
  std::string body;  // JSON for 200, a line of text otherwise
};

// What the server answers to one request: 404 for an unknown path, 405 for a method other than
// POST, 415 for a content type other than JSON, 400 for a body that is not JSON (or nests deeper
// than 128 levels) or not an AdmissionReview, 500 when a handler throws (the server lives on); 200
// with the AdmissionReview otherwise. The server and the fuzz target (tests/fuzz) call this.
HttpAnswer Answer(std::string_view method, std::string_view target, std::string_view content_type,
                  std::string_view body, const ModelVersionLister& list_model_versions);

}  // namespace millrace::webhooks
