#include "controller/leader_election.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

#include "controller/events.h"

namespace millrace::controller {
namespace {

const kube::ResourceRef& Leases() { return kube::resources::kLeases; }

// leaseDurationSeconds: rounded up, so a standby never waits less than this process assumes.
int64_t Seconds(Duration d) {
  return std::max<int64_t>(1, std::chrono::ceil<std::chrono::seconds>(d).count());
}

// The time left until `deadline`, at least a millisecond (a request needs some time to fail).
std::chrono::milliseconds Left(const Clock& clock, TimePoint deadline) {
  return std::max(std::chrono::milliseconds{1},
                  std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock.Now()));
}

}  // namespace

LeaderFence::LeaderFence(LeaderFenceOptions options)
    : clock_(options.clock != nullptr ? *options.clock : SystemClock::Instance()),
      kill_after_(options.kill_after) {
  if (options.clock != nullptr && kill_after_) {
    throw std::invalid_argument("LeaderFence: the kill timer runs on the system clock");
  }
}

LeaderFence::~LeaderFence() {
  if (kill_timer_) timer_delete(*kill_timer_);
}

std::optional<kube::Error> LeaderFence::Check() const {
  const int64_t until = open_until_.load(std::memory_order_acquire);
  if (until != 0 && clock_.Now().time_since_epoch().count() < until) return std::nullopt;
  return kube::MakeError(kube::ErrorKind::kFenced,
                         "not sent: this replica may no longer hold the leader lease");
}

void LeaderFence::OpenUntil(TimePoint until) {
  ArmKillTimer(until + kill_after_.value_or(Duration::zero()));
  open_until_.store(std::max<int64_t>(1, until.time_since_epoch().count()),
                    std::memory_order_release);
}

void LeaderFence::Close() {
  open_until_.store(0, std::memory_order_release);
  ArmKillTimer(std::nullopt);
}

void LeaderFence::ArmKillTimer(std::optional<TimePoint> at) {
  if (!kill_after_) return;
  if (!kill_timer_) {
    if (!at) return;
    sigevent event{};
    event.sigev_notify = SIGEV_SIGNAL;
    event.sigev_signo = SIGKILL;
    timer_t timer{};
    // steady_clock is CLOCK_MONOTONIC in libstdc++, which keeps counting while we are stopped.
    if (timer_create(CLOCK_MONOTONIC, &event, &timer) != 0) {
      throw std::system_error(errno, std::generic_category(), "timer_create");
    }
    kill_timer_ = timer;
  }
  itimerspec spec{};  // all zero: disarmed
  if (at) {
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(at->time_since_epoch()).count();
    spec.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  }
  timer_settime(*kill_timer_, TIMER_ABSTIME, &spec, nullptr);
}

LeaderElector::LeaderElector(kube::ReadWriter& client, LeaderElectionOptions options)
    : client_(options.client != nullptr ? *options.client : client),
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

LeaderElector::Attempt LeaderElector::TryAcquireOrRenew(TimePoint deadline) {
  // Our own renewal counts from when it started (the fence must close no later than the record
  // the API server keeps says), another holder's record from when we saw it, after the read
  // returned (the standby waits at least lease_duration from the change, however slow the read).
  const TimePoint now = clock_.Now();
  auto lease = client_.Get(Leases(), options_.lease_namespace, options_.lease_name,
                           {.resource_version = {}, .timeout = Left(clock_, deadline)});
  const TimePoint seen = clock_.Now();
  if (!lease) {
    if (!lease.error().IsNotFound()) {
      options_.logger.With("error", lease.error().ToString()).Warn("reading the lease failed");
      return Attempt::kFailed;
    }
    const nlohmann::json object = {
        {"apiVersion", "coordination.k8s.io/v1"},
        {"kind", "Lease"},
        {"metadata", {{"name", options_.lease_name}, {"namespace", options_.lease_namespace}}},
        {"spec", Record(options_.identity, true, nullptr)},
    };
    auto created = client_.Create(Leases(), object,
                                  {.field_manager = {},
                                   .dry_run = false,
                                   .subresource = {},
                                   .timeout = Left(clock_, deadline)});
    if (!created) return Attempt::kFailed;
    observed_spec_ = (*created)["spec"];
    observed_at_ = now;
    renewed_at_ = now;
    if (options_.fence) options_.fence->OpenUntil(now + options_.renew_deadline);
    return Attempt::kAcquired;
  }

  const nlohmann::json spec = lease->value("spec", nlohmann::json::object());
  if (spec != observed_spec_) {
    observed_spec_ = spec;
    observed_at_ = seen;
  }
  const std::string holder = spec.value("holderIdentity", std::string{});
  const Duration duration = std::chrono::seconds{spec.value("leaseDurationSeconds", int64_t{0})};
  if (!holder.empty() && holder != options_.identity && observed_at_ + duration > seen) {
    return Attempt::kHeldByOther;
  }

  nlohmann::json updated = *lease;
  updated["spec"] = Record(options_.identity, holder != options_.identity, spec);
  // Carries the resourceVersion we read.
  auto written = client_.Update(Leases(), updated,
                                {.field_manager = {},
                                 .dry_run = false,
                                 .subresource = {},
                                 .timeout = Left(clock_, deadline)});
  if (!written) {
    options_.logger.With("error", written.error().ToString()).Warn("writing the lease failed");
    return Attempt::kFailed;
  }
  observed_spec_ = (*written)["spec"];
  observed_at_ = now;
  renewed_at_ = now;
  if (options_.fence) options_.fence->OpenUntil(now + options_.renew_deadline);
  if (holder != options_.identity) {
    options_.logger.With("previousHolder", holder).Info("acquired the lease");
  }
  return Attempt::kAcquired;
}

bool LeaderElector::Acquire(const std::stop_token& stop) {
  options_.logger.Info("waiting to acquire the lease");
  while (!stop.stop_requested()) {
    if (TryAcquireOrRenew(clock_.Now() + options_.renew_deadline) == Attempt::kAcquired) {
      leader_ = true;
      return true;
    }
    if (!clock_.SleepUntil(clock_.Now() + options_.retry_period, stop)) break;
  }
  return false;
}

void LeaderElector::Lost(std::string_view why) {
  if (options_.fence) options_.fence->Close();
  leader_ = false;
  options_.logger.Error(std::string(why) + "; leadership lost");
}

bool LeaderElector::Renew(const std::stop_token& stop) {
  while (clock_.SleepUntil(clock_.Now() + options_.retry_period, stop)) {
    const TimePoint deadline = renewed_at_ + options_.renew_deadline;
    if (clock_.Now() >= deadline) {
      // Frozen (SIGSTOP, a stalled VM) past the deadline: the lease may be another's already.
      Lost("the lease was not renewed within the renew deadline");
      return false;
    }
    switch (TryAcquireOrRenew(deadline)) {
      case Attempt::kAcquired:
        continue;
      case Attempt::kHeldByOther:
        Lost("another candidate holds the lease");
        return false;
      case Attempt::kFailed:
        if (clock_.Now() >= deadline) {
          Lost("could not renew the lease within the renew deadline");
          return false;
        }
        continue;
    }
  }
  return true;
}

void LeaderElector::Release() {
  if (options_.fence) options_.fence->Close();
  if (!leader_.exchange(false)) return;
  auto lease = client_.Get(
      Leases(), options_.lease_namespace, options_.lease_name,
      {.resource_version = {},
       .timeout = std::chrono::duration_cast<std::chrono::milliseconds>(options_.renew_deadline)});
  if (!lease) return;
  nlohmann::json spec = lease->value("spec", nlohmann::json::object());
  if (spec.value("holderIdentity", std::string{}) != options_.identity) return;
  nlohmann::json updated = *lease;
  spec["holderIdentity"] = "";
  spec["leaseDurationSeconds"] = 1;
  spec["renewTime"] = FormatMicroTime(clock_.WallNow());
  updated["spec"] = spec;
  if (auto written = client_.Update(
          Leases(), updated,
          {.field_manager = {},
           .dry_run = false,
           .subresource = {},
           .timeout =
               std::chrono::duration_cast<std::chrono::milliseconds>(options_.renew_deadline)});
      !written) {
    options_.logger.With("error", written.error().ToString()).Warn("releasing the lease failed");
    return;
  }
  options_.logger.Info("released the lease");
}

}  // namespace millrace::controller
