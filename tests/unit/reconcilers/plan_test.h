#pragma once

// What the planner unit tests (reconcilers_unit_test) share: the names they use and the time
// their first plan is made at. Test objects decode with api::testing::ObjectFrom.

#include <chrono>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "crds/meta.h"
#include "tests/unit/crds/testdata.h"

namespace millrace::reconcilers::plan_test {

using api::Json;
using std::chrono::seconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

inline const api::Time kT0 = *api::ParseTime("2026-11-23T10:00:00Z");

}  // namespace millrace::reconcilers::plan_test
