#include "kubeclient/transport.h"

#include <poll.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <utility>

#include <boost/algorithm/string/case_conv.hpp>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include "kubeclient/beast.h"
#include "kubeclient/util.h"

#ifndef MILLRACE_VERSION
#define MILLRACE_VERSION "dev"
#endif

namespace millrace::kube::internal {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr uint64_t kMaxErrorBody = 64 * 1024;
constexpr uint32_t kHeaderLimit = 64 * 1024;
constexpr size_t kMaxIdleConnections = 25;                  // as client-go's MaxIdleConnsPerHost
constexpr std::chrono::seconds kIdleConnectionTimeout{90};  // as Go's http.Transport
constexpr size_t kStreamChunk = 4 * 1024;                   // on each watch thread's stack

bool IsRetriableCode(int code) { return code == 500 || code == 502 || code == 503 || code == 504; }

std::string Lower(std::string_view s) { return boost::algorithm::to_lower_copy(std::string(s)); }

std::string_view Sv(beast::string_view s) { return {s.data(), s.size()}; }

std::string PercentDecode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    const auto hex = [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) != 0
                 ? (c <= '9' ? c - '0' : (std::tolower(static_cast<unsigned char>(c)) - 'a' + 10))
                 : -1;
    };
    if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
      out += static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2]));
      i += 2;
    } else {
      out += in[i];
    }
  }
  return out;
}

long ParseRetryAfter(std::string_view value) {
  long seconds = 0;
  bool digits = false;
  for (const char c : value) {
    if (c >= '0' && c <= '9') {
      seconds = seconds * 10 + (c - '0');
      digits = true;
    } else if (digits || c != ' ') {
      break;
    }
  }
  return digits ? seconds : -1;
}

std::chrono::milliseconds RetryDelay(long retry_after_seconds, int attempt) {
  if (retry_after_seconds >= 0) {
    return std::chrono::milliseconds(std::min(retry_after_seconds, 30L) * 1000);
  }
  return RetryBackoff(attempt);
}

// A gzip (or zlib) body, inflated.
Result<std::string> Inflate(std::string_view in) {
  z_stream z{};
  if (inflateInit2(&z, 32 + MAX_WBITS) != Z_OK) {
    return std::unexpected(MakeError(ErrorKind::kTransport, "gzip: inflateInit2 failed"));
  }
  std::string out(std::max<size_t>(in.size() * 4, 4096), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  while (rc == Z_OK) {
    if (z.total_out == out.size()) out.resize(out.size() * 2);
    z.next_out = reinterpret_cast<Bytef*>(out.data() + z.total_out);
    z.avail_out = static_cast<uInt>(out.size() - z.total_out);
    rc = inflate(&z, Z_NO_FLUSH);
  }
  out.resize(z.total_out);
  inflateEnd(&z);
  if (rc != Z_STREAM_END) {
    return std::unexpected(MakeError(ErrorKind::kTransport, "gzip: the body does not inflate"));
  }
  return out;
}

// Errors of a kept-alive connection the server closed while it sat in the pool.
bool IsStale(const beast::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == asio::ssl::error::stream_truncated ||
         ec == http::error::end_of_stream;
}

void SetKeepAlive(tcp::socket& socket) {
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  socket.set_option(asio::socket_base::keep_alive(true), ignored);
  // A peer that vanished without a FIN is found within a minute: 30 s idle, then 3 probes 10 s
  // apart.
  const int idle = 30, interval = 10, count = 3;
  const int fd = socket.native_handle();
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

}  // namespace

std::string HttpEndpoint::authority() const {
  const std::string h = host.find(':') == std::string::npos ? host : "[" + host + "]";
  return h + ":" + port;
}

Result<HttpEndpoint> ParseHttpUrl(std::string_view url, std::string_view what) {
  const auto bad = [&](std::string_view why) -> Result<HttpEndpoint> {
    return std::unexpected(
        MakeError(ErrorKind::kConfig,
                  std::string(what) + " \"" + std::string(url) + "\": " + std::string(why)));
  };
  HttpEndpoint e;
  std::string_view rest = url;
  const std::string scheme = Lower(url.substr(0, url.find("://")));
  if (scheme == "https") {
    e.tls = true;
  } else if (scheme == "http") {
    e.tls = false;
  } else {
    return bad("the scheme must be https:// or http://");
  }
  rest.remove_prefix(scheme.size() + 3);
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  std::string_view path = rest.substr(authority.size());
  path = path.substr(0, path.find_first_of("?#"));
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  e.path = std::string(path);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    e.userinfo = PercentDecode(authority.substr(0, at));
    authority.remove_prefix(at + 1);
  }
  std::string_view port;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("an IPv6 address lacks its ']'");
    e.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty() && !after.starts_with(':')) return bad("junk after the IPv6 address");
    port = after.empty() ? after : after.substr(1);
  } else {
    const auto colon = authority.find(':');
    e.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (e.host.empty()) return bad("no host");
  if (!port.empty() && (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) {
                          return c >= '0' && c <= '9';
                        }))) {
    return bad("the port is not a number");
  }
  e.port = port.empty() ? (e.tls ? "443" : "80") : std::string(port);
  return e;
}

bool NoProxyMatches(std::string_view no_proxy, std::string_view host) {
  const std::string h = Lower(host);
  beast::error_code not_ip;
  const asio::ip::address address = asio::ip::make_address(h, not_ip);
  while (!no_proxy.empty()) {
    const auto comma = no_proxy.find(',');
    std::string_view entry = no_proxy.substr(0, comma);
    no_proxy.remove_prefix(comma == std::string_view::npos ? no_proxy.size() : comma + 1);
    while (!entry.empty() && entry.front() == ' ') entry.remove_prefix(1);
    while (!entry.empty() && entry.back() == ' ') entry.remove_suffix(1);
    if (entry.empty()) continue;
    if (entry == "*") return true;
    const std::string e = Lower(entry);
    if (e.find('/') != std::string::npos) {  // CIDR
      if (not_ip) continue;
      beast::error_code bad;
      if (address.is_v4()) {
        const auto net = asio::ip::make_network_v4(e, bad);
        if (!bad &&
            (address.to_v4().to_uint() & net.netmask().to_uint()) == net.network().to_uint()) {
          return true;
        }
      } else {
        const auto net = asio::ip::make_network_v6(e, bad);
        const asio::ip::network_v6 self(address.to_v6(), 128);
        if (!bad && (self == net || self.is_subnet_of(net))) return true;
      }
      continue;
    }
    // "host", "host:port" (the port is ignored), ".domain" or "domain" (both match subdomains).
    std::string name = e.starts_with('[') ? e.substr(1, e.find(']') - 1) : e;
    if (!name.empty() && name.find(':') == name.rfind(':') && name.find(':') != std::string::npos) {
      name.resize(name.find(':'));
    }
    if (name.starts_with('.')) name.erase(0, 1);
    if (h == name ||
        (h.size() > name.size() && h.ends_with(name) && h[h.size() - name.size() - 1] == '.')) {
      return true;
    }
  }
  return false;
}

Result<std::optional<HttpEndpoint>> ProxyFor(const Config& config, const HttpEndpoint& server) {
  std::string url = config.proxy_url;
  std::string what = "proxy-url";
  if (url.empty()) {
    const auto env = [](const char* upper, const char* lower) -> std::string {
      const char* v = std::getenv(upper);
      if (v == nullptr || *v == '\0') v = std::getenv(lower);
      return v == nullptr ? "" : v;
    };
    what = server.tls ? "HTTPS_PROXY" : "HTTP_PROXY";
    url = server.tls ? env("HTTPS_PROXY", "https_proxy") : env("HTTP_PROXY", "http_proxy");
    if (url.empty()) return std::nullopt;
    beast::error_code not_ip;
    const auto address = asio::ip::make_address(server.host, not_ip);
    if (Lower(server.host) == "localhost" || (!not_ip && address.is_loopback())) {
      return std::nullopt;
    }
    if (NoProxyMatches(env("NO_PROXY", "no_proxy"), server.host)) return std::nullopt;
    if (url.find("://") == std::string::npos) url = "http://" + url;
  }
  auto proxy = ParseHttpUrl(url, what);
  if (!proxy) return std::unexpected(proxy.error());
  if (proxy->tls) {
    return std::unexpected(MakeError(
        ErrorKind::kConfig, what + " \"" + url + "\": only http:// proxies are supported"));
  }
  return std::optional<HttpEndpoint>(std::move(*proxy));
}

namespace {

// `limit`, or less when `deadline` comes first (never below a millisecond: an expired timer fails
// the operation with a timeout, as it should).
std::chrono::steady_clock::duration Within(std::chrono::milliseconds limit,
                                           std::chrono::steady_clock::time_point deadline) {
  if (deadline == std::chrono::steady_clock::time_point::max()) return limit;
  const auto left = deadline - std::chrono::steady_clock::now();
  return std::clamp<std::chrono::steady_clock::duration>(left, std::chrono::milliseconds{1}, limit);
}

}  // namespace

std::chrono::milliseconds RetryBackoff(int attempt) {
  const int shift = std::clamp(attempt, 0, 10);
  return std::min(std::chrono::milliseconds(200) * (1 << shift), std::chrono::milliseconds(5000));
}

struct Transport::TlsContext {
  asio::ssl::context ssl{asio::ssl::context::tls_client};
  std::string cert_pem, key_pem;  // the client certificate it presents
};

// One HTTP/1.1 connection with its own io_context, run by the thread that uses it: every
// operation is started and then run to completion on the calling thread, so a blocking call has
// the timeouts of beast::tcp_stream and can be cancelled from another thread with a post().
struct Transport::Connection {
  asio::io_context io;
  std::shared_ptr<TlsContext> tls_context;  // outlives the stream that uses it
  std::optional<beast::tcp_stream> plain{std::in_place, io};
  // beast::ssl_stream writes a buffer sequence (a request's header and body) as one TLS record.
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  std::chrono::steady_clock::time_point idle_since{};

  beast::tcp_stream& tcp() { return tls ? tls->next_layer() : *plain; }

  // Calls `f` with the stream requests go over: TLS, or plain TCP for an http:// server.
  template <class F>
  beast::error_code With(F&& f) {
    return tls ? f(*tls) : f(*plain);
  }

  // Starts one operation with a completion handler and runs the io_context until it completed.
  template <class Start>
  beast::error_code Run(Start&& start) {
    beast::error_code result = asio::error::would_block;
    start([&result](beast::error_code ec, auto&&...) { result = ec; });
    io.restart();
    io.run();
    return result;
  }

  // False when the server closed the connection (or sent something unasked) while it was idle.
  bool Alive() {
    if (buffer.size() != 0) return false;
    pollfd p{tcp().socket().native_handle(), POLLIN, 0};
    return ::poll(&p, 1, 0) == 0;
  }
};

struct Transport::Outcome {
  enum class Failure {
    kNone,
    kConnect,    // no connection: retried for every verb
    kTransient,  // reset, timeout, cut short: retried when idempotent
    kPermanent,  // TLS verification, configuration: not retried
    kFenced,     // the write fence refused it before it was sent: `fenced` is the answer
  };
  int code = 0;  // the HTTP status; 0 when there was no answer
  std::string body;
  long retry_after_seconds = -1;
  Failure failure = Failure::kNone;
  std::string error;       // what failed, when failure != kNone
  bool delivered = false;  // streamed bytes reached on_data
  bool stopped = false;    // by the stop token or by on_data
  Error fenced;            // failure == kFenced

  Outcome& Fail(Failure f, std::string_view step, const beast::error_code& ec) {
    failure = f;
    error = std::string(step) + ": " + ec.message();
    return *this;
  }
};

Transport::Transport(const Config& config, HttpEndpoint server, std::optional<HttpEndpoint> proxy,
                     std::shared_ptr<RequestMetrics> metrics)
    : config_(config),
      server_(std::move(server)),
      proxy_(std::move(proxy)),
      metrics_(metrics ? std::move(metrics) : std::make_shared<RequestMetrics>()),
      auth_(config_),
      limiter_(config_.qps, config_.burst) {
  user_agent_ =
      config_.user_agent.empty() ? std::string("millrace/") + MILLRACE_VERSION : config_.user_agent;
}

Result<std::unique_ptr<Transport>> Transport::Create(const Config& config,
                                                     std::shared_ptr<RequestMetrics> metrics) {
  if (config.server.empty()) {
    return std::unexpected(MakeError(ErrorKind::kConfig, "config has no server URL"));
  }
  auto server = ParseHttpUrl(config.server, "server");
  if (!server) return std::unexpected(server.error());
  auto proxy = ProxyFor(config, *server);
  if (!proxy) return std::unexpected(proxy.error());
  Config c = config;
  const auto fill = [](std::string& data, const std::string& file,
                       std::string_view what) -> Result<void> {
    if (!data.empty() || file.empty()) return {};
    auto read = ReadFile(file, what);
    if (!read) return std::unexpected(read.error());
    data = std::move(*read);
    return {};
  };
  if (auto r = fill(c.ca_data, c.ca_file, "CA file"); !r) return std::unexpected(r.error());
  if (auto r = fill(c.client_cert_data, c.client_cert_file, "client certificate"); !r) {
    return std::unexpected(r.error());
  }
  if (auto r = fill(c.client_key_data, c.client_key_file, "client key"); !r) {
    return std::unexpected(r.error());
  }
  return std::unique_ptr<Transport>(
      new Transport(c, std::move(*server), std::move(*proxy), std::move(metrics)));
}

Transport::~Transport() = default;

Result<std::shared_ptr<Transport::TlsContext>> Transport::TlsContextFor(const Credentials& creds) {
  const std::string& cert = creds.cert_pem.empty() ? config_.client_cert_data : creds.cert_pem;
  const std::string& key = creds.cert_pem.empty() ? config_.client_key_data : creds.key_pem;
  const std::lock_guard lock(mu_);
  if (tls_ && tls_->cert_pem == cert && tls_->key_pem == key) return tls_;
  auto t = std::make_shared<TlsContext>();
  t->cert_pem = cert;
  t->key_pem = key;
  SSL_CTX* native = t->ssl.native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_mode(native, SSL_MODE_RELEASE_BUFFERS);  // idle watches hold no TLS buffers
  const auto failed = [](std::string_view what, const beast::error_code& ec) {
    return std::unexpected(MakeError(ErrorKind::kConfig, std::string(what) + ": " + ec.message()));
  };
  beast::error_code ec;
  if (config_.insecure_skip_tls_verify) {
    t->ssl.set_verify_mode(asio::ssl::verify_none);
  } else {
    t->ssl.set_verify_mode(asio::ssl::verify_peer);
    if (!config_.ca_data.empty()) {
      t->ssl.add_certificate_authority(asio::buffer(config_.ca_data), ec);
      if (ec) return failed("certificate authority", ec);
    } else {
      t->ssl.set_default_verify_paths(ec);
      if (ec) return failed("system certificate authorities", ec);
    }
  }
  if (!cert.empty() && !key.empty()) {
    t->ssl.use_certificate_chain(asio::buffer(cert), ec);
    if (ec) return failed("client certificate", ec);
    t->ssl.use_private_key(asio::buffer(key), asio::ssl::context::pem, ec);
    if (ec) return failed("client key", ec);
  }
  tls_ = t;
  return t;
}

std::unique_ptr<Transport::Connection> Transport::TakeIdle(const std::shared_ptr<TlsContext>& tls) {
  std::vector<std::unique_ptr<Connection>> closing;  // closed outside the lock
  std::unique_ptr<Connection> found;
  {
    const std::lock_guard lock(mu_);
    while (!idle_.empty() && !found) {
      std::unique_ptr<Connection> c = std::move(idle_.back());
      idle_.pop_back();
      if (c->tls_context == tls && c->Alive()) {
        found = std::move(c);
      } else {
        closing.push_back(std::move(c));
      }
    }
    const auto expired = std::chrono::steady_clock::now() - kIdleConnectionTimeout;
    while (!idle_.empty() && idle_.front()->idle_since < expired) {
      closing.push_back(std::move(idle_.front()));
      idle_.erase(idle_.begin());
    }
  }
  return found;
}

void Transport::PutIdle(std::unique_ptr<Connection> connection) {
  connection->idle_since = std::chrono::steady_clock::now();
  connection->buffer.shrink_to_fit();  // empty after a whole answer: an idle connection holds none
  std::unique_ptr<Connection> oldest;  // closed outside the lock
  const std::lock_guard lock(mu_);
  if (idle_.size() >= kMaxIdleConnections) {
    oldest = std::move(idle_.front());
    idle_.erase(idle_.begin());
  }
  idle_.push_back(std::move(connection));
}

bool Transport::SleepBeforeRetry(std::chrono::milliseconds delay, const std::stop_token& stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock lock(mu);
  return !cv.wait_for(lock, stop, delay, [] { return false; }) && !stop.stop_requested();
}

bool Transport::Connect(Connection& c, const std::shared_ptr<TlsContext>& tls,
                        const std::stop_token& stop, Deadline deadline, Outcome& out) {
  using Failure = Outcome::Failure;
  const auto fail = [&out](Failure f, std::string_view step, const beast::error_code& ec) {
    out.Fail(f, step, ec);
    return false;
  };
  c.tls_context = tls;
  const HttpEndpoint& first_hop = proxy_ ? *proxy_ : server_;
  beast::error_code ec;
  tcp::resolver resolver(c.io);
  const auto endpoints = resolver.resolve(first_hop.host, first_hop.port, ec);
  if (ec) return fail(Failure::kTransient, "resolve " + first_hop.host, ec);
  c.plain->expires_after(Within(config_.connect_timeout, deadline));
  ec = c.Run([&](auto h) { c.plain->async_connect(endpoints, h); });
  if (stop.stop_requested()) return false;
  if (ec) {
    return fail(ec == beast::error::timeout ? Failure::kTransient : Failure::kConnect,
                "connect " + first_hop.authority(), ec);
  }
  SetKeepAlive(c.plain->socket());
  metrics_->RecordConnection();
  if (proxy_) {
    http::request<http::empty_body> connect{http::verb::connect, server_.authority(), 11};
    connect.set(http::field::host, server_.authority());
    connect.set(http::field::user_agent, user_agent_);
    if (!proxy_->userinfo.empty()) {
      connect.set(http::field::proxy_authorization, "Basic " + Base64Encode(proxy_->userinfo));
    }
    ec = c.Run([&](auto h) { http::async_write(*c.plain, connect, h); });
    http::response_parser<http::empty_body> answer;
    if (!ec) ec = c.Run([&](auto h) { http::async_read_header(*c.plain, c.buffer, answer, h); });
    if (stop.stop_requested()) return false;
    if (ec) return fail(Failure::kConnect, "proxy CONNECT", ec);
    if (answer.get().result_int() != 200) {
      out.failure = Failure::kPermanent;
      out.error = "the proxy answered CONNECT with " + std::to_string(answer.get().result_int());
      return false;
    }
  }
  if (tls) {
    c.tls.emplace(std::move(*c.plain), tls->ssl);
    c.plain.reset();
    SSL* ssl = c.tls->native_handle();
    beast::error_code not_ip;
    asio::ip::make_address(server_.host, not_ip);
    if (not_ip) {  // SNI, which SSL_set_tlsext_host_name() sets with a C cast
      SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(server_.host.c_str()));
    }
    if (!config_.insecure_skip_tls_verify) {
      if (not_ip) {
        SSL_set1_host(ssl, server_.host.c_str());
      } else {
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), server_.host.c_str());
      }
    }
    ec = c.Run([&](auto h) { c.tls->async_handshake(asio::ssl::stream_base::client, h); });
    if (stop.stop_requested()) return false;
    if (ec) {
      return fail(ec.category() == asio::error::get_ssl_category() ? Failure::kPermanent
                                                                   : Failure::kTransient,
                  "TLS handshake", ec);
    }
  }
  return true;
}

Transport::Outcome Transport::Attempt(const HttpRequest& request, const Credentials& creds,
                                      const std::function<bool(std::string_view)>* on_data,
                                      const std::stop_token& stop, Deadline deadline) {
  using Failure = Outcome::Failure;
  Outcome out;
  std::shared_ptr<TlsContext> tls;
  if (server_.tls) {
    auto made = TlsContextFor(creds);
    if (!made) {
      out.failure = Failure::kPermanent;
      out.error = made.error().message;
      return out;
    }
    tls = std::move(*made);
  }

  http::request<http::string_body> req{http::string_to_verb(request.method),
                                       server_.path + request.path, 11};
  req.set(http::field::host, server_.authority());
  req.set(http::field::user_agent, user_agent_);
  req.set(http::field::accept, "application/json");
  if (!request.content_type.empty()) req.set(http::field::content_type, request.content_type);
  if (!creds.token.empty()) req.set(http::field::authorization, "Bearer " + creds.token);
  if (on_data == nullptr && !config_.disable_compression) {
    req.set(http::field::accept_encoding, "gzip");
  }
  req.body() = request.body;
  req.prepare_payload();

  // A pooled connection the server closed just before it was taken fails before any answer; the
  // request then goes once more on a new connection, as it never reached the server.
  for (bool fresh = false;; fresh = true) {
    std::unique_ptr<Connection> c = fresh ? nullptr : TakeIdle(tls);
    const bool reused = c != nullptr;
    if (!c) c = std::make_unique<Connection>();
    // A stop cancels whatever the connection waits for; a stopped connection is never pooled.
    std::optional<std::stop_callback<std::function<void()>>> cancel_on_stop;
    if (on_data != nullptr) {
      cancel_on_stop.emplace(stop, std::function<void()>([conn = c.get()] {
                               asio::post(conn->io, [conn] { conn->tcp().cancel(); });
                             }));
    }
    const auto stopped = [&] {
      out.stopped = stop.stop_requested();
      return out.stopped;
    };
    const auto release = [&] {  // after a complete answer the connection can carry the next one
      cancel_on_stop.reset();
      if (!stop.stop_requested()) PutIdle(std::move(c));
    };

    if (!reused && !Connect(*c, tls, stop, deadline, out)) {
      stopped();
      return out;
    }
    if (request.method != "GET" && config_.write_fence) {
      if (std::optional<Error> refused = config_.write_fence()) {
        out.failure = Failure::kFenced;
        out.fenced = std::move(*refused);
        return out;  // the connection is dropped: nothing was written on it
      }
    }
    c->tcp().expires_after(Within(config_.timeout, deadline));
    beast::error_code ec =
        c->With([&](auto& s) { return c->Run([&](auto h) { http::async_write(s, req, h); }); });
    if (stopped()) return out;
    if (ec) {
      if (reused && IsStale(ec)) continue;
      return out.Fail(Failure::kTransient, "send", ec);
    }

    if (on_data == nullptr) {
      http::response_parser<http::string_body> p;
      p.header_limit(kHeaderLimit);
      p.body_limit(std::numeric_limits<uint64_t>::max());
      ec = c->With(
          [&](auto& s) { return c->Run([&](auto h) { http::async_read(s, c->buffer, p, h); }); });
      if (ec && reused && !p.got_some() && IsStale(ec)) continue;
      if (p.is_header_done()) {
        out.code = static_cast<int>(p.get().result_int());
        out.retry_after_seconds = ParseRetryAfter(Sv(p.get()[http::field::retry_after]));
      }
      // An error status whose body was cut short still is the server's answer.
      if (ec && out.code < 400) {
        out.code = 0;
        return out.Fail(Failure::kTransient, "receive", ec);
      }
      out.body = std::move(p.get().body());
      if (beast::iequals(p.get()[http::field::content_encoding], "gzip")) {
        auto inflated = Inflate(out.body);
        if (!inflated) {
          out.code = 0;
          out.failure = Failure::kPermanent;
          out.error = inflated.error().message;
          return out;
        }
        out.body = std::move(*inflated);
      }
      if (!ec && p.keep_alive()) release();
      return out;
    }

    http::response_parser<http::buffer_body> p;
    p.header_limit(kHeaderLimit);
    p.body_limit(std::numeric_limits<uint64_t>::max());
    ec = c->With([&](auto& s) {
      return c->Run([&](auto h) { http::async_read_header(s, c->buffer, p, h); });
    });
    if (stopped()) return out;
    if (ec) {
      if (reused && !p.got_some() && IsStale(ec)) continue;
      return out.Fail(Failure::kTransient, "receive", ec);
    }
    out.code = static_cast<int>(p.get().result_int());
    out.retry_after_seconds = ParseRetryAfter(Sv(p.get()[http::field::retry_after]));
    if (out.code != 200) {  // an error answer: keep its Status body
      http::response_parser<http::string_body> error_body{std::move(p)};
      error_body.body_limit(kMaxErrorBody);
      c->With([&](auto& s) {
        return c->Run([&](auto h) { http::async_read(s, c->buffer, error_body, h); });
      });
      out.body = std::move(error_body.get().body());
      return out;
    }
    c->tcp().expires_never();  // a watch lasts as long as the server keeps it open
    std::array<char, kStreamChunk> chunk{};
    while (!p.is_done()) {
      if (stopped()) return out;
      p.get().body().data = chunk.data();
      p.get().body().size = chunk.size();
      ec = c->With([&](auto& s) {
        return c->Run([&](auto h) { http::async_read_some(s, c->buffer, p, h); });
      });
      if (ec == http::error::need_buffer) ec = {};
      const size_t n = chunk.size() - p.get().body().size;
      if (n > 0) {
        out.delivered = true;
        if (!(*on_data)(std::string_view(chunk.data(), n))) {
          out.stopped = true;
          return out;
        }
      }
      if (stopped()) return out;
      if (ec) return out.Fail(Failure::kTransient, "receive", ec);
    }
    if (p.keep_alive()) release();
    return out;
  }
}

Result<void> Transport::Perform(const HttpRequest& request,
                                const std::function<bool(std::string_view)>* on_data,
                                const std::stop_token& stop, std::string& body) {
  using Failure = Outcome::Failure;
  const Deadline deadline = request.timeout > std::chrono::milliseconds::zero()
                                ? std::chrono::steady_clock::now() + request.timeout
                                : Deadline::max();
  // A retry that could not start before the deadline is not made.
  const auto time_for = [&](std::chrono::milliseconds delay) {
    return std::chrono::steady_clock::now() + delay < deadline;
  };
  bool refreshed_credentials = false;
  for (int attempt_no = 0;; ++attempt_no) {
    if (stop.stop_requested()) return {};
    limiter_.Wait();
    auto creds = auth_.Get();
    if (!creds) return std::unexpected(creds.error());
    Outcome out = Attempt(request, *creds, on_data, stop, deadline);
    if (out.failure == Failure::kFenced) return std::unexpected(std::move(out.fenced));
    metrics_->Record(request.verb, out.failure == Failure::kNone || out.delivered ? out.code : 0);
    if (out.stopped) return {};
    const bool can_retry = attempt_no < config_.max_retries && !out.delivered;
    if (out.failure != Failure::kNone) {
      const bool retriable = out.failure == Failure::kConnect ||
                             (out.failure == Failure::kTransient && request.idempotent);
      const auto delay = RetryBackoff(attempt_no);
      if (retriable && can_retry && time_for(delay)) {
        if (!SleepBeforeRetry(delay, stop)) return {};
        continue;
      }
      const std::string url = std::string(server_.tls ? "https://" : "http://") +
                              server_.authority() + server_.path + request.path;
      return std::unexpected(
          MakeError(ErrorKind::kTransport, request.method + " " + url + ": " + out.error));
    }
    if (on_data == nullptr ? out.code >= 200 && out.code < 300 : out.code == 200) {
      body = std::move(out.body);
      return {};
    }
    if (out.code == 401 && !refreshed_credentials && auth_.Invalidate()) {
      refreshed_credentials = true;
      continue;
    }
    const auto delay = RetryDelay(out.retry_after_seconds, attempt_no);
    if (can_retry && (out.code == 429 || (request.idempotent && IsRetriableCode(out.code))) &&
        time_for(delay)) {
      if (!SleepBeforeRetry(delay, stop)) return {};
      continue;
    }
    return std::unexpected(ErrorFromResponse(out.code, out.body));
  }
}

Result<std::string> Transport::Do(const HttpRequest& request) {
  std::string body;
  if (auto done = Perform(request, nullptr, {}, body); !done) return std::unexpected(done.error());
  return body;
}

Result<void> Transport::Stream(const HttpRequest& request,
                               const std::function<bool(std::string_view)>& on_data,
                               std::stop_token stop) {
  std::string unused;
  return Perform(request, &on_data, stop, unused);
}

}  // namespace millrace::kube::internal
