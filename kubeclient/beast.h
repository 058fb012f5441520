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
