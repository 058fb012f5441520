# Tests of reconcilers/: call millrace_unit_test / millrace_integration_test (defined in tests/CMakeLists.txt).

millrace_unit_test(reconcilers_zone_test
  SOURCES unit/reconcilers/zone_test.cc
  LIBS millrace_reconcilers millrace_crds_testdata)
millrace_unit_test(reconcilers_task_test
  SOURCES unit/reconcilers/task_test.cc
  LIBS millrace_reconcilers millrace_crds_testdata)
millrace_unit_test(reconcilers_apply_test
  SOURCES unit/reconcilers/apply_test.cc
  LIBS millrace_reconcilers)
millrace_integration_test(reconcilers_apply_integration_test
  SOURCES integration/reconcilers/apply_test.cc
  LIBS millrace_reconcilers millrace_test_client)
# Every controller's API-error paths, the controllers in-process.
millrace_integration_test(reconcilers_api_errors_test
  SOURCES integration/reconcilers/api_errors_test.cc
  LIBS millrace_reconcilers millrace_test_client)
millrace_operator_test(reconcilers_zone_integration_test
  SOURCES integration/reconcilers/zone_test.cc)
millrace_operator_test(reconcilers_task_integration_test
  SOURCES integration/reconcilers/task_test.cc
  LIBS millrace_crds)
millrace_operator_test(reconcilers_pipeline_integration_test
  SOURCES integration/reconcilers/pipeline_test.cc
  LIBS millrace_crds)
millrace_unit_test(reconcilers_pipeline_test
  SOURCES unit/reconcilers/pipeline_test.cc
  LIBS millrace_reconcilers millrace_crds_testdata)
# The 200-step pipeline loads the 2-core machine; run it alone so other binaries' clusters start
# in time.
set_tests_properties(reconcilers_pipeline_integration_test PROPERTIES RUN_SERIAL TRUE)
millrace_unit_test(reconcilers_model_version_test
  SOURCES unit/reconcilers/model_version_test.cc
  LIBS millrace_reconcilers millrace_crds_testdata)
millrace_operator_test(reconcilers_model_version_integration_test
  SOURCES integration/reconcilers/model_version_test.cc)
