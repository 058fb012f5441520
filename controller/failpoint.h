#pragma once

// Failpoints: named places in the operator where a test build injects a fault (etcd's gofail,
// TiKV's fail-rs). MILLRACE_FAILPOINT("task.after-job-create") does nothing unless the build
// defines MILLRACE_FAILPOINTS (CMake option MILLRACE_FAILPOINTS, on in scripts/test's builds, off
// in the image's) and the process was started with that name armed in
// $MILLRACE_FAILPOINTS: "name=action;name=action". Actions:
//   kill         the process kills itself with SIGKILL there: a crash at exactly that point;
//   sleep(MS)    the calling thread sleeps MS milliseconds (a slow write, a lagging watch);
//   N*ACTION     only the first N times, then disarmed (e.g. "1*kill");
//   P%ACTION     each time with probability P percent (e.g. "5%kill": scripts/chaos).
// Process-wide state by nature (like the two libraries above): a registry behind one mutex, with
// an atomic fast path so an unarmed build pays one load per failpoint.

#include <expected>
#include <string>
#include <string_view>

namespace millrace::failpoint {

// True when this build evaluates failpoints at all.
bool Enabled();

// Arms `name` with `action` (grammar above); an error names what is wrong.
std::expected<void, std::string> Arm(std::string_view name, std::string_view action);
void Disarm(std::string_view name);
// "name=action\n" for each armed failpoint, sorted by name.
std::string List();
// Arms what $MILLRACE_FAILPOINTS names (main calls it at start); an error names the entry that
// does not parse.
std::expected<void, std::string> ArmFromEnvironment();

// Runs the armed action of `name`, if any. Use the macro, which compiles to nothing otherwise.
void Evaluate(std::string_view name);

}  // namespace millrace::failpoint

#ifdef MILLRACE_FAILPOINTS
#define MILLRACE_FAILPOINT(name) ::millrace::failpoint::Evaluate(name)
#else
#define MILLRACE_FAILPOINT(name) static_cast<void>(0)
#endif
