// One client connection (SPEC §6): Hello first, then pipelined requests
// answered in request order. Reads are answered at once on this
// connection's I/O thread, except reports (statement, liability, trial
// balance, audit), which run on the server's report thread; batches go to
// the committer and are answered when their group commit is durable.
//
// Limits (net/limits.h, config [limits]): frame size -> request_too_large
// and close; batch size -> batch_too_large and close; malformed ->
// malformed_request and close; in-flight requests and queued answer bytes ->
// stop reading the socket (backpressure) until answers go out; unsent
// answers past output_bytes_max (the client does not read) -> close; idle
// timeout, which a frame trickled in byte by byte does not reset.
#ifndef POINTLEDGER_NET_CONNECTION_H_
#define POINTLEDGER_NET_CONNECTION_H_

#include <cstdint>
#include <memory>
#include <string>

#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/thread_pool.hpp"
#include "net/committer.h"
#include "net/service.h"

namespace pointledger::net {

class Connection;

// The server side a connection reports to. Thread-safe.
class ConnectionRegistry {
 public:
  virtual ~ConnectionRegistry() = default;
  // Called once, on the connection's thread, when its socket is closed.
  virtual void Remove(uint64_t connection_id) = 0;
};

// What every connection shares; all of it outlives every connection.
struct ConnectionEnv {
  const Service* service = nullptr;
  Committer* committer = nullptr;
  const ServerConfig* config = nullptr;
  ConnectionCounters* counters = nullptr;
  ConnectionRegistry* registry = nullptr;
  // Where reports (Service::IsReport) run; null: on the I/O thread.
  boost::asio::thread_pool* reports = nullptr;
};

class Connection : public JobSink {
 public:
  // Starts reading (after the TLS handshake, if any). Call once.
  virtual void Start() = 0;
  // Instead of Start, for a connection over connections_max: answers
  // server_busy with `message` and closes (a TLS connection just closes).
  virtual void StartRefused(std::string message) = 0;
  // Graceful stop, from any thread: read no more requests, answer those in
  // flight (waiting for the committer if needed), then close.
  virtual void Shutdown() = 0;
  // Immediate close, from any thread.
  virtual void Abort() = 0;
};

// `socket` must be connected and belong to the io_context whose (single)
// thread will run this connection.
std::shared_ptr<Connection> NewConnection(boost::asio::ip::tcp::socket socket, uint64_t id,
                                          const ConnectionEnv* env);
std::shared_ptr<Connection> NewTlsConnection(boost::asio::ip::tcp::socket socket,
                                             boost::asio::ssl::context* tls, uint64_t id,
                                             const ConnectionEnv* env);

}  // namespace pointledger::net

#endif  // POINTLEDGER_NET_CONNECTION_H_
