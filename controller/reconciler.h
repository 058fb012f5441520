#pragma once

#include <stop_token>
#include <string>
#include <string_view>
#include <utility>

#include "controller/clock.h"
#include "controller/logging.h"

namespace millrace::controller {

// What to reconcile: a key, "namespace/name" or "name" (cluster-scoped). The reconciler reads
// the object's current state from the cache; the request says nothing about what changed.
struct Request {
  std::string key;

  std::string_view ns() const {
    const auto slash = key.find('/');
    return slash == std::string::npos ? std::string_view{} : std::string_view(key).substr(0, slash);
  }
  std::string_view name() const {
    const auto slash = key.find('/');
    return slash == std::string::npos ? std::string_view(key)
                                      : std::string_view(key).substr(slash + 1);
  }
};

// The result of one reconcile, exactly one of:
//  - Done(): the object is as desired; wait for the next change.
//  - RequeueAfter(d): reconcile again after d (e.g. to poll something outside the cluster).
//  - TransientError(msg): failed, try again with backoff.
//  - TerminalError(msg): failed in a way a retry cannot fix (e.g. an invalid spec); reported,
//    not retried until the object changes.
class Outcome {
 public:
  enum class Kind { kDone, kRequeueAfter, kTransientError, kTerminalError };

  static Outcome Done() { return Outcome(Kind::kDone, {}, {}); }
  static Outcome RequeueAfter(Duration after) { return Outcome(Kind::kRequeueAfter, after, {}); }
  static Outcome TransientError(std::string message) {
    return Outcome(Kind::kTransientError, {}, std::move(message));
  }
  static Outcome TerminalError(std::string message) {
    return Outcome(Kind::kTerminalError, {}, std::move(message));
  }

  Kind kind() const { return kind_; }
  Duration requeue_after() const { return requeue_after_; }
  const std::string& error() const { return error_; }

 private:
  Outcome(Kind kind, Duration after, std::string error)
      : kind_(kind), requeue_after_(after), error_(std::move(error)) {}
  Kind kind_;
  Duration requeue_after_;
  std::string error_;
};

struct ReconcileContext {
  std::string reconcile_id;  // short random hex, also in every log line of `logger`
  Logger logger;             // carries controller, object and reconcileID
  std::stop_token stop;      // requested when the controller stops: return early if you can
};

// Implementations must be safe to call from several worker threads at once (for different
// keys; one key is never reconciled concurrently) and idempotent. An exception escaping
// Reconcile() is treated as a transient error.
class Reconciler {
 public:
  virtual ~Reconciler() = default;
  virtual Outcome Reconcile(const Request& request, const ReconcileContext& context) = 0;
};

}  // namespace millrace::controller
