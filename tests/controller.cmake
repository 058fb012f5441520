# Tests of controller/: call millrace_unit_test / millrace_integration_test (defined in tests/CMakeLists.txt).
millrace_unit_test(controller_unit_test
  SOURCES
    unit/controller/controller_test.cc
    unit/controller/event_sender_test.cc
    unit/controller/events_test.cc
    unit/controller/flags_test.cc
    unit/controller/handlers_test.cc
    unit/controller/http_server_test.cc
    unit/controller/leader_fence_test.cc
    unit/controller/logging_test.cc
    unit/controller/metrics_test.cc
    unit/controller/mutation_cache_test.cc
    unit/controller/rate_limiter_test.cc
    unit/controller/store_test.cc
    unit/controller/work_queue_test.cc
  LIBS millrace_controller Boost::boost)
millrace_integration_test(controller_informer_test
  SOURCES integration/controller/informer_test.cc
  LIBS millrace_controller millrace_test_client)
millrace_operator_test(controller_manager_test
  SOURCES integration/controller/manager_test.cc)
