#include "tests/unit/crds/testdata.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

#include <yaml-cpp/yaml.h>

namespace millrace::api::testing {
namespace {

nlohmann::json Scalar(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted or block scalar
  static const std::regex kInt(R"([-+]?[0-9]+)");
  static const std::regex kFloat(R"([-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?)");
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (std::regex_match(s, kInt)) {
    try {
      return std::stoll(s);
    } catch (const std::out_of_range&) {
      return s;
    }
  }
  if (std::regex_match(s, kFloat)) return std::stod(s);
  return s;
}

nlohmann::json Convert(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return Scalar(node);
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(Convert(item));
      return out;
    }
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& kv : node) out[kv.first.as<std::string>()] = Convert(kv.second);
      return out;
    }
  }
  return nullptr;
}

std::vector<std::string> YamlFiles(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(SourceDir() + "/" + dir))
    if (e.path().extension() == ".yaml") files.push_back(dir + "/" + e.path().filename().string());
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<std::string> SplitDocs(const std::string& text) {
  std::vector<std::string> docs(1);
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line == "---") {
      docs.emplace_back();
    } else {
      docs.back() += line + "\n";
    }
  }
  return docs;
}

}  // namespace

std::string SourceDir() { return MILLRACE_CRDS_SOURCE_DIR; }

std::vector<nlohmann::json> YamlToJson(const std::string& yaml) {
  std::vector<nlohmann::json> out;
  for (const auto& doc : YAML::LoadAll(yaml))
    if (doc.IsDefined() && !doc.IsNull()) out.push_back(Convert(doc));
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<Sample> LoadSamples(const std::string& dir) {
  std::vector<Sample> out;
  for (const auto& file : YamlFiles(dir)) {
    if (file.ends_with("/kustomization.yaml")) continue;  // kustomize's index of the samples
    const std::string text = ReadFile(SourceDir() + "/" + file);
    for (auto& doc : YamlToJson(text)) {
      // The built-in objects a sample brings along (a ServiceAccount, a Secret) are not ours.
      if (!doc.value("apiVersion", "").starts_with("millrace.io/")) continue;
      out.push_back({file, text, std::move(doc)});
    }
  }
  return out;
}

std::vector<InvalidExample> LoadInvalidExamples() {
  std::vector<InvalidExample> out;
  for (const auto& file : YamlFiles("tests/testdata/invalid")) {
    InvalidExample ex;
    ex.file = file;
    const std::string text = ReadFile(SourceDir() + "/" + file);
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (!line.starts_with("#")) continue;
      std::istringstream words(line.substr(1));
      std::string key;
      words >> key;
      if (key == "expect:") {
        words >> ex.expect_path >> ex.expect_reason;
      } else if (key == "apiserver:") {
        std::string v;
        words >> v;
        ex.apiserver_rejects = v == "reject";
      } else if (key == "apiserver-path:") {
        words >> ex.apiserver_path;
      } else if (key == "update:") {
        std::string v;
        words >> v;
        ex.update = v == "true";
      }
    }
    if (ex.apiserver_path.empty()) {
      // The API server writes map keys with dots: requests[cpu] -> requests.cpu.
      ex.apiserver_path =
          std::regex_replace(ex.expect_path, std::regex(R"(\[([A-Za-z][^\]]*)\])"), ".$1");
    }
    ex.yaml_docs = SplitDocs(text);
    for (const auto& d : ex.yaml_docs)
      for (auto& j : YamlToJson(d)) ex.docs.push_back(std::move(j));
    out.push_back(std::move(ex));
  }
  return out;
}

}  // namespace millrace::api::testing
