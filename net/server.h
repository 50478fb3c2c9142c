// pointledgerd's server (SPEC §6): an accept loop, N I/O threads (one
// io_context each; a connection lives on one thread), the committer thread,
// the sweep (expiries and hold timeouts, every second) and a graceful stop
// on SIGINT/SIGTERM; with metrics_listen, the Prometheus endpoint
// (net/metrics.h) on the first I/O thread.
#ifndef POINTLEDGER_NET_SERVER_H_
#define POINTLEDGER_NET_SERVER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ledger/ledger.h"
#include "net/config.h"

namespace pointledger::net {

class Server {
 public:
  // Where SIGHUP takes the keys from (pointledgerd: the config file again,
  // or DIR/admin.key); an error leaves the keys as they are.
  using KeyLoader = std::function<absl::StatusOr<std::vector<ApiKey>>()>;

  // Binds config.listen (port 0 picks a free port) and starts the I/O
  // threads, the committer and the sweep; connections are accepted from
  // the moment this returns. `ledger` and `config` must outlive the
  // Server. With handle_signals, SIGINT and SIGTERM call RequestStop(),
  // and, given load_keys, SIGHUP replaces the keys with load_keys()'s
  // (the caller decides what SIGHUP does outside the Server's lifetime).
  // Errors: InvalidArgument (listen address, TLS files), Unavailable (the
  // address cannot be bound).
  static absl::StatusOr<std::unique_ptr<Server>> Start(ledger::Ledger* ledger,
                                                       const ServerConfig* config,
                                                       bool handle_signals,
                                                       KeyLoader load_keys = nullptr);
  virtual ~Server() = default;

  // Whether config.listen can be bound now and the TLS files (if any)
  // load: pointledgerd asks before it opens (and so creates) the data
  // directory, so that a start on a port in use or with a bad TLS file
  // leaves nothing behind. The port may still be taken before Start.
  static absl::Status ProbeListen(const ServerConfig& config);

  // The address actually bound, e.g. "127.0.0.1:41234".
  virtual std::string bound_address() const = 0;
  virtual uint16_t port() const = 0;
  // The metrics endpoint's address (config.metrics_listen), or "" if none.
  virtual std::string metrics_address() const = 0;

  // Blocks until RequestStop() (or a signal), then stops: no new
  // connections, every request already read is answered (batches are
  // committed first), connections are closed, the threads end. After Run
  // returns the ledger has no writer and may be closed.
  virtual void Run() = 0;
  // Thread-safe; returns at once.
  virtual void RequestStop() = 0;
  // The API keys from now on, in place of config.keys (Service::ReplaceKeys:
  // each connection's next request sees them). Thread-safe.
  virtual void ReplaceKeys(std::vector<ApiKey> keys) = 0;
};

}  // namespace pointledger::net

#endif  // POINTLEDGER_NET_SERVER_H_
