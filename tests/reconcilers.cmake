# Tests of reconcilers/: call millrace_unit_test / millrace_integration_test (defined in tests/CMakeLists.txt).

millrace_unit_test(reconcilers_unit_test
  SOURCES
    unit/reconcilers/apply_test.cc
    unit/reconcilers/model_version_test.cc
    unit/reconcilers/pipeline_test.cc
    unit/reconcilers/schedule_test.cc
    unit/reconcilers/task_test.cc
    unit/reconcilers/zone_test.cc
  LIBS millrace_reconcilers millrace_crds_testdata)
millrace_integration_test(reconcilers_apply_integration_test
  SOURCES integration/reconcilers/apply_test.cc
  LIBS millrace_reconcilers millrace_test_client)
# Every controller's API-error paths, the controllers in-process.
millrace_integration_test(reconcilers_api_errors_test
  SOURCES integration/reconcilers/api_errors_test.cc
  LIBS millrace_reconcilers millrace_test_client)
# Each kind's controller in the real operator binary.
foreach(kind zone task pipeline model_version schedule)
  millrace_operator_test(reconcilers_${kind}_integration_test
    SOURCES integration/reconcilers/${kind}_test.cc
    LIBS millrace_crds)
endforeach()
# The 200-step pipeline loads the 2-core machine; run it alone so other binaries' clusters start
# in time.
set_tests_properties(reconcilers_pipeline_integration_test PROPERTIES RUN_SERIAL TRUE)
