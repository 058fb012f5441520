#pragma once

#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>

#include "controller/clock.h"
#include "controller/logging.h"
#include "kubeclient/error.h"

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

// The one policy turning an API error into an outcome, for every controller:
//  - terminal: Invalid (422), BadRequest (400), MethodNotAllowed (405), and Forbidden (403) other
//    than a ResourceQuota's refusal. The API server refuses the request as it stands and would
//    refuse the same request again; the object's next change brings a new request.
//  - transient, retried with the queue's per-key backoff: everything else. Conflict and
//    AlreadyExists (the cache is behind: the retry plans from a fresher read), NotFound (a read
//    raced a create or a delete), Gone, Timeout, TooManyRequests, server errors, transport
//    failures, Unauthorized (a token being rotated), Fenced (this replica is losing its lease),
//    and a quota refusal (usage moves as pods finish).
bool IsTerminal(const kube::Error& error);
// A Forbidden whose message says a ResourceQuota refused the request: "exceeded quota", or
// "status unknown for quota" (the quota controller has not yet counted a new quota's usage).
bool IsQuotaRefusal(const kube::Error& error);

// The result of one reconcile, exactly one of:
//  - Done(): the object is as desired; wait for the next change.
//  - RequeueAfter(d): reconcile again after d (e.g. to poll something outside the cluster).
//  - TransientError(msg): failed, try again with backoff.
//  - TerminalError(msg): failed in a way a retry cannot fix (e.g. an invalid spec); reported,
//    not retried until the object changes.
// ApiError(what, error) is TransientError or TerminalError as IsTerminal(error) says, and keeps
// the error.
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
  // `what` failed ("creating Job x") with `error`.
  static Outcome ApiError(const std::string& what, kube::Error error) {
    Outcome outcome(IsTerminal(error) ? Kind::kTerminalError : Kind::kTransientError, {},
                    what + ": " + error.ToString());
    outcome.api_error_ = std::move(error);
    return outcome;
  }

  Kind kind() const { return kind_; }
  Duration requeue_after() const { return requeue_after_; }
  const std::string& error() const { return error_; }
  // The API server's answer, for ApiError outcomes.
  const std::optional<kube::Error>& api_error() const { return api_error_; }

 private:
  Outcome(Kind kind, Duration after, std::string error)
      : kind_(kind), requeue_after_(after), error_(std::move(error)) {}
  Kind kind_;
  Duration requeue_after_;
  std::string error_;
  std::optional<kube::Error> api_error_;
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
