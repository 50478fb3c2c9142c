#include "net/listen.h"

#include "ledger/status.h"
#include "net/config.h"

namespace pointledger::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

absl::Status BindAcceptor(tcp::acceptor& acceptor, std::string_view listen,
                          std::string_view what, tcp::endpoint* bound) {
  // Named as the option that gave it (found in review, session 30: a bad
  // --metrics-listen was reported as "listen").
  absl::StatusOr<ListenAddress> parsed = ParseListen(listen);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(StrCat(what.empty() ? "listen" : what, " ", parsed.status().message()));
  }
  const ListenAddress& address = *parsed;
  boost::system::error_code ec;
  const tcp::endpoint endpoint(asio::ip::make_address(address.host, ec), address.port);
  if (!ec) acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) *bound = acceptor.local_endpoint(ec);
  if (ec) {
    return absl::UnavailableError(StrCat("cannot listen on ", listen,
                                         what.empty() ? "" : StrCat(" (", what, ")"), ": ",
                                         ec.message()));
  }
  return absl::OkStatus();
}

std::string EndpointText(const tcp::endpoint& endpoint) {
  const asio::ip::address& a = endpoint.address();
  return a.is_v6() ? StrCat("[", a.to_string(), "]:", endpoint.port())
                   : StrCat(a.to_string(), ":", endpoint.port());
}

}  // namespace pointledger::net
