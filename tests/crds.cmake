# Tests of crds/: call millrace_unit_test / millrace_integration_test (defined in tests/CMakeLists.txt).

# Loading of config/samples and tests/testdata/invalid, shared by the unit and integration tests.
add_library(millrace_crds_testdata STATIC unit/crds/testdata.cc)
target_include_directories(millrace_crds_testdata PUBLIC ${PROJECT_SOURCE_DIR})
target_compile_definitions(millrace_crds_testdata PRIVATE
  MILLRACE_CRDS_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
target_link_libraries(millrace_crds_testdata PUBLIC nlohmann_json::nlohmann_json PRIVATE yaml-cpp)
millrace_target_warnings(millrace_crds_testdata)

millrace_unit_test(crds_unit_test
  SOURCES
    unit/crds/cron_test.cc
    unit/crds/dag_test.cc
    unit/crds/defaults_test.cc
    unit/crds/duration_test.cc
    unit/crds/quantity_test.cc
    unit/crds/roundtrip_test.cc
    unit/crds/schema_agreement_test.cc
    unit/crds/templates_test.cc
    unit/crds/time_zone_test.cc
    unit/crds/validation_test.cc
  LIBS millrace_crds millrace_crds_testdata)

# The manifests in crds/manifests/ are generated from crds/schemas/: they must be in sync.
find_package(Python3 COMPONENTS Interpreter QUIET)
if(Python3_Interpreter_FOUND)
  add_test(NAME crds_manifests_in_sync
           COMMAND ${Python3_EXECUTABLE} ${PROJECT_SOURCE_DIR}/scripts/gen-crds --check)
  set_tests_properties(crds_manifests_in_sync PROPERTIES LABELS unit)
endif()

millrace_integration_test(crds_integration_test
  SOURCES integration/crds/crds_test.cc
  LIBS millrace_crds millrace_crds_testdata
  TIMEOUT 600)
