# Tests of controller/: call millrace_unit_test / millrace_integration_test (defined in tests/CMakeLists.txt).
millrace_unit_test(controller_metrics_test
  SOURCES unit/controller/metrics_test.cc
  LIBS millrace_controller)
millrace_unit_test(controller_work_queue_test
  SOURCES unit/controller/rate_limiter_test.cc unit/controller/work_queue_test.cc
  LIBS millrace_controller)
millrace_unit_test(controller_logging_test
  SOURCES unit/controller/logging_test.cc
  LIBS millrace_controller)
millrace_unit_test(controller_controller_test
  SOURCES unit/controller/controller_test.cc
  LIBS millrace_controller)
millrace_unit_test(controller_store_test
  SOURCES unit/controller/store_test.cc unit/controller/mutation_cache_test.cc
  LIBS millrace_controller)
millrace_unit_test(controller_http_server_test
  SOURCES unit/controller/http_server_test.cc
  LIBS millrace_controller Boost::boost)
millrace_unit_test(controller_events_test
  SOURCES unit/controller/events_test.cc unit/controller/event_sender_test.cc
  LIBS millrace_controller)
millrace_unit_test(controller_leader_election_test
  SOURCES unit/controller/leader_fence_test.cc
  LIBS millrace_controller)
millrace_unit_test(controller_flags_test
  SOURCES unit/controller/flags_test.cc unit/controller/handlers_test.cc
  LIBS millrace_controller)
millrace_integration_test(controller_informer_test
  SOURCES integration/controller/informer_test.cc
  LIBS millrace_controller millrace_test_client)
millrace_operator_test(controller_manager_test
  SOURCES integration/controller/manager_test.cc)
