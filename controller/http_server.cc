#include "controller/http_server.h"

#include <chrono>
#include <map>
#include <thread>
#include <utility>

#include "kubeclient/beast.h"

namespace millrace::controller {
namespace {

using Routes = std::map<std::string, HttpHandler, std::less<>>;

constexpr auto kIdleTimeout = std::chrono::seconds{30};

HttpResponse Text(unsigned status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

http::response<http::string_body> Respond(const Routes& routes,
                                          const http::request<http::string_body>& request) {
  HttpResponse out;
  const auto route = routes.find(std::string_view(request.target().data(), request.target().size())
                                     .substr(0, request.target().find('?')));
  if (route == routes.end()) {
    out = Text(404, "not found\n");
  } else if (request.method() != http::verb::get && request.method() != http::verb::head) {
    out = Text(405, "method not allowed\n");
  } else {
    try {
      out = route->second();
    } catch (const std::exception& e) {
      out = Text(500, std::string("internal error: ") + e.what() + "\n");
    }
  }
  http::response<http::string_body> response{static_cast<http::status>(out.status),
                                             request.version()};
  response.set(http::field::content_type, out.content_type);
  response.keep_alive(request.keep_alive());
  if (request.method() == http::verb::head) {
    response.content_length(out.body.size());
  } else {
    response.body() = std::move(out.body);
    response.prepare_payload();
  }
  if (out.status == 405) response.set(http::field::allow, "GET, HEAD");
  return response;
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Routes& routes) : stream_(std::move(socket)), routes_(routes) {}

  void Read() {
    request_ = {};
    stream_.expires_after(kIdleTimeout);
    http::async_read(
        stream_, buffer_, request_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

 private:
  void OnRead(beast::error_code ec) {
    if (ec) {
      static_cast<void>(stream_.socket().shutdown(tcp::socket::shutdown_both, ec));
      return;
    }
    response_ = Respond(routes_, request_);
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code write_ec, std::size_t) {
                        self->OnWrite(write_ec);
                      });
  }

  void OnWrite(beast::error_code ec) {
    if (ec || !response_.keep_alive()) {
      static_cast<void>(stream_.socket().shutdown(tcp::socket::shutdown_both, ec));
      return;
    }
    Read();
  }

  beast::tcp_stream stream_;
  const Routes& routes_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  http::response<http::string_body> response_;
};

}  // namespace

struct HttpServer::Impl {
  explicit Impl(HttpServerOptions o) : options(std::move(o)) {}

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec) std::make_shared<Session>(std::move(socket), routes)->Read();
      Accept();
    });
  }

  HttpServerOptions options;
  asio::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  Routes routes;
  std::uint16_t port = 0;
  std::thread thread;  // runs ioc; everything above is touched only by it once started
};

HttpServer::HttpServer(HttpServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

HttpServer::~HttpServer() { Stop(); }

void HttpServer::Handle(std::string path, HttpHandler handler) {
  impl_->routes[std::move(path)] = std::move(handler);
}

std::expected<void, std::string> HttpServer::Start() {
  const auto port = kube::Listen(impl_->acceptor, impl_->options.address, impl_->options.port);
  if (!port) return std::unexpected(port.error());
  impl_->port = *port;
  impl_->Accept();
  impl_->thread = std::thread([this] { impl_->ioc.run(); });
  return {};
}

std::uint16_t HttpServer::port() const { return impl_->port; }

void HttpServer::Stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->ioc, [this] {
    beast::error_code ignored;
    static_cast<void>(impl_->acceptor.close(ignored));
    impl_->ioc.stop();  // open connections are destroyed with the io_context's handlers
  });
  impl_->thread.join();
}

void ServeHealthAndMetrics(HttpServer& server, const Registry& registry,
                           std::function<bool()> ready) {
  server.Handle("/healthz", [] { return Text(200, "ok\n"); });
  server.Handle("/readyz", [ready = std::move(ready)] {
    return ready() ? Text(200, "ok\n") : Text(503, "not ready\n");
  });
  server.Handle("/metrics", [&registry] {
    HttpResponse r = Text(200, registry.Expose());
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  });
}

}  // namespace millrace::controller
