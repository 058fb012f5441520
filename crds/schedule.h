#pragma once

#include <array>
#include <string_view>

#include "crds/api_types.gen.h"

// The Schedule's types (ScheduleSpec, PipelineTemplate, ScheduleStatus, Schedule, ...) are
// generated from crds/schemas/ by scripts/gen-api; this header adds what the schema cannot say.
namespace millrace::api {

// The references a Schedule's template may use in its parameters' values and defaults, filled in
// for each run: the due time in RFC 3339 (UTC), its date and hour in the schedule's time zone, and
// its Unix time.
inline constexpr std::array<std::string_view, 4> kScheduleReferences = {
    "schedule.time", "schedule.date", "schedule.hour", "schedule.unix"};

}  // namespace millrace::api
