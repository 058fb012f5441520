#pragma once

// The admission webhook server: HTTPS (TLS 1.2+, Boost.Beast) serving the endpoints of
// webhooks/admission.h. It runs in every replica, leader or not, so admission stays available
// while leadership moves.

#include <chrono>
#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "controller/logging.h"
#include "controller/metrics.h"
#include "controller/runnable.h"
#include "webhooks/admission.h"
#include "webhooks/certificates.h"

namespace millrace::webhooks {

struct WebhookServerOptions {
  std::string address = "0.0.0.0";
  std::uint16_t port = 9443;  // 0: any free port (see port())
  // tls.crt and tls.key in this directory (a Secret volume, cert-manager's layout), looked at every
  // `reload_interval` and re-read when either changed; new connections get the new pair, open ones
  // keep theirs. A pair that does not load leaves the previous one serving. Empty: serve
  // `certificate`.
  std::string cert_dir;
  std::optional<CertificatePem> certificate;
  std::chrono::milliseconds reload_interval{1000};
  int threads = 2;
  // An AdmissionReview holds the object twice (3 MiB at most for what etcd stores).
  std::size_t max_request_bytes = 8u << 20;
  // Requests up to this size (a review of any ordinary object) are always read. A larger one
  // reserves its Content-Length (max_request_bytes when it sends none) once its header is read,
  // until its answer is written, from max_bytes_in_flight; one that would go over is answered 503
  // with Retry-After at once, unread. So large or slow bodies cannot exhaust memory, nor keep
  // small reviews out.
  std::size_t small_request_bytes = 256u << 10;
  std::size_t max_bytes_in_flight = 32u << 20;  // at least max_request_bytes
  // Connections open at once; more are closed as they are accepted. The API server keeps a few;
  // small requests hold at most max_connections x small_request_bytes (64 MiB).
  std::size_t max_connections = 256;
  // A request's header and body must arrive within this once its first byte has (an idle
  // kept-alive connection may wait 30 s for its next request).
  std::chrono::seconds request_timeout{10};
  controller::Logger logger;
  controller::Registry* metrics = nullptr;  // webhook_* metrics when set
  ModelVersionLister list_model_versions;
};

// A runnable of the manager: every replica serves admission, leader or not.
class WebhookServer final : public controller::Runnable {
 public:
  explicit WebhookServer(WebhookServerOptions options);
  ~WebhookServer() override;  // Stop()
  WebhookServer(const WebhookServer&) = delete;
  WebhookServer& operator=(const WebhookServer&) = delete;

  std::string_view runnable_name() const override { return "webhook server"; }
  // Loads the certificate, binds and listens, then starts the io threads; logs "serving
  // admission webhooks" with the port and the certificate's serial.
  std::expected<void, std::string> Start() override;
  std::uint16_t port() const;  // the bound port, after Start()
  // The serial number of the certificate new connections get (hex), after Start().
  std::string serving_serial() const;
  // Stops accepting, closes connections and joins the io threads. Idempotent.
  void Stop() override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace millrace::webhooks
