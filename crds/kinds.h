#pragma once

// Millrace's kinds: their types, and their resources made from the one list in crds/kinds.def.

#include <array>
#include <string_view>

#include "crds/meta.h"
#include "crds/model_version.h"
#include "crds/pipeline.h"
#include "crds/schedule.h"
#include "crds/task.h"
#include "crds/zone.h"
#include "kubeclient/client.h"

namespace millrace::api {

// kZones, kTasks, kPipelines, kModelVersions: the ResourceRef of each kind.
#define MILLRACE_KIND(kind, plural, singular, scope)                                              \
  inline const kube::ResourceRef k##kind##s{std::string(kApiGroup), std::string(kApiVersionName), \
                                            #plural, std::string_view(#scope) == "Namespaced",    \
                                            #kind};
#include "crds/kinds.def"
#undef MILLRACE_KIND

// Every kind's ResourceRef, in the order of crds/kinds.def.
inline const std::array kKindResources = {
#define MILLRACE_KIND(kind, plural, singular, scope) &k##kind##s,
#include "crds/kinds.def"
#undef MILLRACE_KIND
};

}  // namespace millrace::api
