#pragma once

#include <atomic>
#include <optional>
#include <stop_token>
#include <string>

#include <nlohmann/json.hpp>

#include "controller/clock.h"
#include "controller/logging.h"
#include "kubeclient/client.h"

namespace millrace::controller {

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
};

// Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules: a record is judged
// expired by when this process last saw it change (local steady clock, so clock skew between
// machines does not matter), every write carries the resourceVersion it read (two candidates
// never both win), and a graceful Release() empties holderIdentity so a standby takes over at its
// next retry instead of waiting out the lease.
class LeaderElector {
 public:
  LeaderElector(kube::Client& client, LeaderElectionOptions options);

  // Blocks until this process holds the lease (true) or `stop` is requested (false).
  bool Acquire(std::stop_token stop);
  // While leading: renews every retry_period. Returns true when `stop` is requested (still the
  // leader: call Release), false as soon as leadership is lost (renewals failed for
  // renew_deadline, or someone else holds the lease).
  bool Renew(std::stop_token stop);
  // Hands the lease back if this process holds it. Best effort, one attempt.
  void Release();

  bool IsLeader() const { return leader_.load(); }
  const LeaderElectionOptions& options() const { return options_; }

 private:
  enum class Attempt { kAcquired, kHeldByOther, kFailed };
  Attempt TryAcquireOrRenew();
  nlohmann::json Record(const std::string& holder, bool new_term,
                        const nlohmann::json& old_spec) const;

  kube::Client& client_;
  LeaderElectionOptions options_;
  Clock& clock_;
  std::atomic<bool> leader_{false};
  // The last record seen and when it was seen to change (the caller's thread only).
  nlohmann::json observed_spec_;
  TimePoint observed_at_{};
};

}  // namespace millrace::controller
