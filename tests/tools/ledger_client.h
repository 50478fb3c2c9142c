// A net::Client that applies batches to an in-process Ledger: lets the
// posting commands and the load generator be tested without a server.
#ifndef POINTLEDGER_TESTS_TOOLS_LEDGER_CLIENT_H_
#define POINTLEDGER_TESTS_TOOLS_LEDGER_CLIENT_H_

#include <deque>
#include <mutex>
#include <thread>

#include "ledger/ledger.h"
#include "net/client.h"

namespace pointledger::tools {

class LedgerClient final : public net::Client {
 public:
  // `mu` serialises writers when several clients share one ledger.
  LedgerClient(ledger::Ledger* ledger, std::mutex* mu) : ledger_(ledger), mu_(mu) {}

  absl::StatusOr<std::vector<ledger::Result>> Post(std::span<const ledger::Transaction> batch) override {
    const bool resend = resent_post >= 0 && posts == static_cast<uint64_t>(resent_post);
    ++posts;
    std::vector<ledger::Result> results;
    std::lock_guard<std::mutex> lock(*mu_);
    absl::Status s = ledger_->ApplyBatch(batch, ledger::Auth::Admin(), &results);
    // As the library does when the answer is lost: the same batch again,
    // whose answers are the duplicates of the first attempt.
    if (s.ok() && resend) s = ledger_->ApplyBatch(batch, ledger::Auth::Admin(), &results);
    if (!s.ok()) return s;
    return results;
  }
  absl::StatusOr<uint64_t> Send(std::span<const ledger::Transaction> batch) override {
    if (fail_after_posts >= 0 && posts >= static_cast<uint64_t>(fail_after_posts)) {
      return absl::UnavailableError("connection reset by peer");
    }
    max_batch = std::max(max_batch, batch.size());
    const uint64_t send_index = sends_++;
    if (busy_at_send >= 0 && send_index == static_cast<uint64_t>(busy_at_send)) {
      // Refused whole, as the server's full commit queue does; the
      // connection stays open.
      answers_.push_back(BatchAnswer{.request_id = ++request_id_,
                                     .status = absl::UnavailableError("server_busy: the commit queue is full"),
                                     .results = {}});
      return request_id_;
    }
    absl::StatusOr<std::vector<ledger::Result>> r = Post(batch);
    if (!r.ok()) return r.status();
    if (garbled_at_send >= 0 && send_index == static_cast<uint64_t>(garbled_at_send)) {
      // Applied, and answered with something that does not read right.
      answers_.push_back(BatchAnswer{.request_id = ++request_id_,
                                     .status = absl::DataLossError("the server answered a batch with the wrong "
                                                                   "number of results"),
                                     .results = {}});
      return request_id_;
    }
    answers_.push_back(BatchAnswer{.request_id = ++request_id_, .status = absl::OkStatus(), .results = std::move(*r)});
    max_in_flight = std::max(max_in_flight, answers_.size());
    if (usage != nullptr) {
      usage->posts = posts;
      usage->max_in_flight = max_in_flight;
      usage->sender = std::this_thread::get_id();
    }
    return request_id_;
  }
  absl::StatusOr<BatchAnswer> Receive() override {
    if (answers_.empty()) return absl::FailedPreconditionError("nothing in flight");
    BatchAnswer a = std::move(answers_.front());
    answers_.pop_front();
    return a;
  }
  absl::StatusOr<std::optional<ledger::Balance>> GetBalance(const std::string& program,
                                                            const std::string& member) override {
    return ledger_->GetBalance(program, member);
  }
  absl::StatusOr<std::vector<ledger::HistoryEntry>> GetHistory(const std::string& program,
                                                               const std::string& member, uint32_t limit,
                                                               uint64_t before_seq) override {
    return ledger_->GetHistory(program, member, limit, before_seq);
  }
  absl::StatusOr<std::optional<ledger::TxRecord>> GetTransaction(const std::string&,
                                                                 const ledger::Id& id) override {
    return ledger_->GetTransaction(id);
  }
  absl::StatusOr<ledger::ChainHead> GetHead() override { return ledger_->GetHead(); }
  absl::StatusOr<std::vector<ledger::Transaction>> CollectDue(int64_t as_of_ns, uint32_t limit) override {
    return ledger_->CollectDue(as_of_ns, limit);
  }
  absl::StatusOr<ledger::Statement> SettlementStatement(const std::string& program, const std::string& partner,
                                                        int64_t from_ns, int64_t to_ns) override {
    return ledger_->SettlementStatement(program, partner, from_ns, to_ns);
  }

  absl::StatusOr<ServerStats> GetStats() override { return ServerStats{}; }
  absl::StatusOr<ledger::RecordsPage> GetRecords(uint64_t from_seq, uint32_t limit,
                                                 const std::string& program) override {
    return ledger_->GetRecords(from_seq, limit, program);
  }
  absl::StatusOr<ledger::Liability> LiabilityReport(const std::string& program, int64_t from_ns,
                                                    int64_t to_ns, int64_t as_of_ns) override {
    return ledger_->LiabilityReport(program, from_ns, to_ns, as_of_ns);
  }
  absl::StatusOr<ledger::AuditReport> TrialBalance() override {
    absl::StatusOr<std::vector<ledger::Discrepancy>> found = ledger_->TrialBalance();
    if (!found.ok()) return found.status();
    ledger::AuditReport report;
    report.discrepancy_count = found->size();
    report.discrepancies = *std::move(found);
    return report;
  }
  absl::StatusOr<ledger::AuditReport> Audit() override { return ledger_->Audit(); }
  const std::string& principal() const override { return principal_; }
  uint32_t batch_transactions_max() const override { return batch_max; }
  uint32_t frame_bytes_max() const override { return frame_bytes; }
  size_t in_flight() const override { return answers_.size(); }

  uint32_t batch_max = 8190;
  uint32_t frame_bytes = 4u << 20;
  size_t max_batch = 0;
  size_t max_in_flight = 0;
  uint64_t posts = 0;
  int fail_after_posts = -1;  // >= 0: Send fails once this many were posted
  int busy_at_send = -1;      // >= 0: that Send (0 first) is answered server_busy
  int resent_post = -1;       // >= 0: that Post (0 first) loses its answer and is sent again
  int garbled_at_send = -1;   // >= 0: that Send is applied, and its answer does not read right
  // What Send saw, kept where the test can read it after the client is
  // gone (the load generator destroys its clients before it returns).
  struct Usage {
    uint64_t posts = 0;
    size_t max_in_flight = 0;
    std::thread::id sender;  // the thread of the last Send
  };
  Usage* usage = nullptr;

 private:
  ledger::Ledger* ledger_;
  std::mutex* mu_;
  std::deque<BatchAnswer> answers_;
  uint64_t sends_ = 0;
  uint64_t request_id_ = 0;
  std::string principal_ = "test";
};

}  // namespace pointledger::tools

#endif  // POINTLEDGER_TESTS_TOOLS_LEDGER_CLIENT_H_
