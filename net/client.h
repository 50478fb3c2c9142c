// The PointLedger client library: what the CLI, the load generator and
// integrators use to talk to pointledgerd (SPEC §6).
//
// A Client owns one TCP (optionally TLS) connection. It is not thread-safe:
// use one Client per thread. Requests may be pipelined: Send() several, then
// Receive() their answers, which come back in request order.
#ifndef POINTLEDGER_NET_CLIENT_H_
#define POINTLEDGER_NET_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ledger/ledger.h"

namespace pointledger::net {

struct ClientOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 7600;
  std::string api_key;
  std::string client_name = "pointledger";
  bool tls = false;
  std::string tls_ca_file;   // empty: system default roots
  // Bounds a connect, a write, and the wait for each answer (the whole
  // frame, however slowly it trickles in). Reports (TrialBalance, Audit,
  // LiabilityReport) can take minutes on a big ledger: give them a Client
  // with a longer timeout.
  int timeout_ms = 30'000;
  // Connection errors are retried this many times on a fresh connection,
  // re-sending the unanswered batches with the same ids (safe: exactly once);
  // while waiting for one answer, at most this many reconnects in all. A
  // connect, TLS handshake or answer that times out is not retried.
  int reconnect_attempts = 3;
};

// Connection-level errors (SPEC §5) map to Status codes:
//   unauthorized        -> Unauthenticated
//   malformed_request   -> InvalidArgument
//   request_too_large   -> OutOfRange
//   batch_too_large     -> OutOfRange
//   unsupported_version -> FailedPrecondition
//   server_busy         -> Unavailable
//   socket errors, timeouts, refused connections -> Unavailable / DeadlineExceeded
// The message names the SPEC word (e.g. "server_busy: map full").
//
// When a call fails with a connection error or a timeout:
// - Post, Send and every read abandon their own request: it is not resent
//   and its answer never turns up in Receive(). A batch so abandoned may or
//   may not have been applied; post it again with the same ids to know (a
//   duplicate answers with the original result).
// - Receive keeps the request it waited for in flight: the next call
//   reconnects, resends it with the other unanswered batches, and a
//   Receive then returns its answer. A batch the server *answered* with a
//   refusal (server_busy, malformed_request ...) is not an error of
//   Receive: it is that batch's BatchAnswer, with `status` set; its request
//   is done. (Until session 30 both came back as errors, and a caller could
//   not tell whether the request was still in flight: `post --file`
//   printed the next batch's results under a refused batch's lines.)
// - Answers already read when the connection is lost are kept, not resent
//   for: a resent batch would answer `duplicate` for this client's own
//   first attempt.
class Client {
 public:
  // Connects and says Hello. Unauthenticated if the key is refused.
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  virtual ~Client() = default;

  // One batch, waiting for its results (one per transaction, in order).
  virtual absl::StatusOr<std::vector<ledger::Result>> Post(
      std::span<const ledger::Transaction> batch) = 0;

  // Pipelining: Send returns the request id; Receive returns the next
  // answer in request order.
  virtual absl::StatusOr<uint64_t> Send(std::span<const ledger::Transaction> batch) = 0;
  struct BatchAnswer {
    uint64_t request_id = 0;
    // Not OK: the server refused the batch whole (nothing of it applied;
    // server_busy: retry later with the same ids), or answered it with the
    // wrong number of results (DataLoss); `results` is then empty.
    absl::Status status;
    std::vector<ledger::Result> results;
  };
  virtual absl::StatusOr<BatchAnswer> Receive() = 0;

  // Reads (scope `read`). nullopt when the program/member/id does not exist.
  virtual absl::StatusOr<std::optional<ledger::Balance>> GetBalance(const std::string& program,
                                                                    const std::string& member) = 0;
  virtual absl::StatusOr<std::vector<ledger::HistoryEntry>> GetHistory(
      const std::string& program, const std::string& member, uint32_t limit,
      uint64_t before_seq) = 0;
  virtual absl::StatusOr<std::optional<ledger::TxRecord>> GetTransaction(
      const std::string& program, const ledger::Id& id) = 0;
  virtual absl::StatusOr<ledger::ChainHead> GetHead() = 0;
  // Due expiries and hold timeouts (as Ledger::CollectDue), for `pointledger expire`.
  virtual absl::StatusOr<std::vector<ledger::Transaction>> CollectDue(int64_t as_of_ns,
                                                                      uint32_t limit) = 0;
  virtual absl::StatusOr<ledger::Statement> SettlementStatement(const std::string& program,
                                                                const std::string& partner,
                                                                int64_t from_ns,
                                                                int64_t to_ns) = 0;

  // ---- Extensions (added by the networking layer; the above is stable). ----

  // The server's counters since it started (scope `read`). commits < batches
  // shows that group commit shares fsyncs between batches.
  struct ServerStats {
    uint64_t commits = 0;
    uint64_t batches = 0;
    uint64_t transactions = 0;
    uint64_t busy_batches = 0;
    uint64_t connections_open = 0;
    uint64_t connections_accepted = 0;
    uint64_t uptime_s = 0;
    std::vector<uint64_t> results_by_code;  // index: ledger::Code; first-time results
    uint64_t duplicates = 0;                // replays answered from the record
    uint64_t reports_running = 0;           // reports being computed now
    uint64_t connections_refused = 0;       // over connections_max, since start
    uint64_t head_seq = 0;                  // the last transaction's seq
    uint64_t checkpoint_seq = 0;            // how far state/ holds the state
    uint64_t commit_p50_us = 0, commit_p99_us = 0, commit_max_us = 0;
    uint64_t group_p50 = 0, group_p99 = 0, group_max = 0;
    uint64_t log_map_used_bytes = 0, log_map_size_bytes = 0;
    uint64_t state_map_used_bytes = 0, state_map_size_bytes = 0;
  };
  virtual absl::StatusOr<ServerStats> GetStats() = 0;

  // Finance reports (docs/finance.md), as the Ledger methods of the same
  // names. Records with an empty program need a key for every program, as
  // do TrialBalance and Audit.
  virtual absl::StatusOr<ledger::RecordsPage> GetRecords(uint64_t from_seq, uint32_t limit,
                                                         const std::string& program) = 0;
  virtual absl::StatusOr<ledger::Liability> LiabilityReport(const std::string& program,
                                                            int64_t from_ns, int64_t to_ns,
                                                            int64_t as_of_ns) = 0;
  // TrialBalance answers with discrepancies only (no head).
  virtual absl::StatusOr<ledger::AuditReport> TrialBalance() = 0;
  virtual absl::StatusOr<ledger::AuditReport> Audit() = 0;

  // From the server's answer to Hello.
  virtual const std::string& principal() const = 0;
  // The largest batch the server takes (split bigger inputs to this size).
  virtual uint32_t batch_transactions_max() const = 0;
  // The largest request frame the server takes, in bytes (ditto).
  virtual uint32_t frame_bytes_max() const = 0;
  // Requests sent and not yet returned by Receive().
  virtual size_t in_flight() const = 0;
};

// Parses "HOST:PORT" ("[::1]:7600" for IPv6) into options->host and ->port.
// InvalidArgument naming the text otherwise.
absl::Status ParseServerAddress(std::string_view text, ClientOptions* options);

}  // namespace pointledger::net

#endif  // POINTLEDGER_NET_CLIENT_H_
