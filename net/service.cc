#include "net/service.h"

#include <algorithm>

#include "ledger/limits.h"
#include "ledger/status.h"
#include "net/limits.h"
#include "net/log.h"

namespace pointledger::net {

namespace {

// `pointledger history` shows 50 entries unless asked otherwise.
constexpr uint32_t kHistoryLimitDefault = 50;

bool HasScope(const ApiKey& key, uint8_t scope) { return (key.auth.scopes & scope) != 0; }

// A report that could not be made, as its answer's code: totals past
// 2^63 - 1 are overflow (not server_busy: a retry would not help), NotFound
// is `not_found`; anything else fails the request.
absl::StatusOr<wire::Code> ReportFailureCode(const absl::Status& status, wire::Code not_found) {
  if (absl::IsOutOfRange(status)) return wire::Code::overflow;
  if (absl::IsNotFound(status)) return not_found;
  return status;
}

}  // namespace

Service::Service(ledger::Ledger* ledger, const ServerConfig* config, const Committer* committer,
                 const ConnectionCounters* counters)
    : ledger_(ledger), config_(config), committer_(committer), counters_(counters) {
  PL_CHECK(ledger_ != nullptr && config_ != nullptr && committer_ != nullptr &&
           counters_ != nullptr);
  keys_ = std::make_shared<const std::vector<ApiKey>>(config_->keys);
}

std::shared_ptr<const std::vector<ApiKey>> Service::Keys() const {
  absl::MutexLock lock(&keys_mu_);
  return keys_;
}

void Service::ReplaceKeys(std::vector<ApiKey> keys) {
  auto replaced = std::make_shared<const std::vector<ApiKey>>(std::move(keys));
  {
    absl::MutexLock lock(&keys_mu_);
    keys_.swap(replaced);
  }
  // After the swap: a connection that sees the new generation finds the
  // new table. The old one is freed here, or by its last holder.
  keys_generation_.fetch_add(1, std::memory_order_acq_rel);
}

std::shared_ptr<const ApiKey> Service::CurrentKey(const Sha256Digest& sha256) const {
  std::shared_ptr<const std::vector<ApiKey>> keys = Keys();
  for (const ApiKey& k : *keys) {
    if (k.sha256 == sha256) return std::shared_ptr<const ApiKey>(keys, &k);
  }
  return nullptr;
}

std::shared_ptr<const ApiKey> Service::Hello(const wire::Hello& hello, uint64_t request_id,
                                            flatbuffers::FlatBufferBuilder* fbb,
                                            std::string* why) const {
  if (hello.protocol_version() != kProtocolVersion) {
    *why = StrCat("protocol version ", hello.protocol_version(), " (this server speaks ",
                  kProtocolVersion, ")");
    FinishResponse(*fbb, request_id, wire::ConnError::unsupported_version, *why,
                   wire::ResponseBody::NONE, 0);
    return nullptr;
  }
  const std::string_view given = View(hello.api_key());
  const std::shared_ptr<const std::vector<ApiKey>> keys = Keys();
  const ApiKey* found =
      given.empty() || given.size() > kApiKeyBytesMax ? nullptr : FindKey(*keys, given);
  if (found == nullptr) {
    *why = "unknown API key";
    FinishResponse(*fbb, request_id, wire::ConnError::unauthorized, *why,
                   wire::ResponseBody::NONE, 0);
    return nullptr;
  }
  std::shared_ptr<const ApiKey> key(keys, found);
  const auto principal = fbb->CreateString(key->principal);
  const auto server_name = fbb->CreateString("pointledgerd");
  const auto ok = wire::CreateHelloOk(*fbb, kProtocolVersion, principal, server_name,
                                      config_->limits.batch_transactions_max,
                                      config_->limits.frame_bytes_max);
  FinishResponse(*fbb, request_id, wire::ConnError::none, "", wire::ResponseBody::HelloOk,
                 ok.Union());
  return key;
}

bool Service::IsReport(wire::RequestBody type) {
  switch (type) {
    case wire::RequestBody::StatementQuery:
    case wire::RequestBody::LiabilityQuery:
    case wire::RequestBody::TrialBalanceQuery:
    case wire::RequestBody::AuditQuery:
      return true;
    default:
      return false;
  }
}

void Service::Read(const wire::Request& request, const ApiKey& key,
                   flatbuffers::FlatBufferBuilder* fbb) const {
  absl::StatusOr<Offset> body;
  const wire::RequestBody type = request.body_type();
  wire::ResponseBody out_type = wire::ResponseBody::NONE;
  switch (type) {
    case wire::RequestBody::BalanceQuery:
      body = Balance(*request.body_as_BalanceQuery(), key, fbb);
      out_type = wire::ResponseBody::Balance;
      break;
    case wire::RequestBody::HistoryQuery:
      body = History(*request.body_as_HistoryQuery(), key, fbb);
      out_type = wire::ResponseBody::History;
      break;
    case wire::RequestBody::TxQuery:
      body = Tx(*request.body_as_TxQuery(), key, fbb);
      out_type = wire::ResponseBody::TxRecord;
      break;
    case wire::RequestBody::HeadQuery:
      body = Head(key, fbb);
      out_type = wire::ResponseBody::Head;
      break;
    case wire::RequestBody::StatementQuery:
      body = Statement(*request.body_as_StatementQuery(), key, fbb);
      out_type = wire::ResponseBody::Statement;
      break;
    case wire::RequestBody::CollectDueQuery:
      body = CollectDue(*request.body_as_CollectDueQuery(), key, fbb);
      out_type = wire::ResponseBody::DueTransactions;
      break;
    case wire::RequestBody::StatsQuery:
      body = Stats(key, fbb);
      out_type = wire::ResponseBody::Stats;
      break;
    case wire::RequestBody::RecordsQuery:
      body = Records(*request.body_as_RecordsQuery(), key, fbb);
      out_type = wire::ResponseBody::Records;
      break;
    case wire::RequestBody::LiabilityQuery:
      body = Liability(*request.body_as_LiabilityQuery(), key, fbb);
      out_type = wire::ResponseBody::Liability;
      break;
    case wire::RequestBody::TrialBalanceQuery:
    case wire::RequestBody::AuditQuery:
      body = Check(request.body_type() == wire::RequestBody::AuditQuery, key, fbb);
      out_type = wire::ResponseBody::Discrepancies;
      break;
    default:
      // Hello and Batch are the connection's; VerifyRequestFrame refused
      // unknown tags.
      PL_CHECK(false);
  }
  if (!body.ok()) {
    LogLine(StrCat("error: read failed (answered server_busy): ", body.status().ToString()));
    fbb->Clear();
    FinishResponse(*fbb, request.request_id(), wire::ConnError::server_busy,
                   StrCat("storage error: ", std::string(body.status().message())), wire::ResponseBody::NONE,
                   0);
    return;
  }
  FinishResponse(*fbb, request.request_id(), wire::ConnError::none, "", out_type, *body);
}

bool Service::MayRead(const ApiKey& key, const flatbuffers::String* program) const {
  return HasScope(key, ledger::kScopeRead) && key.auth.AllowsProgram(View(program));
}

absl::StatusOr<wire::Code> Service::CheckProgramRead(const ApiKey& key,
                                                     const flatbuffers::String* program) const {
  if (!MayRead(key, program)) return wire::Code::permission_denied;
  PL_ASSIGN_OR_RETURN(const std::optional<ledger::ProgramInfo> info,
                      ledger_->GetProgram(View(program)));
  return info ? wire::Code::ok : wire::Code::program_not_found;
}

absl::StatusOr<Service::Offset> Service::Balance(const wire::BalanceQuery& q, const ApiKey& key,
                                                 flatbuffers::FlatBufferBuilder* fbb) const {
  PL_ASSIGN_OR_RETURN(wire::Code code, CheckProgramRead(key, q.program()));
  if (code == wire::Code::ok) {
    PL_ASSIGN_OR_RETURN(const std::optional<ledger::Balance> balance,
                        ledger_->GetBalance(View(q.program()), View(q.member())));
    if (balance) return BalanceToWire(*fbb, View(q.program()), View(q.member()), *balance).Union();
    code = wire::Code::account_not_found;
  }
  wire::BalanceBuilder b(*fbb);
  b.add_code(code);
  return b.Finish().Union();
}

absl::StatusOr<Service::Offset> Service::History(const wire::HistoryQuery& q, const ApiKey& key,
                                                 flatbuffers::FlatBufferBuilder* fbb) const {
  PL_ASSIGN_OR_RETURN(const wire::Code code, CheckProgramRead(key, q.program()));
  if (code != wire::Code::ok) {
    wire::HistoryBuilder b(*fbb);
    b.add_code(code);
    return b.Finish().Union();
  }
  const uint32_t limit =
      q.limit() == 0 ? kHistoryLimitDefault : std::min(q.limit(), ledger::kHistoryLimitMax);
  PL_ASSIGN_OR_RETURN(const std::vector<ledger::HistoryEntry> entries,
                      ledger_->GetHistory(View(q.program()), View(q.member()), limit,
                                          q.before_seq()));
  bool more = false;
  if (entries.size() == limit) {
    // One more entry older than the page's last tells the client to ask again.
    PL_ASSIGN_OR_RETURN(const std::vector<ledger::HistoryEntry> next,
                        ledger_->GetHistory(View(q.program()), View(q.member()), 1,
                                            entries.back().seq));
    more = !next.empty();
  }
  std::vector<flatbuffers::Offset<wire::HistoryEntry>> out;
  out.reserve(entries.size());
  for (const ledger::HistoryEntry& e : entries) out.push_back(HistoryEntryToWire(*fbb, e));
  const auto vector = fbb->CreateVector(out);
  return wire::CreateHistory(*fbb, wire::Code::ok, vector, more).Union();
}

absl::StatusOr<Service::Offset> Service::Tx(const wire::TxQuery& q, const ApiKey& key,
                                            flatbuffers::FlatBufferBuilder* fbb) const {
  // Not CheckProgramRead: a rejection naming a program that does not
  // exist (program_not_found) is recorded under that name (SPEC §3), and
  // `tx get` must find it, as a read of the data directory does (found by
  // a conformance test, session 33: the server said "no transaction").
  wire::Code code = MayRead(key, q.program()) ? wire::Code::ok : wire::Code::permission_denied;
  if (code == wire::Code::ok) {
    PL_ASSIGN_OR_RETURN(const std::optional<ledger::TxRecord> rec,
                        ledger_->GetTransaction(IdFromWire(q.id())));
    // A record of another program is not there for this caller: its key
    // may not be allowed to see it.
    if (rec && rec->tx.program == View(q.program())) return TxRecordToWire(*fbb, *rec).Union();
    code = wire::Code::original_not_found;
  }
  wire::TxRecordBuilder b(*fbb);
  b.add_code(code);
  return b.Finish().Union();
}

absl::StatusOr<Service::Offset> Service::Head(const ApiKey& key,
                                              flatbuffers::FlatBufferBuilder* fbb) const {
  if (!HasScope(key, ledger::kScopeRead)) {
    wire::HeadBuilder b(*fbb);
    b.add_code(wire::Code::permission_denied);
    return b.Finish().Union();
  }
  PL_ASSIGN_OR_RETURN(const ledger::ChainHead head, ledger_->GetHead());
  return HeadToWire(*fbb, head).Union();
}

absl::StatusOr<Service::Offset> Service::Statement(const wire::StatementQuery& q,
                                                   const ApiKey& key,
                                                   flatbuffers::FlatBufferBuilder* fbb) const {
  PL_ASSIGN_OR_RETURN(wire::Code code, CheckProgramRead(key, q.program()));
  if (code == wire::Code::ok) {
    absl::StatusOr<ledger::Statement> s = ledger_->SettlementStatement(
        View(q.program()), View(q.partner()), q.from_ns(), q.to_ns());
    if (s.ok()) return StatementToWire(*fbb, *s).Union();
    // The program exists (checked above): NotFound is the partner.
    PL_ASSIGN_OR_RETURN(code, ReportFailureCode(s.status(), wire::Code::partner_not_found));
  }
  wire::StatementBuilder b(*fbb);
  b.add_code(code);
  return b.Finish().Union();
}

absl::StatusOr<Service::Offset> Service::CollectDue(const wire::CollectDueQuery& q,
                                                    const ApiKey& key,
                                                    flatbuffers::FlatBufferBuilder* fbb) const {
  // Due transactions span every program, and posting them needs admin.
  if (!HasScope(key, ledger::kScopeAdmin) || !key.auth.programs.empty()) {
    wire::DueTransactionsBuilder b(*fbb);
    b.add_code(wire::Code::permission_denied);
    return b.Finish().Union();
  }
  const uint32_t limit = q.limit() == 0 ? kCollectDueLimitMax
                                        : std::min(q.limit(), kCollectDueLimitMax);
  const int64_t as_of = q.as_of_ns() == 0 ? ledger_->NowNs() : q.as_of_ns();
  PL_ASSIGN_OR_RETURN(const std::vector<ledger::Transaction> due,
                      ledger_->CollectDue(as_of, limit));
  std::vector<flatbuffers::Offset<wire::Transaction>> out;
  out.reserve(due.size());
  for (const ledger::Transaction& t : due) out.push_back(TransactionToWire(*fbb, t));
  const auto vector = fbb->CreateVector(out);
  return wire::CreateDueTransactions(*fbb, wire::Code::ok, vector).Union();
}

absl::StatusOr<Service::Offset> Service::Stats(const ApiKey& key,
                                               flatbuffers::FlatBufferBuilder* fbb) const {
  if (!HasScope(key, ledger::kScopeRead)) {
    wire::StatsBuilder b(*fbb);
    b.add_code(wire::Code::permission_denied);
    return b.Finish().Union();
  }
  PL_ASSIGN_OR_RETURN(const ServerSnapshot snap, Snapshot());
  const CommitterStats& s = snap.committer;
  const ledger::Ledger::MapUsage& map = snap.map;
  const auto by_code = fbb->CreateVector(s.results_by_code.data(), s.results_by_code.size());
  wire::StatsBuilder b(*fbb);
  b.add_code(wire::Code::ok);
  b.add_uptime_s(snap.uptime_s);
  b.add_results_by_code(by_code);
  b.add_commit_p50_us(s.commit_p50_us);
  b.add_commit_p99_us(s.commit_p99_us);
  b.add_commit_max_us(s.commit_max_us);
  b.add_group_p50(s.group_p50);
  b.add_group_p99(s.group_p99);
  b.add_group_max(s.group_max);
  b.add_log_map_used_bytes(map.log_used);
  b.add_log_map_size_bytes(map.log_size);
  b.add_state_map_used_bytes(map.state_used);
  b.add_state_map_size_bytes(map.state_size);
  b.add_duplicates(s.duplicates);
  b.add_reports_running(snap.reports_running);
  b.add_commits(s.commits);
  b.add_batches(s.batches);
  b.add_transactions(s.transactions);
  b.add_busy_batches(s.busy_batches);
  b.add_connections_open(snap.connections_open);
  b.add_connections_accepted(snap.connections_accepted);
  b.add_connections_refused(snap.connections_refused);
  b.add_head_seq(snap.head_seq);
  b.add_checkpoint_seq(snap.checkpoint_seq);
  return b.Finish().Union();
}

absl::StatusOr<ServerSnapshot> Service::Snapshot() const {
  ServerSnapshot out;
  out.uptime_s = static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started_)
          .count());
  out.connections_open = counters_->open.load(std::memory_order_relaxed);
  out.connections_accepted = counters_->accepted.load(std::memory_order_relaxed);
  out.connections_refused = counters_->refused.load(std::memory_order_relaxed);
  out.reports_running = counters_->reports_running.load(std::memory_order_relaxed);
  out.committer = committer_->stats();
  PL_ASSIGN_OR_RETURN(out.map, ledger_->GetMapUsage());
  // The checkpoint first: a checkpoint ending between the two reads then
  // cannot show checkpoint_seq past head_seq.
  PL_ASSIGN_OR_RETURN(out.checkpoint_seq, ledger_->CheckpointSeq());
  PL_ASSIGN_OR_RETURN(const ledger::ChainHead head, ledger_->GetHead());
  out.head_seq = head.seq;
  return out;
}

absl::StatusOr<Service::Offset> Service::Records(const wire::RecordsQuery& q, const ApiKey& key,
                                                 flatbuffers::FlatBufferBuilder* fbb) const {
  wire::Code code = wire::Code::ok;
  if (q.program() == nullptr || q.program()->size() == 0) {
    // Every program's transactions: only for a key that may read them all.
    if (!HasScope(key, ledger::kScopeRead) || !key.auth.programs.empty()) {
      code = wire::Code::permission_denied;
    }
  } else {
    PL_ASSIGN_OR_RETURN(code, CheckProgramRead(key, q.program()));
  }
  if (code != wire::Code::ok) {
    wire::RecordsBuilder b(*fbb);
    b.add_code(code);
    return b.Finish().Union();
  }
  const uint32_t limit = q.limit() == 0 ? ledger::kRecordsPageMax
                                        : std::min(q.limit(), ledger::kRecordsPageMax);
  PL_ASSIGN_OR_RETURN(const ledger::RecordsPage page,
                      ledger_->GetRecords(q.from_seq(), limit, View(q.program())));
  std::vector<flatbuffers::Offset<wire::TxRecord>> records;
  records.reserve(page.records.size());
  for (const ledger::TxRecord& rec : page.records) records.push_back(TxRecordToWire(*fbb, rec));
  const auto vec = fbb->CreateVector(records);
  return wire::CreateRecords(*fbb, wire::Code::ok, vec, page.next_seq, page.head_seq).Union();
}

absl::StatusOr<Service::Offset> Service::Liability(const wire::LiabilityQuery& q,
                                                   const ApiKey& key,
                                                   flatbuffers::FlatBufferBuilder* fbb) const {
  PL_ASSIGN_OR_RETURN(wire::Code code, CheckProgramRead(key, q.program()));
  if (code == wire::Code::ok) {
    absl::StatusOr<ledger::Liability> l =
        ledger_->LiabilityReport(View(q.program()), q.from_ns(), q.to_ns(), q.as_of_ns());
    if (l.ok()) return LiabilityToWire(*fbb, *l).Union();
    PL_ASSIGN_OR_RETURN(code, ReportFailureCode(l.status(), wire::Code::program_not_found));
  }
  wire::LiabilityBuilder b(*fbb);
  b.add_code(code);
  return b.Finish().Union();
}

absl::StatusOr<Service::Offset> Service::Check(bool audit, const ApiKey& key,
                                               flatbuffers::FlatBufferBuilder* fbb) const {
  if (!HasScope(key, ledger::kScopeRead) || !key.auth.programs.empty()) {
    wire::DiscrepanciesBuilder b(*fbb);
    b.add_code(wire::Code::permission_denied);
    return b.Finish().Union();
  }
  ledger::AuditReport report;
  if (audit) {
    PL_ASSIGN_OR_RETURN(report, ledger_->Audit());
  } else {
    PL_ASSIGN_OR_RETURN(std::vector<ledger::Discrepancy> found, ledger_->TrialBalance());
    report.discrepancy_count = found.size();
    if (found.size() > ledger::kAuditListedMax) found.resize(ledger::kAuditListedMax);
    report.discrepancies = std::move(found);
  }
  return AuditToWire(*fbb, report).Union();
}

}  // namespace pointledger::net
