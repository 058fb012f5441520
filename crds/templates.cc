#include "crds/templates.h"

#include <algorithm>

namespace millrace::api::templates {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    parts.push_back(s.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return parts;
    start = dot + 1;
  }
}

void Classify(Reference& ref) {
  const auto parts = Split(ref.expression);
  if (std::ranges::any_of(parts, [](std::string_view p) { return p.empty(); })) return;
  if (parts.size() == 2 && parts[0] == "params") {
    ref.kind = RefKind::kParam;
    ref.name = parts[1];
  } else if (parts.size() == 4 && parts[0] == "steps" && parts[2] == "results") {
    ref.kind = RefKind::kStepResult;
    ref.name = parts[1];
    ref.field = parts[3];
  } else if (parts.size() == 3 && parts[0] == "steps" && parts[2] == "phase") {
    ref.kind = RefKind::kStepPhase;
    ref.name = parts[1];
  } else if (parts.size() == 2 && parts[0] == "pipeline" &&
             (parts[1] == "name" || parts[1] == "namespace" || parts[1] == "uid" ||
              parts[1] == "phase")) {
    ref.kind = RefKind::kPipeline;
    ref.field = parts[1];
  } else if (parts.size() <= 2 && parts[0] == "item") {
    ref.kind = RefKind::kItem;
    if (parts.size() == 2) ref.field = parts[1];
  }
}

}  // namespace

std::expected<std::vector<Reference>, std::string> FindReferences(std::string_view text) {
  std::vector<Reference> refs;
  size_t pos = 0;
  while ((pos = text.find("{{", pos)) != std::string_view::npos) {
    const size_t end = text.find("}}", pos + 2);
    if (end == std::string_view::npos) {
      return std::unexpected("unterminated \"{{\" at offset " + std::to_string(pos));
    }
    Reference ref;
    ref.offset = pos;
    ref.length = end + 2 - pos;
    ref.expression = std::string(Trim(text.substr(pos + 2, end - pos - 2)));
    Classify(ref);
    refs.push_back(std::move(ref));
    pos = end + 2;
  }
  return refs;
}

std::expected<std::string, std::string> Substitute(std::string_view text, const Values& values) {
  auto refs = FindReferences(text);
  if (!refs) return std::unexpected(refs.error());
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (const auto& ref : *refs) {
    const auto it = values.find(ref.expression);
    if (it == values.end()) return std::unexpected("no value for {{" + ref.expression + "}}");
    out.append(text.substr(pos, ref.offset - pos));
    out += it->second;
    pos = ref.offset + ref.length;
  }
  out.append(text.substr(pos));
  return out;
}

std::expected<nlohmann::json, std::string> SubstituteJson(const nlohmann::json& doc,
                                                          const Values& values) {
  if (doc.is_string()) {
    auto s = Substitute(doc.get<std::string>(), values);
    if (!s) return std::unexpected(s.error());
    return nlohmann::json(std::move(*s));
  }
  if (doc.is_array() || doc.is_object()) {
    nlohmann::json out = doc;
    for (auto& element : out) {
      auto v = SubstituteJson(element, values);
      if (!v) return std::unexpected(v.error());
      element = std::move(*v);
    }
    return out;
  }
  return doc;
}

std::string ParamKey(std::string_view param) { return "params." + std::string(param); }
std::string ResultKey(std::string_view step, std::string_view result) {
  return "steps." + std::string(step) + ".results." + std::string(result);
}
std::string PhaseKey(std::string_view step) { return "steps." + std::string(step) + ".phase"; }
std::string PipelineKey(std::string_view field) { return "pipeline." + std::string(field); }
std::string ItemKey(std::string_view key) {
  return key.empty() ? std::string("item") : "item." + std::string(key);
}

void ForEachString(const nlohmann::json& doc, const std::string& path,
                   const std::function<void(const std::string&, const std::string&)>& visit) {
  if (doc.is_string()) {
    visit(path, doc.get_ref<const std::string&>());
  } else if (doc.is_array()) {
    for (size_t i = 0; i < doc.size(); ++i)
      ForEachString(doc[i], path + "[" + std::to_string(i) + "]", visit);
  } else if (doc.is_object()) {
    for (const auto& [k, v] : doc.items()) {
      // Keys that are not identifiers (map keys such as nvidia.com/gpu) use brackets.
      const bool ident = !k.empty() && k.find_first_of("./[]") == std::string::npos;
      std::string child = path;
      if (!ident) {
        child.append("[").append(k).append("]");
      } else if (!path.empty()) {
        child.append(".").append(k);
      } else {
        child = k;
      }
      ForEachString(v, child, visit);
    }
  }
}

}  // namespace millrace::api::templates
