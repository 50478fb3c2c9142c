// Listening sockets, shared by the server and its metrics endpoint so that
// both bind, report and fail the same way.
#ifndef POINTLEDGER_NET_LISTEN_H_
#define POINTLEDGER_NET_LISTEN_H_

#include <string>
#include <string_view>

#include "boost/asio/ip/tcp.hpp"

#include "absl/status/status.h"

namespace pointledger::net {

// Parses `listen` ("HOST:PORT", "[V6]:PORT"), then opens, binds and listens
// on `acceptor`. *bound gets the address bound (port 0 picks one). An error
// names `listen` and, when given, `what` ("metrics_listen").
absl::Status BindAcceptor(boost::asio::ip::tcp::acceptor& acceptor, std::string_view listen,
                          std::string_view what, boost::asio::ip::tcp::endpoint* bound);

// "127.0.0.1:7600" or "[::1]:7600".
std::string EndpointText(const boost::asio::ip::tcp::endpoint& endpoint);

}  // namespace pointledger::net

#endif  // POINTLEDGER_NET_LISTEN_H_
