#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <string>

#include "controller/metrics.h"

namespace millrace::controller {

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};
using HttpHandler = std::function<HttpResponse()>;

struct HttpServerOptions {
  std::string address = "0.0.0.0";
  std::uint16_t port = 8080;  // 0: any free port (see port())
};

// A small plain-HTTP server for probes and metrics (Boost.Beast). Routes are exact paths served
// for GET and HEAD; anything else is 404 or 405. One io_context thread runs every connection
// (keep-alive, 30s idle timeout); handlers run on that thread, so they must be quick. A handler
// that throws produces a 500.
class HttpServer {
 public:
  explicit HttpServer(HttpServerOptions options);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Before Start().
  void Handle(std::string path, HttpHandler handler);
  // Binds and listens (errors such as a port in use come back as a message), then starts the
  // io thread.
  std::expected<void, std::string> Start();
  std::uint16_t port() const;  // the bound port, after Start()
  // Closes the listener, stops serving and joins the io thread; open connections are closed when
  // the server is destroyed. Idempotent.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// /healthz: 200 while the process serves; /readyz: 200 when `ready()` else 503;
// /metrics: registry.Expose() as text/plain; version=0.0.4.
void ServeHealthAndMetrics(HttpServer& server, const Registry& registry,
                           std::function<bool()> ready);

}  // namespace millrace::controller
