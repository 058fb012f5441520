#pragma once

// Boost.Asio and Boost.Beast for Millrace's HTTP client (kubeclient/transport.cc) and servers
// (controller/http_server.cc, webhooks/server.cc), included in one place: g++ 12 reports
// -Wnull-dereference inside Asio's inlined scheduler code, which is not ours to fix.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#pragma GCC diagnostic pop

#include <cstdint>
#include <expected>
#include <string>

namespace millrace {

// Millrace's short names for Asio and Beast, for the files that include this header.
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

namespace kube {

// Opens `acceptor` on address:port (port 0: any free port), with SO_REUSEADDR, and listens: the
// start of Millrace's HTTP servers (controller/http_server.cc, webhooks/server.cc). Returns the
// port it listens on. On failure the acceptor is closed and the error names the address and the
// reason.
inline std::expected<std::uint16_t, std::string> Listen(tcp::acceptor& acceptor,
                                                        const std::string& address,
                                                        std::uint16_t port) {
  beast::error_code ec;
  const auto ip = asio::ip::make_address(address, ec);
  if (ec) return std::unexpected("bad address " + address + ": " + ec.message());
  const tcp::endpoint endpoint{ip, port};
  if (!acceptor.open(endpoint.protocol(), ec) &&
      !acceptor.set_option(asio::socket_base::reuse_address(true), ec) &&
      !acceptor.bind(endpoint, ec) &&
      !acceptor.listen(asio::socket_base::max_listen_connections, ec)) {
    const auto bound = acceptor.local_endpoint(ec);
    if (!ec) return bound.port();
  }
  acceptor.close();
  return std::unexpected("listen on " + address + ":" + std::to_string(port) + ": " + ec.message());
}

}  // namespace kube
}  // namespace millrace
