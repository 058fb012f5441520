#pragma once

#include <time.h>

#include <atomic>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include <nlohmann/json.hpp>

#include "controller/clock.h"
#include "controller/logging.h"
#include "kubeclient/client.h"

namespace millrace::controller {

// Whether this process may still write as the leader. The elector opens it until renew_deadline
// after the start of each successful renewal and closes it when leadership ends; a client's
// Config::write_fence asks it before every write goes out. Since a standby takes the lease only
// lease_duration (> renew_deadline) after it last saw the record change, a fenced replica's writes
// all reach the API server before another replica can lead, as long as a request takes less than
// lease_duration - renew_deadline to arrive.
//
// A check cannot cover a write that passed it and was then held up before it went out: a process
// stopped (SIGSTOP, a paused VM, a long GC-like stall) between the two sends it when it resumes,
// however late. With `kill_after`, a kernel timer (CLOCK_MONOTONIC, signal SIGKILL) ends the
// process that long after the fence closes unless a renewal moved the end first; SIGKILL reaches
// a stopped process too, so a replica frozen past its lease is dead before it can resume. Choose
// kill_after below lease_duration - renew_deadline (main: half of it).
//
// Thread-safe: one writer (the elector), any readers.
struct LeaderFenceOptions {
  Clock* clock = nullptr;  // nullptr: the system clock (the kill timer needs it)
  std::optional<Duration> kill_after;
};

class LeaderFence {
 public:
  explicit LeaderFence(LeaderFenceOptions options = {});
  ~LeaderFence();
  LeaderFence(const LeaderFence&) = delete;
  LeaderFence& operator=(const LeaderFence&) = delete;

  // nullopt while writes may go out; else the Error (kind Fenced) to return instead.
  std::optional<kube::Error> Check() const;
  bool Open() const { return !Check().has_value(); }
  // Opens the fence until `until` (and re-arms the kill timer for until + kill_after).
  void OpenUntil(TimePoint until);
  // Closes it and disarms the kill timer (leadership handed back or lost).
  void Close();

 private:
  void ArmKillTimer(std::optional<TimePoint> at);

  Clock& clock_;
  std::optional<Duration> kill_after_;
  std::atomic<int64_t> open_until_{0};  // Clock::Now() ticks since its epoch; 0: closed
  std::optional<timer_t> kill_timer_;   // made on first use (the elector's thread); id 0 is valid
};

struct LeaderElectionOptions {
  std::string lease_namespace;
  std::string lease_name;
  std::string identity;  // unique per process: "<hostname>_<random>"
  // A standby takes an unreleased lease once its record has not changed for lease_duration.
  Duration lease_duration = std::chrono::seconds{15};
  // The leader gives up when it could not renew for this long (< lease_duration).
  Duration renew_deadline = std::chrono::seconds{10};
  // How often the leader renews and a standby retries.
  Duration retry_period = std::chrono::seconds{1};
  Clock* clock = nullptr;  // nullptr: the system clock
  Logger logger;
  // The lease's own client: no retries and a rate limit of its own, so a renewal never waits
  // behind reconciles and each request ends within what is left of renew_deadline. nullptr: the
  // client the elector is constructed with.
  kube::ReadWriter* client = nullptr;
  // Opened while this process leads (see LeaderFence); may be null.
  std::shared_ptr<LeaderFence> fence;
};

// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: a record is judged
// expired by when this process last saw it change (local steady clock, so clock skew between
// machines does not matter), every write carries the resourceVersion it read (two candidates
// never both win), and a graceful Release() empties holderIdentity so a standby takes over at its
// next retry instead of waiting out the lease. Every lease request of a leader ends within what
// is left of renew_deadline since its last good renewal, so a hung connection cannot keep it
// believing it leads; the fence stops its writes at that same moment.
class LeaderElector {
 public:
  LeaderElector(kube::ReadWriter& client, LeaderElectionOptions options);

  // Blocks until this process holds the lease (true) or `stop` is requested (false).
  bool Acquire(const std::stop_token& stop);
  // While leading: renews every retry_period. Returns true when `stop` is requested (still the
  // leader: call Release), false as soon as leadership is lost (renewals failed for
  // renew_deadline, or someone else holds the lease).
  bool Renew(const std::stop_token& stop);
  // Hands the lease back if this process holds it. Best effort, one attempt.
  void Release();

  bool IsLeader() const { return leader_.load(); }
  const LeaderElectionOptions& options() const { return options_; }

 private:
  enum class Attempt { kAcquired, kHeldByOther, kFailed };
  // `deadline`: when the request must have ended (the time left is its timeout).
  Attempt TryAcquireOrRenew(TimePoint deadline);
  void Lost(std::string_view why);
  nlohmann::json Record(const std::string& holder, bool new_term,
                        const nlohmann::json& old_spec) const;

  kube::ReadWriter& client_;  // options_.client, or the one given
  LeaderElectionOptions options_;
  Clock& clock_;
  std::atomic<bool> leader_{false};
  // The last record seen and when it was seen to change (the caller's thread only).
  nlohmann::json observed_spec_;
  TimePoint observed_at_{};
  TimePoint renewed_at_{};  // when the last successful acquire or renewal started
};

}  // namespace millrace::controller
