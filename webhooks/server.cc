#include "webhooks/server.h"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include <openssl/ssl.h>
#include <sys/stat.h>

#include "kubeclient/beast.h"

namespace millrace::webhooks {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kIdleTimeout = std::chrono::seconds{30};

std::expected<std::shared_ptr<ssl::context>, std::string> NewContext(const CertificatePem& pem) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
  SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
  beast::error_code ec;
  static_cast<void>(ctx->use_certificate_chain(asio::buffer(pem.certificate), ec));
  if (ec) return std::unexpected("the certificate does not load: " + ec.message());
  static_cast<void>(ctx->use_private_key(asio::buffer(pem.key), ssl::context::pem, ec));
  if (ec) return std::unexpected("the private key does not load: " + ec.message());
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return std::unexpected("the private key does not match the certificate");
  }
  return ctx;
}

std::optional<std::string> ReadWholeFile(const std::string& path) {
  const std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return std::move(out).str();
}

// The serving certificate: fixed, or the files of a directory re-read when they change (a Secret
// volume swaps a symlink, so stat() follows it and sees new inodes and times).
class CertificateStore {
 public:
  CertificateStore(const WebhookServerOptions& options) : options_(options) {}

  std::expected<void, std::string> Load() {
    if (options_.cert_dir.empty()) {
      if (!options_.certificate) return std::unexpected("no serving certificate");
      auto ctx = NewContext(*options_.certificate);
      if (!ctx) return std::unexpected(ctx.error());
      ctx_ = *ctx;
      serial_ = SerialNumber(options_.certificate->certificate);
      return {};
    }
    return Reload(Identity());
  }

  // Re-reads the files when they changed since the last look.
  void Refresh() {
    const std::lock_guard lock(mu_);
    if (options_.cert_dir.empty()) return;
    if (auto id = Identity(); id != identity_) {
      if (auto reloaded = Reload(id); !reloaded) {
        options_.logger.With("error", reloaded.error())
            .Warn("the new serving certificate does not load; the previous one serves");
      }
    }
  }

  // The context for a new connection. Open connections keep the certificate they started with.
  std::shared_ptr<ssl::context> Current() const {
    const std::lock_guard lock(mu_);
    return ctx_;
  }

  std::string serial() const {
    const std::lock_guard lock(mu_);
    return serial_;
  }

 private:
  using FileIds = std::vector<std::tuple<long, long, long, long>>;

  std::string Path(const char* file) const { return options_.cert_dir + "/" + file; }

  FileIds Identity() const {
    FileIds ids;
    for (const char* file : {"tls.crt", "tls.key"}) {
      struct stat st {};
      if (stat(Path(file).c_str(), &st) == 0) {
        ids.emplace_back(static_cast<long>(st.st_ino), static_cast<long>(st.st_size),
                         static_cast<long>(st.st_mtim.tv_sec), st.st_mtim.tv_nsec);
      } else {
        ids.emplace_back(-1, -1, -1, -1);
      }
    }
    return ids;
  }

  std::expected<void, std::string> Reload(FileIds id) {
    identity_ = std::move(id);  // a broken pair is not retried until the files change again
    const auto certificate = ReadWholeFile(Path("tls.crt"));
    const auto key = ReadWholeFile(Path("tls.key"));
    if (!certificate || !key)
      return std::unexpected("cannot read tls.crt and tls.key in " + options_.cert_dir);
    auto ctx = NewContext({*certificate, *key});
    if (!ctx) return std::unexpected(options_.cert_dir + ": " + ctx.error());
    ctx_ = *ctx;
    serial_ = SerialNumber(*certificate);
    options_.logger.With("dir", options_.cert_dir)
        .With("serial", serial_)
        .Info("serving certificate loaded");
    return {};
  }

  const WebhookServerOptions& options_;
  mutable std::mutex mu_;
  std::shared_ptr<ssl::context> ctx_;
  std::string serial_;
  FileIds identity_;
};

struct Metrics {
  explicit Metrics(controller::Registry* registry) {
    if (registry == nullptr) return;
    requests = &registry->AddCounter("controller_runtime_webhook_requests_total",
                                     "Admission requests served, by webhook path and HTTP code.",
                                     {"webhook", "code"});
    latency = &registry->AddHistogram(
        "controller_runtime_webhook_latency_seconds", "Time to answer an admission request.",
        {"webhook"}, {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5});
  }
  void Observe(std::string_view path, unsigned code, double seconds) const {
    if (requests == nullptr) return;
    if (!EndpointFor(path)) path = "other";  // unknown paths must not mint label values
    requests->WithLabels({path, std::to_string(code)}).Inc();
    latency->WithLabels({path}).Observe(seconds);
  }
  controller::CounterFamily* requests = nullptr;
  controller::HistogramFamily* latency = nullptr;
};

// What all connections hold at once: open connections and reserved request bytes.
struct Limits {
  std::atomic<std::size_t> connections{0};
  std::atomic<std::size_t> bytes{0};

  // Reserves `n` bytes unless that would pass `max`.
  bool Reserve(std::size_t n, std::size_t max) {
    std::size_t held = bytes.load();
    do {
      if (held + n > max) return false;
    } while (!bytes.compare_exchange_weak(held, held + n));
    return true;
  }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<ssl::context> ctx,
          const WebhookServerOptions& options, const Metrics& metrics, Limits& limits)
      : ctx_(std::move(ctx)),
        stream_(std::move(socket), *ctx_),
        options_(options),
        metrics_(metrics),
        limits_(limits) {
    limits_.connections.fetch_add(1);
  }
  ~Session() {
    Release();
    limits_.connections.fetch_sub(1);
  }

  void Start() {
    beast::get_lowest_layer(stream_).expires_after(options_.request_timeout);
    stream_.async_handshake(ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) {
                              if (!ec) self->Read();
                            });
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(options_.max_request_bytes);
    parser_->header_limit(16 * 1024);
    // Idle between requests; once the header has come, the body has request_timeout.
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnHeader(ec); });
  }

  // A read's error ends the request: a body past the limit (the parser compares Content-Length
  // with it, or counts a chunked body) is answered 413; a clean end of stream is closed; other
  // errors (closed, timed out, not HTTP) drop the session. False when there was none.
  bool Ended(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      Release();
      RefuseTooLarge();
      return true;
    }
    if (!ec) return false;
    if (ec == http::error::end_of_stream) Close();
    return true;
  }

  void OnHeader(beast::error_code ec) {
    if (Ended(ec)) return;
    // A body without a length may grow to the limit: it counts as that large. (The header the
    // parser has accepted holds a well-formed number; read from it, not from the parser's
    // content_length(), which GCC 12's flow analysis takes for uninitialised under ASan.)
    std::size_t size = options_.max_request_bytes;
    if (const auto length = parser().get()[http::field::content_length]; !length.empty()) {
      std::from_chars(length.data(), length.data() + length.size(), size);
    }
    if (size > options_.max_request_bytes) {
      RefuseTooLarge();
      return;
    }
    // Small requests (every review of an ordinary object) need no reservation, so large ones
    // holding the whole budget never keep them out; the connection cap bounds what they hold.
    if (size > options_.small_request_bytes) {
      if (!limits_.Reserve(size,
                           std::max(options_.max_bytes_in_flight, options_.max_request_bytes))) {
        Refuse(503, "too many large request bodies in flight; retry\n");
        return;
      }
      reserved_ = size;
    }
    beast::get_lowest_layer(stream_).expires_after(options_.request_timeout);
    http::async_read(stream_, buffer_, parser(),
                     [self = shared_from_this()](beast::error_code read_ec, std::size_t) {
                       self->OnRead(read_ec);
                     });
  }

  // Answers before the body was read, then reads and discards what the client still sends.
  void Refuse(unsigned status, std::string message) {
    const std::string_view target(parser().get().target().data(), parser().get().target().size());
    metrics_.Observe(target.substr(0, target.find('?')), status, 0);
    drain_after_write_ = true;
    Write({status, std::move(message)}, 11, false);
  }

  void RefuseTooLarge() {
    Refuse(413,
           "the request is larger than " + std::to_string(options_.max_request_bytes) + " bytes\n");
  }

  void Release() {
    if (reserved_ == 0) return;
    limits_.bytes.fetch_sub(reserved_);
    reserved_ = 0;
  }

  void OnRead(beast::error_code ec) {
    if (Ended(ec)) return;
    const auto start = Clock::now();
    const auto& request = parser().get();
    const std::string_view target(request.target().data(), request.target().size());
    HttpAnswer answer = Answer(
        std::string_view(request.method_string().data(), request.method_string().size()), target,
        std::string_view(request[http::field::content_type].data(),
                         request[http::field::content_type].size()),
        request.body(), options_.list_model_versions);
    metrics_.Observe(target.substr(0, target.find('?')), answer.status,
                     std::chrono::duration<double>(Clock::now() - start).count());
    Write(std::move(answer), request.version(), request.keep_alive());
  }

  void Write(HttpAnswer answer, unsigned version, bool keep_alive) {
    response_ = {static_cast<http::status>(answer.status), version};
    response_.set(http::field::content_type,
                  answer.status == 200 ? "application/json" : "text/plain; charset=utf-8");
    response_.keep_alive(keep_alive);
    if (answer.status == 503) response_.set(http::field::retry_after, "1");
    response_.body() = std::move(answer.body);
    response_.prepare_payload();
    beast::get_lowest_layer(stream_).expires_after(options_.request_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code ec, std::size_t) {
                        self->Release();
                        self->parser_.reset();  // the request's body goes with its reservation
                        // Beast reports end_of_stream for a response that closes the connection:
                        // it was written all the same.
                        if (ec && ec != http::error::end_of_stream) return;
                        if (self->response_.keep_alive()) {
                          self->Read();
                        } else if (self->drain_after_write_) {
                          self->Drain(0);
                        } else {
                          self->Close();
                        }
                      });
  }

  // After refusing a request before reading its body: read and discard what the client still
  // sends (bounded in time and bytes), so closing does not reset the connection under the answer
  // before the client has read it.
  void Drain(std::size_t drained) {
    constexpr std::size_t kMaxDrain = 64u << 20;
    if (drained == 0) beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds{2});
    discard_.resize(std::size_t{64} * 1024);
    stream_.async_read_some(asio::buffer(discard_), [self = shared_from_this(), drained](
                                                        beast::error_code ec, std::size_t n) {
      if (ec || drained + n > kMaxDrain) {
        self->Close();
        return;
      }
      self->Drain(drained + n);
    });
  }

  void Close() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds{2});
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) {});
  }

  std::shared_ptr<ssl::context> ctx_;  // outlives stream_, which holds a reference to it
  beast::ssl_stream<beast::tcp_stream> stream_;
  const WebhookServerOptions& options_;
  const Metrics& metrics_;
  Limits& limits_;
  std::size_t reserved_ = 0;  // of limits_.bytes, until the answer is written
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // The request being read: emplaced by the read of its header, before any handler that asks.
  http::request_parser<http::string_body>& parser() {
    return *parser_;  // NOLINT(bugprone-unchecked-optional-access): see above
  }
  http::response<http::string_body> response_;
  bool drain_after_write_ = false;
  std::vector<char> discard_;
};

}  // namespace

struct WebhookServer::Impl {
  explicit Impl(WebhookServerOptions o)
      : options(std::move(o)), certificates(options), metrics(options.metrics) {}

  void Accept() {
    // Each connection gets a strand: its handlers (and its stream's timer) never run concurrently
    // although several threads run the io_context.
    acceptor.async_accept(asio::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (ec) {
        // Out of file descriptors, say: the listener stays readable, so retrying at once would
        // spin. Try again shortly.
        accept_retry.expires_after(std::chrono::milliseconds{100});
        accept_retry.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec) Accept();
        });
        return;
      }
      if (limits.connections.load() >= options.max_connections) {
        beast::error_code ignored;
        static_cast<void>(socket.close(ignored));  // over the limit: the client sees it closed
      } else {
        std::make_shared<Session>(std::move(socket), certificates.Current(), options, metrics,
                                  limits)
            ->Start();
      }
      Accept();
    });
  }

  // Looks at the certificate files every reload_interval, connections or not: the API server
  // keeps its connections open, so a check per new connection could wait indefinitely.
  void WatchCertificates() {
    if (options.cert_dir.empty()) return;
    reload_timer.expires_after(options.reload_interval);
    reload_timer.async_wait([this](beast::error_code ec) {
      if (ec) return;
      certificates.Refresh();
      WatchCertificates();
    });
  }

  WebhookServerOptions options;
  CertificateStore certificates;
  Metrics metrics;
  Limits limits;  // outlives every Session: the io threads are joined before Impl goes
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  asio::steady_timer reload_timer{ioc};
  asio::steady_timer accept_retry{ioc};
  std::uint16_t port = 0;
  std::vector<std::thread> threads;
};

WebhookServer::WebhookServer(WebhookServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

// Stop() throws only if join() fails on a thread it started, which leaves nothing sensible to do
// but terminate.
// NOLINTNEXTLINE(bugprone-exception-escape)
WebhookServer::~WebhookServer() { Stop(); }

std::expected<void, std::string> WebhookServer::Start() {
  if (auto loaded = impl_->certificates.Load(); !loaded) return loaded;
  const auto port = kube::Listen(impl_->acceptor, impl_->options.address, impl_->options.port);
  if (!port) return std::unexpected(port.error());
  impl_->port = *port;
  impl_->Accept();
  impl_->WatchCertificates();
  for (int i = 0; i < std::max(1, impl_->options.threads); ++i) {
    impl_->threads.emplace_back([this] { impl_->ioc.run(); });
  }
  impl_->options.logger.With("port", impl_->port)
      .With("serial", serving_serial())
      .Info("serving admission webhooks");
  return {};
}

std::uint16_t WebhookServer::port() const { return impl_->port; }

std::string WebhookServer::serving_serial() const { return impl_->certificates.serial(); }

void WebhookServer::Stop() {
  if (impl_->threads.empty()) return;
  impl_->ioc.stop();  // thread-safe; the sockets are touched only once no io thread runs
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  beast::error_code ignored;
  static_cast<void>(impl_->acceptor.close(ignored));
  impl_->reload_timer.cancel();
}

}  // namespace millrace::webhooks
