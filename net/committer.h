// The committer: one thread that owns the ledger's write side. It drains a
// bounded queue of batches from every connection (and the sweep), applies
// all that are waiting in one Ledger::Writer (group commit), commits with
// fsync, and only then hands each batch back to its sender (SPEC §4).
//
// Network threads never touch the write transaction: they Submit() and get
// their job back through JobSink::OnCommitted.
#ifndef POINTLEDGER_NET_COMMITTER_H_
#define POINTLEDGER_NET_COMMITTER_H_

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "bench/histogram.h"
#include "ledger/ledger.h"

namespace pointledger::net {

class JobSink;

// One batch on its way through the committer. Owned by its sender while it
// is being filled and after it comes back; reused for the next batch so
// that the vectors keep their capacity (no allocation per transaction).
struct CommitJob {
  // Filled by the sender.
  std::vector<ledger::Transaction> transactions;
  // The sender's key's: held, since the server's keys may be replaced
  // (SIGHUP) while the job waits.
  std::shared_ptr<const ledger::Auth> auth;
  std::shared_ptr<JobSink> sink;       // keeps the sender alive until it is answered
  uint64_t tag = 0;                    // the sender's own bookkeeping (request slot)
  // Filled by the committer: OK and one result per transaction, or the
  // reason the batch was not committed (answered server_busy).
  absl::Status status;
  std::vector<ledger::Result> results;
};

class JobSink {
 public:
  virtual ~JobSink() = default;
  // Called once per submitted job, on the committer thread, after the
  // group's commit returned (or failed). Must not block: hand the job to
  // another thread and return.
  virtual void OnCommitted(std::unique_ptr<CommitJob> job) = 0;
};

struct CommitterStats {
  uint64_t commits = 0;        // successful group commits (LMDB write transactions)
  uint64_t batches = 0;        // batches committed
  uint64_t transactions = 0;   // transactions in committed batches
  uint64_t busy_batches = 0;   // batches answered server_busy (queue full or storage)
  // First-time results by code (index: ledger::Code; [0] is ok); replays
  // answered from the record count under duplicates instead.
  std::array<uint64_t, ledger::kCodeMax + 1> results_by_code{};
  uint64_t duplicates = 0;
  // Per group commit: apply + fsync time, and transactions in it.
  uint64_t commit_p50_us = 0, commit_p99_us = 0, commit_max_us = 0;
  uint64_t group_p50 = 0, group_p99 = 0, group_max = 0;
};

class Committer {
 public:
  // REQUIRES: `ledger` outlives the Committer and is not read-only.
  explicit Committer(ledger::Ledger* ledger);
  ~Committer();  // REQUIRES: Stop() was called if Start() was.
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  void Start();

  // Queues a batch. On success takes *job and returns true: its sink's
  // OnCommitted will be called exactly once. Returns false and leaves *job
  // alone when the queue is full or the committer is stopping; the caller
  // answers server_busy. Thread-safe.
  // REQUIRES: 1 <= transactions.size() <= kBatchTransactionsMax, auth, sink set.
  bool Submit(std::unique_ptr<CommitJob>* job);

  // Commits and answers everything queued, then ends the thread. Submit
  // refuses from the moment Stop is called. Idempotent.
  void Stop();

  CommitterStats stats() const;

 private:
  using Group = std::vector<std::unique_ptr<CommitJob>>;
  void Run();
  // Applies jobs [begin, end) in as few write transactions as storage allows.
  void CommitGroup(Group& jobs, size_t begin, size_t end);
  // One write transaction starting at jobs[begin]; returns the index of the
  // first job it did not take (to retry in a fresh transaction).
  size_t CommitOnce(Group& jobs, size_t begin, size_t end);

  ledger::Ledger* const ledger_;
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable wake_;
  Group queue_;                    // guarded by mu_
  size_t queued_transactions_ = 0;  // guarded by mu_
  bool stopping_ = false;           // guarded by mu_

  Group group_;  // the committer thread's swap buffer (keeps its capacity)

  // BeginWrite refusals are logged at most once a second, with how many
  // were not: a client retrying against a full disk refuses a group every
  // few milliseconds. Committer thread only.
  std::chrono::steady_clock::time_point refusal_logged_{};
  uint64_t refusals_unlogged_ = 0;

  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> batches_{0};
  std::atomic<uint64_t> transactions_{0};
  std::atomic<uint64_t> busy_batches_{0};

  // Recorded once per group commit by the committer thread.
  mutable std::mutex stats_mu_;
  bench::Histogram commit_ns_;  // guarded by stats_mu_
  bench::Histogram group_tx_;   // guarded by stats_mu_
  std::array<uint64_t, ledger::kCodeMax + 1> by_code_{};  // guarded by stats_mu_
  uint64_t duplicates_ = 0;                                // guarded by stats_mu_
};

}  // namespace pointledger::net

#endif  // POINTLEDGER_NET_COMMITTER_H_
