#include "webhooks/admission.h"

#include <algorithm>
#include <array>
#include <stdexcept>
#include <utility>

#include "crds/defaults.h"
#include "crds/kinds.h"
#include "crds/validation.h"
#include "webhooks/base64.h"

namespace millrace::webhooks {
namespace {

constexpr std::string_view kGroupVersionPath = "millrace-io-v1alpha1-";
// Every kind of crds/kinds.def gets a validating and a defaulting webhook.
constexpr std::array kKinds = {
#define MILLRACE_KIND(kind, plural, singular, scope) std::string_view(#kind),
#include "crds/kinds.def"
#undef MILLRACE_KIND
};

std::string Lower(std::string_view s) {
  std::string out(s);
  std::ranges::transform(out, out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

HttpAnswer Text(unsigned status, std::string text) { return {status, std::move(text) + "\n"}; }

// What one handler decided.
struct Decision {
  api::ValidationErrors errors;
  std::vector<std::string> warnings;
  Json patch;  // a JSONPatch array, or null
};

const Json& Member(const Json& object, std::string_view key) {
  static const Json kNull;
  if (!object.is_object()) return kNull;
  const auto it = object.find(key);
  return it == object.end() ? kNull : *it;
}

std::string StringMember(const Json& object, std::string_view key) {
  const Json& v = Member(object, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

void AddWarnings(const api::ValidationErrors& found, std::vector<std::string>& warnings) {
  for (const auto& w : found) warnings.push_back(w.path + ": " + w.detail);
}

// Decodes `object` as T (errors as field errors); for UPDATE also the old object.
template <class T>
Decision ValidateKind(const std::string& operation, const Json& object, const Json& old_object) {
  Decision d;
  api::ValidationErrors warnings;
  if (operation == "CREATE") {
    auto parsed = api::ParseAndValidate<T>(object, &warnings);
    if (!parsed) d.errors = std::move(parsed.error());
  } else if (operation == "UPDATE") {
    const Json& meta = Member(object, "metadata");
    if (!Member(meta, "deletionTimestamp").is_null() ||
        Member(object, "spec") == Member(old_object, "spec")) {
      return d;  // metadata-only edits and finalizer removal never fail on newer rules
    }
    auto now = T::FromJson(object);
    if (!now) {
      d.errors = std::move(now.error());
      return d;
    }
    auto before = T::FromJson(old_object);
    api::Default(*now);
    if (before) {
      api::Default(*before);
      d.errors = api::ValidateUpdate(*before, *now, &warnings);
    } else {
      d.errors = api::Validate(*now, &warnings);  // an old object from an older schema
    }
  }
  AddWarnings(warnings, d.warnings);
  return d;
}

Decision ValidateModelVersion(const std::string& operation, const std::string& ns,
                              const Json& object, const Json& old_object,
                              const ModelVersionLister& list) {
  if (operation == "DELETE") {
    Decision d;
    const Json& status = Member(old_object, "status");
    if (StringMember(status, "stage") == "Production") {
      d.warnings.push_back("ModelVersion " + StringMember(Member(old_object, "metadata"), "name") +
                           " is in Production: deleting it stops serving model " +
                           StringMember(Member(old_object, "spec"), "model"));
    }
    return d;
  }
  Decision d = ValidateKind<api::ModelVersion>(operation, object, old_object);
  if (operation != "CREATE" || !d.errors.empty() || !list) return d;
  auto mv = api::ModelVersion::FromJson(object);
  if (!mv || mv->spec.stage != api::Stage::kProduction) return d;
  auto others = list(ns);
  if (!others)
    throw std::runtime_error("listing the ModelVersions of " + ns + ": " + others.error());
  std::vector<api::ModelVersion> decoded;
  const std::string name = mv->metadata.name;
  for (const Json& other : *others) {
    auto o = api::ModelVersion::FromJson(other);
    if (o && o->metadata.name != name) decoded.push_back(std::move(*o));
  }
  d.errors = api::ValidateProductionUnique(*mv, decoded);
  return d;
}

Decision Validate(const std::string& kind, const std::string& operation, const std::string& ns,
                  const Json& object, const Json& old_object, const ModelVersionLister& list) {
  // A ModelVersion in Production is checked against the namespace's other versions too.
  if (kind == api::ModelVersion::kKind) {
    return ValidateModelVersion(operation, ns, object, old_object, list);
  }
#define MILLRACE_KIND(k, plural, singular, scope) \
  if (kind == #k) return ValidateKind<api::k>(operation, object, old_object);
#include "crds/kinds.def"
#undef MILLRACE_KIND
  throw std::logic_error("no validation for kind " + kind);
}

// The "add" operations of diff(spec, defaulted spec): defaults fill what is missing and never
// replace what the user wrote (the decoder may normalise a value's spelling, e.g. "1000m").
template <class T>
Json DefaultsPatch(const Json& object) {
  auto parsed = T::FromJson(object);
  if (!parsed) return nullptr;
  api::Default(*parsed);
  const Json& spec = Member(object, "spec");
  const Json defaulted = Member(parsed->ToJson(), "spec");
  if (!spec.is_object() || !defaulted.is_object()) return nullptr;
  Json patch = Json::array();
  for (Json& op : Json::diff(spec, defaulted)) {
    if (op["op"] != "add") continue;
    op["path"] = "/spec" + op["path"].get<std::string>();
    patch.push_back(std::move(op));
  }
  return patch.empty() ? Json(nullptr) : patch;
}

Decision Mutate(const std::string& kind, const std::string& operation, const Json& object) {
  Decision d;
  // Only new objects are defaulted: an update patched with defaults could change fields that are
  // immutable once set (a started Pipeline's steps), and the operator applies the same defaults
  // in memory to whatever is stored.
  if (operation != "CREATE") return d;
#define MILLRACE_KIND(k, plural, singular, scope) \
  if (kind == #k) d.patch = DefaultsPatch<api::k>(object);
#include "crds/kinds.def"
#undef MILLRACE_KIND
  return d;
}

Json DenialStatus(const std::string& kind, const std::string& name,
                  const api::ValidationErrors& errors) {
  Json causes = Json::array();
  std::string message = kind + " \"" + name + "\" is invalid: ";
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i > 0) message += "; ";
    message += api::ToString(errors[i]);
    // kubectl prints each cause as "<field>: <message>", so the message starts with the reason
    // in the API server's words: the denial reads like a schema error.
    causes.push_back(
        {{"reason", errors[i].reason},  // metav1.StatusCause.Type is "reason" in JSON
         {"message", std::string(api::ReasonText(errors[i].reason)) + ": " + errors[i].detail},
         {"field", errors[i].path}});
  }
  return {
      {"code", 422},
      {"reason", "Invalid"},
      {"message", message},
      {"details", {{"group", "millrace.io"}, {"kind", kind}, {"name", name}, {"causes", causes}}}};
}

}  // namespace

std::optional<Endpoint> EndpointFor(std::string_view path) {
  path = path.substr(0, path.find('?'));
  for (const auto& [prefix, operation] :
       {std::pair{std::string_view("/validate-"), Operation::kValidate},
        std::pair{std::string_view("/mutate-"), Operation::kMutate}}) {
    if (!path.starts_with(prefix)) continue;
    std::string_view rest = path.substr(prefix.size());
    if (!rest.starts_with(kGroupVersionPath)) return std::nullopt;
    rest.remove_prefix(kGroupVersionPath.size());
    for (const std::string_view kind : kKinds) {
      if (rest == Lower(kind)) return Endpoint{operation, std::string(kind)};
    }
  }
  return std::nullopt;
}

std::vector<std::string> EndpointPaths() {
  std::vector<std::string> paths;
  for (const std::string_view op : {"/validate-", "/mutate-"}) {
    for (const std::string_view kind : kKinds) {
      paths.push_back(std::string(op) + std::string(kGroupVersionPath) + Lower(kind));
    }
  }
  return paths;
}

std::expected<Json, BadReview> Review(const Endpoint& endpoint, const Json& review,
                                      const ModelVersionLister& list_model_versions) {
  if (!review.is_object() || StringMember(review, "kind") != "AdmissionReview" ||
      StringMember(review, "apiVersion") != "admission.k8s.io/v1") {
    return std::unexpected(BadReview{"expected an admission.k8s.io/v1 AdmissionReview"});
  }
  const Json& request = Member(review, "request");
  const std::string uid = StringMember(request, "uid");
  if (uid.empty()) return std::unexpected(BadReview{"the AdmissionReview has no request.uid"});

  Json response = {{"uid", uid}, {"allowed", true}};
  const std::string kind = StringMember(Member(request, "kind"), "kind");
  const std::string group = StringMember(Member(request, "kind"), "group");
  const std::string operation = StringMember(request, "operation");
  const Json& object = Member(request, "object");
  const Json& old_object = Member(request, "oldObject");
  if (kind != endpoint.kind || group != "millrace.io") {
    response["allowed"] = false;
    response["status"] = {{"code", 400},
                          {"reason", "BadRequest"},
                          {"message", "this webhook admits millrace.io " + endpoint.kind +
                                          " objects, not " + group + " " + kind}};
  } else {
    const Decision d = endpoint.operation == Operation::kValidate
                           ? Validate(kind, operation, StringMember(request, "namespace"), object,
                                      old_object, list_model_versions)
                           : Mutate(kind, operation, object);
    if (!d.errors.empty()) {
      std::string name = StringMember(request, "name");
      if (name.empty()) name = StringMember(Member(object, "metadata"), "name");
      response["allowed"] = false;
      response["status"] = DenialStatus(kind, name, d.errors);
    }
    if (!d.warnings.empty()) response["warnings"] = d.warnings;
    if (!d.patch.is_null()) {
      response["patchType"] = "JSONPatch";
      response["patch"] = Base64(d.patch.dump());
    }
  }
  return Json{{"apiVersion", "admission.k8s.io/v1"},
              {"kind", "AdmissionReview"},
              {"response", std::move(response)}};
}

HttpAnswer Answer(std::string_view method, std::string_view target, std::string_view content_type,
                  std::string_view body, const ModelVersionLister& list_model_versions) {
  const auto endpoint = EndpointFor(target);
  if (!endpoint) return Text(404, "no admission webhook at " + std::string(target));
  if (method != "POST") return Text(405, "admission reviews are POSTed");
  if (!content_type.empty() && !content_type.starts_with("application/json")) {
    return Text(415, "expected application/json, got " + std::string(content_type));
  }
  // Copying and comparing JSON recurse: a body nested deeper than any Kubernetes object (the API
  // server's own decoder stops at 10,000 levels; real objects stay under 30) is refused before it
  // can exhaust the stack.
  constexpr int kMaxDepth = 128;
  bool too_deep = false;
  const Json review = Json::parse(
      body,
      [&](int depth, Json::parse_event_t, Json&) {
        if (depth > kMaxDepth) too_deep = true;
        return !too_deep;
      },
      /*allow_exceptions=*/false);
  if (too_deep)
    return Text(400, "the body nests deeper than " + std::to_string(kMaxDepth) + " levels");
  if (review.is_discarded()) return Text(400, "the body is not JSON");
  try {
    auto answered = Review(*endpoint, review, list_model_versions);
    if (!answered) return Text(400, answered.error().message);
    return {200, answered->dump()};
  } catch (const std::exception& e) {
    return Text(500, std::string("internal error: ") + e.what());
  }
}

}  // namespace millrace::webhooks
