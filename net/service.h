// The request handler: what the server answers to each request that needs
// no committer (Hello, reads, reports, stats). Runs on the I/O threads;
// every read is its own LMDB read transaction and never waits for the
// committer (SPEC §6).
#ifndef POINTLEDGER_NET_SERVICE_H_
#define POINTLEDGER_NET_SERVICE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#include "flatbuffers/flatbuffers.h"
#include "ledger/ledger.h"
#include "net/committer.h"
#include "net/config.h"
#include "net/wire.h"

namespace pointledger::net {

// Connection counters, shared by the server and every connection.
struct ConnectionCounters {
  std::atomic<uint64_t> open{0};
  // Served (started, not refused at accept) and not yet closed: what
  // connections_max bounds. Refused ones linger up to kLingerMs and are
  // bounded apart (kRefusedConnectionsMax); counting them here kept slots
  // freed by served clients unusable while refusals lingered (session 30).
  std::atomic<uint64_t> served{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> refused{0};  // over connections_max
  std::atomic<uint64_t> reports_running{0};  // on the report thread, or queued for it
};

// Everything `stats` and the metrics endpoint report, at one moment.
struct ServerSnapshot {
  uint64_t uptime_s = 0;
  uint64_t connections_open = 0;
  uint64_t connections_accepted = 0;
  uint64_t connections_refused = 0;  // over connections_max
  uint64_t reports_running = 0;      // Service::IsReport requests not yet answered
  CommitterStats committer;
  ledger::Ledger::MapUsage map;
  uint64_t head_seq = 0;        // the last transaction's seq
  uint64_t checkpoint_seq = 0;  // ledger::Ledger::CheckpointSeq
};

class Service {
 public:
  // Reports that scan the whole ledger or a program's whole state
  // (statement, liability, trial balance, audit): seconds to minutes on a
  // big ledger. The server runs them on a thread of their own so that they
  // never hold up an I/O thread's other connections.
  static bool IsReport(wire::RequestBody type);

  // All pointers must outlive the Service. Thread-safe after construction.
  Service(ledger::Ledger* ledger, const ServerConfig* config, const Committer* committer,
          const ConnectionCounters* counters);

  const ServerConfig& config() const { return *config_; }

  // Checks a Hello. On success returns the key and builds HelloOk into fbb;
  // otherwise returns nullptr and builds the refusal (unauthorized or
  // unsupported_version); *why says why for the log. The key stays valid
  // as long as the pointer is held, whatever ReplaceKeys does meanwhile.
  std::shared_ptr<const ApiKey> Hello(const wire::Hello& hello, uint64_t request_id,
                                      flatbuffers::FlatBufferBuilder* fbb, std::string* why) const;

  // The keys from now on (SIGHUP: docs/operations.md, "API keys"). A
  // connection notices at its next request (keys_generation changed) and
  // looks its key up again with CurrentKey: its new scopes and programs
  // apply from then on; a key no longer there closes the connection.
  // Requests accepted before keep the key they were accepted with.
  void ReplaceKeys(std::vector<ApiKey> keys);
  // Changes at each ReplaceKeys: one load per request to notice.
  uint64_t keys_generation() const { return keys_generation_.load(std::memory_order_acquire); }
  // The current key with this hash, or nullptr if there is none now.
  std::shared_ptr<const ApiKey> CurrentKey(const Sha256Digest& sha256) const;

  // Answers a read request (anything but Hello and Batch) into fbb.
  // Permission problems are a `permission_denied` code in the answer; a
  // storage failure is answered server_busy and logged.
  void Read(const wire::Request& request, const ApiKey& key,
            flatbuffers::FlatBufferBuilder* fbb) const;

  // The counters now. Errors: storage (map usage cannot be read).
  absl::StatusOr<ServerSnapshot> Snapshot() const;

 private:
  using Offset = flatbuffers::Offset<void>;
  // Each returns the body; *type is set to its union tag.
  absl::StatusOr<Offset> Balance(const wire::BalanceQuery& q, const ApiKey& key,
                                 flatbuffers::FlatBufferBuilder* fbb) const;
  absl::StatusOr<Offset> History(const wire::HistoryQuery& q, const ApiKey& key,
                                 flatbuffers::FlatBufferBuilder* fbb) const;
  absl::StatusOr<Offset> Tx(const wire::TxQuery& q, const ApiKey& key,
                            flatbuffers::FlatBufferBuilder* fbb) const;
  absl::StatusOr<Offset> Head(const ApiKey& key, flatbuffers::FlatBufferBuilder* fbb) const;
  absl::StatusOr<Offset> Statement(const wire::StatementQuery& q, const ApiKey& key,
                                   flatbuffers::FlatBufferBuilder* fbb) const;
  absl::StatusOr<Offset> CollectDue(const wire::CollectDueQuery& q, const ApiKey& key,
                                    flatbuffers::FlatBufferBuilder* fbb) const;
  absl::StatusOr<Offset> Stats(const ApiKey& key, flatbuffers::FlatBufferBuilder* fbb) const;
  absl::StatusOr<Offset> Records(const wire::RecordsQuery& q, const ApiKey& key,
                                 flatbuffers::FlatBufferBuilder* fbb) const;
  absl::StatusOr<Offset> Liability(const wire::LiabilityQuery& q, const ApiKey& key,
                                   flatbuffers::FlatBufferBuilder* fbb) const;
  // TrialBalanceQuery, or AuditQuery when `audit`.
  absl::StatusOr<Offset> Check(bool audit, const ApiKey& key,
                               flatbuffers::FlatBufferBuilder* fbb) const;

  // ok, permission_denied or program_not_found for a read of `program`.
  absl::StatusOr<wire::Code> CheckProgramRead(const ApiKey& key,
                                              const flatbuffers::String* program) const;
  // Whether the key may read `program`, whether it exists or not.
  bool MayRead(const ApiKey& key, const flatbuffers::String* program) const;

  ledger::Ledger* const ledger_;
  const ServerConfig* const config_;
  const Committer* const committer_;
  const ConnectionCounters* const counters_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

 private:
  std::shared_ptr<const std::vector<ApiKey>> Keys() const;

  mutable absl::Mutex keys_mu_;
  // Replaced whole, never changed: a key handed out aliases its table.
  std::shared_ptr<const std::vector<ApiKey>> keys_ ABSL_GUARDED_BY(keys_mu_);
  std::atomic<uint64_t> keys_generation_{0};
};

}  // namespace pointledger::net

#endif  // POINTLEDGER_NET_SERVICE_H_
