// millrace-controller: the operator's single binary, and its composition root: flags, clients,
// the manager, the four controllers, the webhook runnables.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "controller/controller.h"
#include "controller/failpoint.h"
#include "controller/flags.h"
#include "controller/logging.h"
#include "controller/manager.h"
#include "controller/memory.h"
#include "controller/version.h"
#include "kubeclient/client.h"
#include "kubeclient/config.h"
#include "reconcilers/apply.h"
#include "reconcilers/model_version_reconciler.h"
#include "reconcilers/pipeline_reconciler.h"
#include "reconcilers/schedule_reconciler.h"
#include "reconcilers/task_reconciler.h"
#include "reconcilers/zone_reconciler.h"
#include "webhooks/certificates.h"
#include "webhooks/configurations.h"
#include "webhooks/server.h"

namespace mc = millrace::controller;
namespace kube = millrace::kube;
namespace webhooks = millrace::webhooks;

namespace {

std::string Identity() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return std::string(host[0] != '\0' ? host : "millrace") + "_" + mc::NewReconcileId().substr(0, 8);
}

// SIGTERM and SIGINT request a graceful stop; a second one exits at once.
std::jthread HandleSignals(std::stop_source& stop) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any other thread starts
  return std::jthread([set, &stop] {
    int signal = 0;
    for (int count = 0;; ++count) {
      if (sigwait(&set, &signal) != 0) continue;
      if (count > 0) std::_Exit(130);
      stop.request_stop();
    }
  });
}

// The admission webhook server (every replica runs one) as a runnable of `manager`. With no
// --webhook-cert-dir it serves a certificate signed by a CA generated now, and a second runnable
// keeps --webhook-configuration's caBundle on that CA, writing with `unfenced` (any replica
// writes it, leader or not). False when the certificate cannot be made.
bool AddWebhooks(const mc::Flags& flags, kube::ReadWriter& unfenced, mc::Manager& manager) {
  const mc::Logger log = manager.logger();
  const auto address = mc::ParseBindAddress(flags.webhook_bind_address);
  if (!address) return false;  // ParseFlags refuses a bad one
  const auto& [host, port] = *address;
  webhooks::WebhookServerOptions options;
  options.address = host;
  options.port = port;
  options.cert_dir = flags.webhook_cert_dir;
  options.logger = log;
  options.metrics = &manager.metrics();
  // Admission of a ModelVersion created in Production reads the namespace's ModelVersions from the
  // manager's cache (every replica keeps it warm): no request to the API server on an io thread.
  const mc::Informer& versions = millrace::reconcilers::AddInformer(
      manager, millrace::reconcilers::resources::kModelVersions, "");
  options.list_model_versions =
      [&versions](
          const std::string& ns) -> std::expected<std::vector<nlohmann::json>, std::string> {
    if (!versions.HasSynced()) return std::unexpected("the ModelVersion cache has not synced yet");
    std::vector<nlohmann::json> items;
    for (const mc::Object& v : versions.store().ByIndex(mc::Index::kNamespace, ns)) {
      items.push_back(*v);
    }
    return items;
  };
  std::string ca_pem;
  if (flags.webhook_cert_dir.empty()) {
    auto ca = webhooks::GenerateCa("millrace-webhook-ca");
    auto serving = ca ? webhooks::IssueServingCertificate(*ca, flags.webhook_hosts)
                      : std::unexpected(ca.error());
    if (!serving) {
      log.With("error", serving.error()).Error("cannot generate the webhook certificate");
      return false;
    }
    ca_pem = ca->certificate;
    options.certificate = std::move(*serving);
  }
  manager.AddRunnable(std::make_unique<webhooks::WebhookServer>(std::move(options)));
  if (!ca_pem.empty() && !flags.webhook_configuration.empty()) {
    manager.AddRunnable(std::make_unique<webhooks::CaBundleInjector>(
        unfenced, flags.webhook_configuration, ca_pem, log));
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  mc::LimitAllocatorArenas();
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  auto flags = mc::ParseFlags(args);
  if (!flags) {
    std::cerr << "millrace-controller: " << flags.error() << "\n";
    return 2;
  }
  if (flags->help) {
    std::cout << mc::FlagsUsage();
    return 0;
  }
  if (flags->version) {
    std::cout << "millrace-controller " << millrace::Version() << "\n";
    return 0;
  }

  std::stop_source stop;
  std::jthread signals = HandleSignals(stop);
  signals.detach();

  // ParseFlags checked the level and the addresses.
  const mc::Logger logger =
      mc::Logger::Stderr(mc::ParseLogLevel(flags->log_level).value_or(mc::LogLevel::kInfo));
  if (auto armed = millrace::failpoint::ArmFromEnvironment(); !armed) {
    logger.With("error", armed.error()).Error("bad failpoints");
    return 2;
  }
  if (millrace::failpoint::Enabled() && !millrace::failpoint::List().empty()) {
    logger.With("failpoints", millrace::failpoint::List()).Warn("failpoints armed (a test build)");
  }
  kube::Result<kube::Config> config =
      flags->kubeconfig.empty() && flags->context.empty()
          ? kube::LoadDefault()
          : kube::LoadKubeconfig({.paths = flags->kubeconfig.empty()
                                               ? std::vector<std::string>{}
                                               : std::vector<std::string>{flags->kubeconfig},
                                  .context = flags->context});
  if (!config) {
    logger.With("error", config.error().ToString()).Error("no API server configuration");
    return 1;
  }
  const std::string identity = Identity();
  // The identity in every request's User-Agent names the replica in the API server's audit log.
  config->user_agent =
      "millrace-controller/" + std::string(millrace::Version()) + " (" + identity + ")";
  const kube::Config unfenced_config = *config;  // before the fence is set

  // One count of requests for the manager's, the lease's and the events' clients.
  auto request_metrics = std::make_shared<kube::RequestMetrics>();
  mc::ManagerOptions options;
  options.logger = logger;
  options.cache_sync_timeout = flags->cache_sync_timeout;
  options.events.reporting_instance = identity;
  std::unique_ptr<kube::Client> lease_client;
  if (flags->leader_elect) {
    std::string ns = flags->leader_election_namespace;
    if (ns.empty() && std::getenv("POD_NAMESPACE") != nullptr) ns = std::getenv("POD_NAMESPACE");
    if (ns.empty()) ns = config->default_namespace;
    // The lease's own client: each request ends within what is left of the renew deadline
    // (LeaderElector passes it), no retries, and a rate limit of its own.
    kube::Config lease_config = *config;
    lease_config.qps = 10;
    lease_config.burst = 10;
    lease_config.max_retries = 0;
    lease_config.timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(flags->renew_deadline);
    lease_config.connect_timeout = std::min(lease_config.connect_timeout, lease_config.timeout);
    auto made = kube::NewClient(lease_config, request_metrics);
    if (!made) {
      logger.With("error", made.error().ToString()).Error("cannot build the lease client");
      return 1;
    }
    lease_client = std::move(*made);
    // A replica frozen past its lease is killed before it could resume and write (LeaderFence).
    auto fence = std::make_shared<mc::LeaderFence>(mc::LeaderFenceOptions{
        .clock = nullptr, .kill_after = (flags->lease_duration - flags->renew_deadline) / 2});
    // Every write of the controllers and the event recorder asks the fence first.
    config->write_fence = [fence] { return fence->Check(); };
    options.leader_election = mc::LeaderElectionOptions{
        .lease_namespace = ns,
        .lease_name = flags->leader_election_id,
        .identity = identity,
        .lease_duration = flags->lease_duration,
        .renew_deadline = flags->renew_deadline,
        .retry_period = flags->retry_period,
        .clock = nullptr,
        .logger = logger,
        .client = lease_client.get(),
        .fence = std::move(fence),
    };
  }
  config->qps = flags->kube_api_qps;
  config->burst = flags->kube_api_burst;
  auto client = kube::NewClient(*config, request_metrics);
  if (!client) {
    logger.With("error", client.error().ToString()).Error("cannot build the API client");
    return 1;
  }
  options.request_metrics = request_metrics;
  if (flags->bind_address != "0") {
    if (const auto address = mc::ParseBindAddress(flags->bind_address)) {
      options.http = mc::HttpServerOptions{.address = address->first, .port = address->second};
    }
  }
  // The webhooks' client (the CA injector writes as any replica does, leader or not): no fence.
  auto unfenced_client = kube::NewClient(unfenced_config);
  if (!unfenced_client) {
    logger.With("error", unfenced_client.error().ToString())
        .Error("cannot build the webhooks' client");
    return 1;
  }
  mc::Manager manager(**client, std::move(options));
  millrace::reconcilers::AddZoneController(manager, flags->workers);
  millrace::reconcilers::AddTaskController(manager, flags->workers);
  millrace::reconcilers::AddPipelineController(manager, flags->workers);
  millrace::reconcilers::AddModelVersionController(manager, flags->workers);
  millrace::reconcilers::AddScheduleController(manager, flags->workers);
  logger.With("version", millrace::Version()).With("server", config->server).Info("starting");
  if (flags->webhook_bind_address != "0" && !AddWebhooks(*flags, **unfenced_client, manager)) {
    return 1;
  }
  const int code = manager.Run(stop.get_token());
  if (manager.lost_leadership()) {
    std::fflush(nullptr);
    std::_Exit(code);  // at once: in-flight reconciles are not waited for (Manager::Run)
  }
  return code;
}
