# Tests of kubeclient/: call millrace_unit_test / millrace_integration_test (defined in tests/CMakeLists.txt).
millrace_unit_test(kubeclient_unit_test
  SOURCES
    unit/kubeclient/auth_test.cc
    unit/kubeclient/client_parts_test.cc
    unit/kubeclient/config_test.cc
    unit/kubeclient/error_test.cc
    unit/kubeclient/watch_decoder_test.cc
  LIBS millrace_kubeclient)

millrace_integration_test(kubeclient_client_test
  SOURCES integration/kubeclient/client_test.cc
  LIBS millrace_kubeclient)
