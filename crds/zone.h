#pragma once

#include <string>

#include "crds/api_types.gen.h"

// The Zone's types (ZoneSpec, ZoneStatus, Zone, ...) are generated from crds/schemas/ by
// scripts/gen-api; this header adds what the schema cannot say.
namespace millrace::api {

// The namespace a zone manages: spec.namespace, else the zone's name.
inline const std::string& TargetNamespace(const Zone& zone) {
  return zone.spec.namespace_ ? *zone.spec.namespace_ : zone.metadata.name;
}

}  // namespace millrace::api
