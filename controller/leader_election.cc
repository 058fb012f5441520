#include "controller/leader_election.h"

#include <utility>

#include "controller/events.h"

namespace millrace::controller {
namespace {

const kube::ResourceRef& Leases() { return kube::resources::kLeases; }

int64_t Seconds(Duration d) {
  return std::max<int64_t>(1, std::chrono::duration_cast<std::chrono::seconds>(d).count());
}

}  // namespace

LeaderElector::LeaderElector(kube::Client& client, LeaderElectionOptions options)
    : client_(client),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : SystemClock::Instance()) {
  options_.logger =
      options_.logger.With("lease", options_.lease_namespace + "/" + options_.lease_name)
          .With("identity", options_.identity);
}

nlohmann::json LeaderElector::Record(const std::string& holder, bool new_term,
                                     const nlohmann::json& old_spec) const {
  const std::string now = FormatMicroTime(clock_.WallNow());
  nlohmann::json spec = old_spec.is_object() ? old_spec : nlohmann::json::object();
  spec["holderIdentity"] = holder;
  spec["leaseDurationSeconds"] = Seconds(options_.lease_duration);
  spec["renewTime"] = now;
  if (new_term) {
    spec["acquireTime"] = now;
    spec["leaseTransitions"] =
        spec.value("leaseTransitions", int64_t{0}) + (old_spec.is_object() ? 1 : 0);
  }
  return spec;
}

LeaderElector::Attempt LeaderElector::TryAcquireOrRenew() {
  const TimePoint now = clock_.Now();
  auto lease = client_.Get(Leases(), options_.lease_namespace, options_.lease_name);
  if (!lease) {
    if (!lease.error().IsNotFound()) {
      options_.logger.With("error", lease.error().ToString()).Warn("reading the lease failed");
      return Attempt::kFailed;
    }
    nlohmann::json object = {
        {"apiVersion", "coordination.k8s.io/v1"},
        {"kind", "Lease"},
        {"metadata", {{"name", options_.lease_name}, {"namespace", options_.lease_namespace}}},
        {"spec", Record(options_.identity, true, nullptr)},
    };
    auto created = client_.Create(Leases(), object);
    if (!created) return Attempt::kFailed;
    observed_spec_ = (*created)["spec"];
    observed_at_ = now;
    return Attempt::kAcquired;
  }

  const nlohmann::json spec = lease->value("spec", nlohmann::json::object());
  if (spec != observed_spec_) {
    observed_spec_ = spec;
    observed_at_ = now;
  }
  const std::string holder = spec.value("holderIdentity", std::string{});
  const Duration duration = std::chrono::seconds{spec.value("leaseDurationSeconds", int64_t{0})};
  if (!holder.empty() && holder != options_.identity && observed_at_ + duration > now) {
    return Attempt::kHeldByOther;
  }

  nlohmann::json updated = *lease;
  updated["spec"] = Record(options_.identity, holder != options_.identity, spec);
  auto written = client_.Update(Leases(), updated);  // carries the resourceVersion we read
  if (!written) return Attempt::kFailed;
  observed_spec_ = (*written)["spec"];
  observed_at_ = now;
  if (holder != options_.identity) {
    options_.logger.With("previousHolder", holder).Info("acquired the lease");
  }
  return Attempt::kAcquired;
}

bool LeaderElector::Acquire(std::stop_token stop) {
  options_.logger.Info("waiting to acquire the lease");
  while (!stop.stop_requested()) {
    if (TryAcquireOrRenew() == Attempt::kAcquired) {
      leader_ = true;
      return true;
    }
    if (!clock_.SleepUntil(clock_.Now() + options_.retry_period, stop)) break;
  }
  return false;
}

bool LeaderElector::Renew(std::stop_token stop) {
  TimePoint last_renewed = clock_.Now();
  while (clock_.SleepUntil(clock_.Now() + options_.retry_period, stop)) {
    switch (TryAcquireOrRenew()) {
      case Attempt::kAcquired:
        last_renewed = clock_.Now();
        continue;
      case Attempt::kHeldByOther:
        leader_ = false;
        options_.logger.Error("another candidate holds the lease; leadership lost");
        return false;
      case Attempt::kFailed:
        if (clock_.Now() - last_renewed >= options_.renew_deadline) {
          leader_ = false;
          options_.logger.Error("could not renew the lease within the renew deadline");
          return false;
        }
        continue;
    }
  }
  return true;
}

void LeaderElector::Release() {
  if (!leader_.exchange(false)) return;
  auto lease = client_.Get(Leases(), options_.lease_namespace, options_.lease_name);
  if (!lease) return;
  nlohmann::json spec = lease->value("spec", nlohmann::json::object());
  if (spec.value("holderIdentity", std::string{}) != options_.identity) return;
  nlohmann::json updated = *lease;
  spec["holderIdentity"] = "";
  spec["leaseDurationSeconds"] = 1;
  spec["renewTime"] = FormatMicroTime(clock_.WallNow());
  updated["spec"] = spec;
  if (auto written = client_.Update(Leases(), updated); !written) {
    options_.logger.With("error", written.error().ToString()).Warn("releasing the lease failed");
    return;
  }
  options_.logger.Info("released the lease");
}

}  // namespace millrace::controller
