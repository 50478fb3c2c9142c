// The Prometheus endpoint (`metrics_listen`, docs/operations.md): plain
// HTTP/1.1, `GET /metrics` answers the same figures as the `stats` request
// in the Prometheus text format (version 0.0.4). No authentication: the
// figures name no member, program or key, but bind it to loopback or a
// monitoring network all the same.
#ifndef POINTLEDGER_NET_METRICS_H_
#define POINTLEDGER_NET_METRICS_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "boost/asio/io_context.hpp"
#include "net/service.h"

namespace pointledger::net {

// The exposition text for one snapshot.
std::string FormatMetrics(const ServerSnapshot& s);

class MetricsEndpoint {
 public:
  // Answers each scrape with render(): the body, or an error status (then
  // 503). Called on io's thread.
  using Render = std::function<absl::StatusOr<std::string>()>;

  // Binds `listen` ("HOST:PORT"; port 0 picks one) on `io`, which must
  // outlive the endpoint and be run by one thread. Errors: InvalidArgument
  // (address), Unavailable (cannot bind).
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(boost::asio::io_context* io,
                                                                const std::string& listen,
                                                                Render render);
  virtual ~MetricsEndpoint() = default;

  virtual std::string bound_address() const = 0;
  // Stops accepting. Must run on io's thread. Scrapes in progress finish or
  // time out on their own.
  virtual void Close() = 0;
};

}  // namespace pointledger::net

#endif  // POINTLEDGER_NET_METRICS_H_
