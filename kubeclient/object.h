#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

// Thin helpers over Kubernetes objects held as JSON. Accessors return empty values (not errors)
// when a field is absent, like client-go's ObjectMeta getters.
namespace millrace::kube {

std::string Name(const nlohmann::json& obj);
std::string Namespace(const nlohmann::json& obj);
std::string Uid(const nlohmann::json& obj);
std::string ResourceVersion(const nlohmann::json& obj);
int64_t Generation(const nlohmann::json& obj);
// The map as a JSON object ({} when absent).
nlohmann::json Labels(const nlohmann::json& obj);
nlohmann::json Annotations(const nlohmann::json& obj);
// The array of ownerReferences ([] when absent).
nlohmann::json OwnerReferences(const nlohmann::json& obj);

// "namespace/name", or "name" for a cluster-scoped object: the work-queue key.
std::string Key(const nlohmann::json& obj);

// An ownerReference pointing at `owner` (which must carry apiVersion, kind, name and uid).
nlohmann::json MakeOwnerReference(const nlohmann::json& owner, bool controller = true,
                                  bool block_owner_deletion = true);

}  // namespace millrace::kube
