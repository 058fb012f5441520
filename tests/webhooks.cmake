# Tests of webhooks/: call millrace_unit_test / millrace_integration_test (defined in tests/CMakeLists.txt).
