#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace millrace::controller {

// A part of the operator the Manager runs beside its controllers on every replica, leader or not
// (controller-runtime's Runnable that does not need leader election): the admission webhook
// server, the webhook configurations' CA injector. The manager starts them in the order added,
// before the caches sync (a webhook answers at once), and stops them in reverse order once the
// controllers have stopped and the lease is released, before the caches stop.
class Runnable {
 public:
  virtual ~Runnable() = default;
  // "webhook server", for logs.
  virtual std::string_view runnable_name() const = 0;
  // Starts and returns; an error stops the manager's Run() (it returns 1).
  virtual std::expected<void, std::string> Start() = 0;
  // Stops what Start() began and waits for it. Idempotent, and safe without a Start().
  virtual void Stop() = 0;
};

}  // namespace millrace::controller
