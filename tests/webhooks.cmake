# Tests of webhooks/: call millrace_unit_test / millrace_integration_test (defined in tests/CMakeLists.txt).

millrace_unit_test(webhooks_admission_test
  SOURCES unit/webhooks/admission_test.cc
  LIBS millrace_webhooks millrace_crds_testdata)
millrace_unit_test(webhooks_server_test
  SOURCES unit/webhooks/server_test.cc
  LIBS millrace_webhooks millrace_test_support CURL::libcurl)
millrace_operator_test(webhooks_integration_test
  SOURCES integration/webhooks/admission_test.cc
  LIBS millrace_webhooks millrace_crds_testdata)
