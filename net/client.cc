// The client library (net/client.h): blocking calls over Asio, each bounded
// by options.timeout_ms (an operation runs on a private io_context with
// run_for), pipelining with answers matched to requests in order, and
// reconnect + resend with the same request frames (same transaction ids:
// safe by design, SPEC §3).
#include "net/client.h"

#include <openssl/ssl.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <deque>
#include <thread>

#include "boost/asio/connect.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/asio/ssl/context.hpp"
#include "boost/asio/ssl/host_name_verification.hpp"
#include "boost/asio/ssl/stream.hpp"
#include "boost/asio/write.hpp"
#include "flatbuffers/flatbuffers.h"
#include "ledger/limits.h"
#include "ledger/status.h"
#include "net/limits.h"
#include "net/wire.h"

namespace pointledger::net {

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ErrorCode = boost::system::error_code;
using TlsStream = asio::ssl::stream<tcp::socket>;

constexpr int kReconnectBackoffMsMax = 2000;

absl::Status ConnErrorStatus(wire::ConnError error, std::string_view message) {
  // The server's message may name the word already ("malformed_request: …").
  const std::string_view name = ConnErrorName(error);
  if (message.substr(0, name.size()) == name && message.substr(name.size(), 2) == ": ") {
    message.remove_prefix(name.size() + 2);
  }
  const std::string text = StrCat(name, ": ", message);
  switch (error) {
    case wire::ConnError::unauthorized: return absl::UnauthenticatedError(text);
    case wire::ConnError::malformed_request: return absl::InvalidArgumentError(text);
    case wire::ConnError::request_too_large: return absl::OutOfRangeError(text);
    case wire::ConnError::batch_too_large: return absl::OutOfRangeError(text);
    case wire::ConnError::unsupported_version: return absl::FailedPreconditionError(text);
    case wire::ConnError::server_busy: return absl::UnavailableError(text);
    case wire::ConnError::none: break;
  }
  return absl::InternalError(text);
}

// A transport failure: worth a fresh connection.
bool IsConnectionError(const absl::Status& s) {
  return s.code() == absl::StatusCode::kUnavailable && s.message().find("connection") == 0;
}

absl::Status ConnectionError(std::string_view what, const ErrorCode& ec) {
  return absl::UnavailableError(StrCat("connection: ", what, ": ", ec.message()));
}

absl::Status CodeStatus(wire::Code code) {
  if (code == wire::Code::permission_denied) {
    return absl::PermissionDeniedError("permission_denied");
  }
  if (code == wire::Code::overflow) {
    return absl::OutOfRangeError("overflow: a total of the report is too large to state (points beyond 2^64 - 1, or money beyond 2^63 - 1 micros)");
  }
  if (static_cast<int>(code) > ledger::kCodeMax) {
    return absl::DataLossError("the server answered an unknown code");
  }
  return absl::NotFoundError(std::string(ledger::CodeName(static_cast<ledger::Code>(code))));
}

class ClientImpl final : public Client {
 public:
  explicit ClientImpl(const ClientOptions& options) : options_(options), in_(64 * 1024) {}

  ~ClientImpl() override { CloseTransport(); }

  // Connects and says Hello (no resend: nothing is pending yet).
  absl::Status Open() { return OpenAndResend(); }

  absl::StatusOr<std::vector<ledger::Result>> Post(
      std::span<const ledger::Transaction> batch) override {
    PL_ASSIGN_OR_RETURN(const uint64_t id, Send(batch));
    for (;;) {
      absl::StatusOr<Answer> next = NextAnswer();
      if (!next.ok()) {
        Abandon(id);
        return next.status();
      }
      const Answer& answer = *next;
      BatchAnswer batch_answer = ToBatchAnswer(answer);
      if (answer.request_id == id) {
        if (!batch_answer.status.ok()) return batch_answer.status;
        return std::move(batch_answer.results);
      }
      buffered_.push_back(std::move(batch_answer));
    }
  }

  absl::StatusOr<uint64_t> Send(std::span<const ledger::Transaction> batch) override {
    if (batch.empty()) return absl::InvalidArgumentError("malformed_request: an empty batch");
    if (batch.size() > batch_transactions_max_) {
      return absl::OutOfRangeError(StrCat("batch_too_large: a batch holds 1 to ",
                                          batch_transactions_max_, " transactions, not ",
                                          batch.size()));
    }
    fbb_.Clear();
    offsets_.clear();
    for (const ledger::Transaction& tx : batch) offsets_.push_back(TransactionToWire(fbb_, tx));
    const auto vector = fbb_.CreateVector(offsets_);
    const auto body = wire::CreateBatch(fbb_, vector);
    return Enqueue(wire::RequestBody::Batch, body.Union(), batch.size());
  }

  absl::StatusOr<BatchAnswer> Receive() override {
    if (!buffered_.empty()) {
      BatchAnswer answer = std::move(buffered_.front());
      buffered_.pop_front();
      return answer;
    }
    if (pending_.empty()) return absl::FailedPreconditionError("Receive: nothing in flight");
    PL_ASSIGN_OR_RETURN(Answer answer, NextAnswer());
    return ToBatchAnswer(answer);
  }

  absl::StatusOr<std::optional<ledger::Balance>> GetBalance(const std::string& program,
                                                            const std::string& member) override {
    fbb_.Clear();
    const auto body = wire::CreateBalanceQueryDirect(fbb_, program.c_str(), member.c_str());
    PL_ASSIGN_OR_RETURN(const wire::Response* r,
                        Call(wire::RequestBody::BalanceQuery, body.Union()));
    const wire::Balance* b = r->body_as_Balance();
    if (b == nullptr) return Unexpected();
    if (b->code() == wire::Code::program_not_found || b->code() == wire::Code::account_not_found) {
      return std::optional<ledger::Balance>();
    }
    if (b->code() != wire::Code::ok) return CodeStatus(b->code());
    return std::optional<ledger::Balance>(BalanceFromWire(*b));
  }

  absl::StatusOr<std::vector<ledger::HistoryEntry>> GetHistory(const std::string& program,
                                                               const std::string& member,
                                                               uint32_t limit,
                                                               uint64_t before_seq) override {
    fbb_.Clear();
    const auto body = wire::CreateHistoryQueryDirect(fbb_, program.c_str(), member.c_str(),
                                                     limit, before_seq);
    PL_ASSIGN_OR_RETURN(const wire::Response* r,
                        Call(wire::RequestBody::HistoryQuery, body.Union()));
    const wire::History* h = r->body_as_History();
    if (h == nullptr) return Unexpected();
    if (h->code() != wire::Code::ok) return CodeStatus(h->code());
    std::vector<ledger::HistoryEntry> out;
    if (h->entries() != nullptr) {
      out.reserve(h->entries()->size());
      for (const wire::HistoryEntry* e : *h->entries()) {
        PL_ASSIGN_OR_RETURN(ledger::HistoryEntry entry, HistoryEntryFromWire(*e));
        out.push_back(entry);
      }
    }
    return out;
  }

  absl::StatusOr<std::optional<ledger::TxRecord>> GetTransaction(const std::string& program,
                                                                 const ledger::Id& id) override {
    fbb_.Clear();
    const auto program_offset = fbb_.CreateString(program);
    const wire::Id128 wire_id = IdToWire(id);
    const auto body = wire::CreateTxQuery(fbb_, program_offset, &wire_id);
    PL_ASSIGN_OR_RETURN(const wire::Response* r, Call(wire::RequestBody::TxQuery, body.Union()));
    const wire::TxRecord* t = r->body_as_TxRecord();
    if (t == nullptr) return Unexpected();
    if (t->code() == wire::Code::original_not_found || t->code() == wire::Code::program_not_found) {
      return std::optional<ledger::TxRecord>();
    }
    if (t->code() != wire::Code::ok) return CodeStatus(t->code());
    PL_ASSIGN_OR_RETURN(ledger::TxRecord rec, TxRecordFromWire(*t));
    return std::optional<ledger::TxRecord>(std::move(rec));
  }

  absl::StatusOr<ledger::ChainHead> GetHead() override {
    fbb_.Clear();
    const auto body = wire::CreateHeadQuery(fbb_);
    PL_ASSIGN_OR_RETURN(const wire::Response* r, Call(wire::RequestBody::HeadQuery, body.Union()));
    const wire::Head* h = r->body_as_Head();
    if (h == nullptr) return Unexpected();
    if (h->code() != wire::Code::ok) return CodeStatus(h->code());
    return HeadFromWire(*h);
  }

  absl::StatusOr<std::vector<ledger::Transaction>> CollectDue(int64_t as_of_ns,
                                                              uint32_t limit) override {
    fbb_.Clear();
    const auto body = wire::CreateCollectDueQuery(fbb_, as_of_ns, limit);
    PL_ASSIGN_OR_RETURN(const wire::Response* r,
                        Call(wire::RequestBody::CollectDueQuery, body.Union()));
    const wire::DueTransactions* d = r->body_as_DueTransactions();
    if (d == nullptr) return Unexpected();
    if (d->code() != wire::Code::ok) return CodeStatus(d->code());
    std::vector<ledger::Transaction> out;
    if (d->transactions() != nullptr) {
      out.resize(d->transactions()->size());
      for (flatbuffers::uoffset_t i = 0; i < d->transactions()->size(); ++i) {
        PL_RETURN_IF_ERROR(TransactionFromWire(*d->transactions()->Get(i), &out[i]));
      }
    }
    return out;
  }

  absl::StatusOr<ledger::Statement> SettlementStatement(const std::string& program,
                                                        const std::string& partner,
                                                        int64_t from_ns, int64_t to_ns) override {
    fbb_.Clear();
    const auto body = wire::CreateStatementQueryDirect(fbb_, program.c_str(), partner.c_str(),
                                                       from_ns, to_ns);
    PL_ASSIGN_OR_RETURN(const wire::Response* r,
                        Call(wire::RequestBody::StatementQuery, body.Union()));
    const wire::Statement* s = r->body_as_Statement();
    if (s == nullptr) return Unexpected();
    if (s->code() != wire::Code::ok) return CodeStatus(s->code());
    return StatementFromWire(*s);
  }

  absl::StatusOr<ServerStats> GetStats() override {
    fbb_.Clear();
    const auto body = wire::CreateStatsQuery(fbb_);
    PL_ASSIGN_OR_RETURN(const wire::Response* r, Call(wire::RequestBody::StatsQuery, body.Union()));
    const wire::Stats* s = r->body_as_Stats();
    if (s == nullptr) return Unexpected();
    if (s->code() != wire::Code::ok) return CodeStatus(s->code());
    ServerStats out;
    out.commits = s->commits();
    out.batches = s->batches();
    out.transactions = s->transactions();
    out.busy_batches = s->busy_batches();
    out.connections_open = s->connections_open();
    out.connections_accepted = s->connections_accepted();
    out.uptime_s = s->uptime_s();
    if (s->results_by_code() != nullptr) {
      out.results_by_code.assign(s->results_by_code()->begin(), s->results_by_code()->end());
    }
    out.commit_p50_us = s->commit_p50_us();
    out.commit_p99_us = s->commit_p99_us();
    out.commit_max_us = s->commit_max_us();
    out.group_p50 = s->group_p50();
    out.group_p99 = s->group_p99();
    out.group_max = s->group_max();
    out.log_map_used_bytes = s->log_map_used_bytes();
    out.log_map_size_bytes = s->log_map_size_bytes();
    out.state_map_used_bytes = s->state_map_used_bytes();
    out.state_map_size_bytes = s->state_map_size_bytes();
    out.duplicates = s->duplicates();
    out.reports_running = s->reports_running();
    out.connections_refused = s->connections_refused();
    out.head_seq = s->head_seq();
    out.checkpoint_seq = s->checkpoint_seq();
    return out;
  }

  absl::StatusOr<ledger::RecordsPage> GetRecords(uint64_t from_seq, uint32_t limit,
                                                 const std::string& program) override {
    fbb_.Clear();
    const auto body = wire::CreateRecordsQueryDirect(fbb_, from_seq, limit,
                                                     program.empty() ? nullptr : program.c_str());
    PL_ASSIGN_OR_RETURN(const wire::Response* r, Call(wire::RequestBody::RecordsQuery, body.Union()));
    const wire::Records* page = r->body_as_Records();
    if (page == nullptr) return Unexpected();
    if (page->code() != wire::Code::ok) return CodeStatus(page->code());
    ledger::RecordsPage out;
    out.next_seq = page->next_seq();
    out.head_seq = page->head_seq();
    if (page->records() != nullptr) {
      for (const wire::TxRecord* rec : *page->records()) {
        PL_ASSIGN_OR_RETURN(ledger::TxRecord decoded, TxRecordFromWire(*rec));
        out.records.push_back(std::move(decoded));
      }
    }
    return out;
  }

  absl::StatusOr<ledger::Liability> LiabilityReport(const std::string& program, int64_t from_ns,
                                                    int64_t to_ns, int64_t as_of_ns) override {
    fbb_.Clear();
    const auto body =
        wire::CreateLiabilityQueryDirect(fbb_, program.c_str(), from_ns, to_ns, as_of_ns);
    PL_ASSIGN_OR_RETURN(const wire::Response* r,
                        Call(wire::RequestBody::LiabilityQuery, body.Union()));
    const wire::Liability* l = r->body_as_Liability();
    if (l == nullptr) return Unexpected();
    if (l->code() != wire::Code::ok) return CodeStatus(l->code());
    return LiabilityFromWire(*l);
  }

  absl::StatusOr<ledger::AuditReport> TrialBalance() override {
    fbb_.Clear();
    const auto body = wire::CreateTrialBalanceQuery(fbb_);
    return CheckCall(wire::RequestBody::TrialBalanceQuery, body.Union());
  }

  absl::StatusOr<ledger::AuditReport> Audit() override {
    fbb_.Clear();
    const auto body = wire::CreateAuditQuery(fbb_);
    return CheckCall(wire::RequestBody::AuditQuery, body.Union());
  }

  const std::string& principal() const override { return principal_; }
  uint32_t batch_transactions_max() const override { return batch_transactions_max_; }
  uint32_t frame_bytes_max() const override { return frame_bytes_max_; }
  size_t in_flight() const override { return pending_.size() + buffered_.size(); }

 private:
  absl::StatusOr<ledger::AuditReport> CheckCall(wire::RequestBody type,
                                                flatbuffers::Offset<void> body) {
    PL_ASSIGN_OR_RETURN(const wire::Response* r, Call(type, body));
    const wire::Discrepancies* d = r->body_as_Discrepancies();
    if (d == nullptr) return Unexpected();
    if (d->code() != wire::Code::ok) return CodeStatus(d->code());
    return AuditFromWire(*d);
  }

  // A request sent and not yet answered, kept whole for a resend.
  struct Pending {
    uint64_t request_id = 0;
    flatbuffers::DetachedBuffer frame;
    size_t batch_size = 0;  // 0 for reads
  };
  // The answer to pending_.front(), valid until the next read from the socket.
  struct Answer {
    uint64_t request_id = 0;
    size_t batch_size = 0;
    const wire::Response* response = nullptr;
  };

  static absl::Status Unexpected() {
    return absl::DataLossError("the server answered with an unexpected body");
  }

  // ---- Requests.

  // Finishes the request in fbb_, sends it and records it as pending.
  absl::StatusOr<uint64_t> Enqueue(wire::RequestBody type, flatbuffers::Offset<void> body,
                                   size_t batch_size) {
    const uint64_t id = next_request_id_++;
    FinishRequest(fbb_, id, type, body);
    if (fbb_.GetSize() - kFrameHeaderBytes > frame_bytes_max_) {
      return absl::OutOfRangeError(StrCat("request_too_large: ", fbb_.GetSize(),
                                          " bytes; the server takes ", frame_bytes_max_));
    }
    pending_.push_back(Pending{id, fbb_.Release(), batch_size});
    absl::Status s = connected_ ? WriteAll(pending_.back().frame) : absl::UnavailableError("connection: not connected");
    if (!s.ok() && (IsConnectionError(s) || s.code() == absl::StatusCode::kDeadlineExceeded)) {
      s = Recover(s);  // resends everything pending, this one too
    }
    if (!s.ok()) {
      Abandon(id);
      return s;
    }
    return id;
  }

  // Forgets a request whose caller got an error instead of its answer (a
  // Send, a Post or a read that failed): it is not resent later, and its
  // answer never turns up in Receive(). A batch so abandoned may or may not
  // have been applied; posting it again with the same ids tells (exactly
  // once: a duplicate answers with the original result). The connection is
  // closed, since the server may still answer the request on it; the other
  // requests in flight are resent on the next one.
  void Abandon(uint64_t id) {
    const auto it = std::find_if(pending_.begin(), pending_.end(),
                                 [id](const Pending& p) { return p.request_id == id; });
    if (it == pending_.end()) return;
    pending_.erase(it);
    CloseTransport();
  }

  // A read: send, then wait for its answer (buffering batch answers that
  // come first, since answers arrive in request order).
  absl::StatusOr<const wire::Response*> Call(wire::RequestBody type,
                                             flatbuffers::Offset<void> body) {
    PL_ASSIGN_OR_RETURN(const uint64_t id, Enqueue(type, body, 0));
    for (;;) {
      absl::StatusOr<Answer> next = NextAnswer();
      if (!next.ok()) {
        Abandon(id);
        return next.status();
      }
      const Answer& answer = *next;
      if (answer.request_id != id) {
        buffered_.push_back(ToBatchAnswer(answer));
        continue;
      }
      if (answer.response->error() != wire::ConnError::none) {
        return ConnErrorStatus(answer.response->error(), View(answer.response->message()));
      }
      return answer.response;
    }
  }

  // The answer to a batch request: its results, or why there are none.
  static BatchAnswer ToBatchAnswer(const Answer& answer) {
    BatchAnswer out;
    out.request_id = answer.request_id;
    const wire::Response& r = *answer.response;
    if (r.error() != wire::ConnError::none) {
      out.status = ConnErrorStatus(r.error(), View(r.message()));
      return out;
    }
    const wire::BatchResult* b = r.body_as_BatchResult();
    if (b == nullptr || b->results() == nullptr || b->results()->size() != answer.batch_size) {
      out.status = absl::DataLossError("the server answered a batch with the wrong number of results");
      return out;
    }
    out.results.resize(b->results()->size());
    for (flatbuffers::uoffset_t i = 0; i < b->results()->size(); ++i) {
      out.status = ResultFromWire(*b->results()->Get(i), &out.results[i]);
      if (!out.status.ok()) {
        out.results.clear();
        return out;
      }
    }
    return out;
  }

  // Reads the answer to pending_.front() and pops it, reconnecting and
  // resending on connection errors: reconnect_attempts times in all, since
  // a reconnect that works resets Recover's own count (a server that takes
  // each new connection and drops it again was retried for ever).
  absl::StatusOr<Answer> NextAnswer() {
    PL_CHECK(!pending_.empty());
    absl::Status lost = absl::UnavailableError("connection: closed");
    for (int reconnects = 0;;) {
      if (!connected_) {
        if (reconnects == options_.reconnect_attempts) {
          return absl::UnavailableError(StrCat("connection: ", options_.host, ":", options_.port, ": ",
                                               reconnects, " reconnects, and no answer: ",
                                               std::string(lost.message())));
        }
        ++reconnects;
        PL_RETURN_IF_ERROR(Recover(lost));
      }
      absl::StatusOr<const wire::Response*> r = ReadResponse();
      if (!r.ok()) {
        if (r.status().code() == absl::StatusCode::kDeadlineExceeded) {
          CloseTransport();  // the next call reconnects and resends
          return r.status();
        }
        if (!IsConnectionError(r.status())) return r.status();
        lost = r.status();
        CloseTransport();
        continue;
      }
      const Pending& front = pending_.front();
      if ((*r)->request_id() != front.request_id) {
        DropInput();  // nothing more from this stream is believed
        CloseTransport();
        return absl::DataLossError(StrCat("the server answered request ", (*r)->request_id(),
                                          " where ", front.request_id, " was next"));
      }
      Answer answer{front.request_id, front.batch_size, *r};
      pending_.pop_front();
      // Every error but server_busy closes the connection: the requests
      // after it are resent on a fresh one.
      if ((*r)->error() != wire::ConnError::none && (*r)->error() != wire::ConnError::server_busy) {
        connected_ = false;
      }
      return answer;
    }
  }

  // ---- Connecting.

  absl::Status Recover(absl::Status cause) {
    CloseTransport();
    for (int attempt = 0; attempt < options_.reconnect_attempts; ++attempt) {
      std::this_thread::sleep_for(
          std::chrono::milliseconds(std::min(100 << std::min(attempt, 8), kReconnectBackoffMsMax)));
      absl::Status s = OpenAndResend();
      if (s.ok()) return s;
      // A timeout is not retried either: another try would wait as long.
      if (!IsConnectionError(s)) return s;
      cause = s;
    }
    return absl::UnavailableError(StrCat("connection: ", options_.host, ":", options_.port,
                                         " unreachable after ", options_.reconnect_attempts,
                                         " reconnects: ", std::string(cause.message())));
  }

  absl::Status OpenAndResend() {
    CloseTransport();
    PL_RETURN_IF_ERROR(Connect());
    PL_RETURN_IF_ERROR(Hello());
    connected_ = true;
    for (const Pending& p : pending_) {
      absl::Status s = WriteAll(p.frame);
      if (!s.ok()) {
        CloseTransport();
        return s;
      }
    }
    return absl::OkStatus();
  }

  absl::Status Connect() {
    // Synchronous: an IP literal or localhost resolves at once, and Asio's
    // resolver cannot be bounded by our timeout anyway.
    tcp::resolver resolver(io_);
    ErrorCode ec;
    const tcp::resolver::results_type endpoints =
        resolver.resolve(options_.host, std::to_string(options_.port), ec);
    if (ec) return ConnectionError(StrCat("resolve ", options_.host), ec);
    socket_ = std::make_unique<tcp::socket>(io_);
    ec = RunTimed([&](auto done) {
      asio::async_connect(*socket_, endpoints,
                          [done](const ErrorCode& e, const tcp::endpoint&) { done(e); });
    });
    if (ec == asio::error::timed_out) {
      // Not retried (Connect, Recover): another try would wait as long again.
      return absl::DeadlineExceededError(StrCat("connect to ", options_.host, ":", options_.port,
                                                ": no answer within ", options_.timeout_ms, " ms"));
    }
    if (ec) {
      return ConnectionError(StrCat("connect to ", options_.host, ":", options_.port), ec);
    }
    ErrorCode ignored;
    socket_->set_option(tcp::no_delay(true), ignored);
    if (options_.tls) return Handshake();
    return absl::OkStatus();
  }

  absl::Status Handshake() {
    if (tls_context_ == nullptr) {
      tls_context_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
      ErrorCode ec;
      if (options_.tls_ca_file.empty()) {
        tls_context_->set_default_verify_paths(ec);
      } else {
        tls_context_->load_verify_file(options_.tls_ca_file, ec);
      }
      if (ec) return absl::InvalidArgumentError(StrCat("TLS CA: ", ec.message()));
    }
    tls_ = std::make_unique<TlsStream>(std::move(*socket_), *tls_context_);
    socket_.reset();
    tls_->set_verify_mode(asio::ssl::verify_peer);
    tls_->set_verify_callback(asio::ssl::host_name_verification(options_.host));
    SSL_set_tlsext_host_name(tls_->native_handle(), options_.host.c_str());
    const ErrorCode ec = RunTimed([&](auto done) {
      tls_->async_handshake(asio::ssl::stream_base::client, [done](const ErrorCode& e) { done(e); });
    });
    if (ec == asio::error::timed_out) {
      // A peer that takes the connection and never answers (found in
      // review, session 20: retried as a connection error, the call took
      // four timeouts).
      return absl::DeadlineExceededError(StrCat("TLS handshake with ", options_.host, ":", options_.port,
                                                ": no answer within ", options_.timeout_ms, " ms"));
    }
    // A connection lost mid-handshake (a server stopping or restarting) is
    // retried like any lost connection. Anything else (a refused
    // certificate, a server without TLS) would fail the next connection
    // alike: not a connection error, not retried.
    if (ec == asio::error::eof || ec == asio::ssl::error::stream_truncated ||
        ec == asio::error::connection_reset || ec == asio::error::connection_aborted ||
        ec == asio::error::broken_pipe) {
      return ConnectionError("TLS handshake", ec);
    }
    if (ec) {
      return absl::UnavailableError(
          StrCat("TLS handshake with ", options_.host, ":", options_.port, ": ", ec.message()));
    }
    return absl::OkStatus();
  }

  absl::Status Hello() {
    fbb_.Clear();
    const auto body = wire::CreateHelloDirect(fbb_, kProtocolVersion, options_.api_key.c_str(),
                                              options_.client_name.c_str());
    FinishRequest(fbb_, /*request_id=*/0, wire::RequestBody::Hello, body.Union());
    PL_RETURN_IF_ERROR(
        WriteAll(std::span<const uint8_t>(fbb_.GetBufferPointer(), fbb_.GetSize())));
    PL_ASSIGN_OR_RETURN(const wire::Response* r, ReadResponse());
    if (r->error() != wire::ConnError::none) {
      const absl::Status s = ConnErrorStatus(r->error(), View(r->message()));
      // server_busy here is connections_max: worth another try.
      if (s.code() == absl::StatusCode::kUnavailable) {
        return absl::UnavailableError(StrCat("connection: ", std::string(s.message())));
      }
      return s;
    }
    const wire::HelloOk* ok = r->body_as_HelloOk();
    if (ok == nullptr) return Unexpected();
    principal_ = std::string(View(ok->principal()));
    batch_transactions_max_ = std::clamp<uint32_t>(
        ok->batch_transactions_max(), 1, static_cast<uint32_t>(ledger::kBatchTransactionsMax));
    frame_bytes_max_ = std::max<uint32_t>(ok->frame_bytes_max(), kFrameBytesMinCap);
    return absl::OkStatus();
  }

  // Closes the sockets, which makes a pending operation complete with an
  // error; the stream objects stay, since that operation still uses them.
  void CancelTransport() {
    ErrorCode ignored;
    if (tls_) tls_->lowest_layer().close(ignored);
    if (socket_) socket_->close(ignored);
  }

  void CloseTransport() {
    KeepAnswersRead();
    connected_ = false;
    CancelTransport();
    tls_.reset();
    socket_.reset();
    in_begin_ = in_end_ = 0;
  }

  // After a frame the client cannot believe (another request's answer, a
  // bad frame): what follows it in in_ is not kept either.
  void DropInput() { in_begin_ = in_end_ = 0; }

  // Answers to pending batches that were already read into in_ (one read
  // takes what has arrived, several answers at once): a closing transport
  // would throw them away and their batches would be resent, to answer
  // `duplicate` for this client's own first attempt (found in review,
  // session 30). Kept in buffered_ instead, in order; stops at the first
  // frame that is incomplete, bad, or not the next batch's answer.
  void KeepAnswersRead() {
    while (!pending_.empty() && pending_.front().batch_size > 0) {
      const size_t available = in_end_ - in_begin_;
      if (available < kFrameHeaderBytes) return;
      const uint32_t length = DecodeFrameLength(in_.data() + in_begin_);
      const size_t frame_bytes = kFrameHeaderBytes + length;
      if (length > kResponseBytesMax || available < frame_bytes) return;
      if (reinterpret_cast<uintptr_t>(in_.data() + in_begin_) % 8 != 0) Compact();
      absl::StatusOr<const wire::Response*> r =
          VerifyResponseFrame(std::span<const uint8_t>(in_.data() + in_begin_, frame_bytes));
      if (!r.ok() || (*r)->request_id() != pending_.front().request_id) return;
      buffered_.push_back(ToBatchAnswer(Answer{pending_.front().request_id, pending_.front().batch_size, *r}));
      pending_.pop_front();
      in_begin_ += frame_bytes;
    }
  }

  // ---- Bytes, each operation bounded by timeout_ms.

  using Deadline = std::chrono::steady_clock::time_point;
  Deadline FromNow() const {
    return std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.timeout_ms);
  }

  // Starts an operation with start(done) and runs it to completion or the
  // deadline (which closes the transport and reports timed_out).
  template <typename StartFn>
  ErrorCode RunTimed(StartFn start) {
    return RunTimed(start, FromNow());
  }
  template <typename StartFn>
  ErrorCode RunTimed(StartFn start, Deadline deadline) {
    ErrorCode result = asio::error::would_block;
    start([&result](const ErrorCode& ec) { result = ec; });
    io_.restart();
    io_.run_until(deadline);
    if (result == asio::error::would_block) {
      // The operation is cancelled and run to its end before the streams
      // go: a TLS handshake's handler read the stream after it was freed
      // (found by AddressSanitizer, session 20).
      CancelTransport();
      io_.restart();
      io_.run();
      CloseTransport();
      return asio::error::timed_out;
    }
    return result;
  }

  absl::Status WriteAll(std::span<const uint8_t> bytes) {
    const auto buffer = asio::buffer(bytes.data(), bytes.size());
    const ErrorCode ec = RunTimed([&](auto done) {
      auto handler = [done](const ErrorCode& e, size_t) { done(e); };
      if (tls_) {
        asio::async_write(*tls_, buffer, handler);
      } else {
        asio::async_write(*socket_, buffer, handler);
      }
    });
    if (ec == asio::error::timed_out) return absl::DeadlineExceededError("write timed out");
    if (ec) return ConnectionError("write", ec);
    return absl::OkStatus();
  }
  absl::Status WriteAll(const flatbuffers::DetachedBuffer& frame) {
    return WriteAll(std::span<const uint8_t>(frame.data(), frame.size()));
  }

  absl::Status ReadSome(Deadline deadline) {
    if (in_end_ == in_.size()) {
      PL_CHECK(in_begin_ > 0);
      Compact();
    }
    size_t n = 0;
    const auto buffer = asio::buffer(in_.data() + in_end_, in_.size() - in_end_);
    const ErrorCode ec = RunTimed([&](auto done) {
      auto handler = [done, &n](const ErrorCode& e, size_t k) {
        n = k;
        done(e);
      };
      if (tls_) {
        tls_->async_read_some(buffer, handler);
      } else {
        socket_->async_read_some(buffer, handler);
      }
    }, deadline);
    if (ec == asio::error::timed_out) {
      return absl::DeadlineExceededError(
          StrCat("no answer within ", options_.timeout_ms, " ms"));
    }
    if (ec) return ConnectionError("read", ec);
    in_end_ += n;
    return absl::OkStatus();
  }

  void Compact() {
    std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }

  // The next verified frame; valid until the next call. timeout_ms bounds
  // the whole frame, not each read of it: a peer that trickles a byte at a
  // time cannot stretch it.
  absl::StatusOr<const wire::Response*> ReadResponse() {
    const Deadline deadline = FromNow();
    if (in_begin_ == in_end_) in_begin_ = in_end_ = 0;
    for (;;) {
      const size_t available = in_end_ - in_begin_;
      if (available >= kFrameHeaderBytes) {
        const uint32_t length = DecodeFrameLength(in_.data() + in_begin_);
        if (length > kResponseBytesMax) {
          DropInput();
          CloseTransport();
          return absl::DataLossError(StrCat("the server sent a frame of ", length, " bytes (more than ",
                                            kResponseBytesMax, "): is ", options_.host, ":",
                                            options_.port, " a pointledgerd?"));
        }
        const size_t frame_bytes = kFrameHeaderBytes + length;
        if (available >= frame_bytes) {
          if (reinterpret_cast<uintptr_t>(in_.data() + in_begin_) % 8 != 0) {
            Compact();
            continue;
          }
          const std::span<const uint8_t> frame(in_.data() + in_begin_, frame_bytes);
          in_begin_ += frame_bytes;
          absl::StatusOr<const wire::Response*> r = VerifyResponseFrame(frame);
          if (!r.ok()) {
            DropInput();
            CloseTransport();
            return absl::DataLossError(StrCat("bad answer from the server: ",
                                              std::string(r.status().message()), " (is ", options_.host,
                                              ":", options_.port, " a pointledgerd?)"));
          }
          return r;
        }
        if (in_.size() - in_begin_ < frame_bytes) {
          Compact();
          if (in_.size() < frame_bytes) in_.resize(frame_bytes);
        }
      }
      PL_RETURN_IF_ERROR(ReadSome(deadline));
    }
  }

  const ClientOptions options_;
  asio::io_context io_{1};
  std::unique_ptr<asio::ssl::context> tls_context_;
  std::unique_ptr<tcp::socket> socket_;  // plain, or before the TLS handshake
  std::unique_ptr<TlsStream> tls_;
  bool connected_ = false;

  std::string principal_;
  uint32_t batch_transactions_max_ = static_cast<uint32_t>(ledger::kBatchTransactionsMax);
  uint32_t frame_bytes_max_ = kFrameBytesMaxDefault;

  uint64_t next_request_id_ = 1;  // 0 is Hello's
  std::deque<Pending> pending_;
  std::deque<BatchAnswer> buffered_;  // answered, not yet Received

  flatbuffers::FlatBufferBuilder fbb_;
  std::vector<flatbuffers::Offset<wire::Transaction>> offsets_;
  std::vector<uint8_t> in_;
  size_t in_begin_ = 0;
  size_t in_end_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Client>> Client::Connect(const ClientOptions& options) {
  auto client = std::make_unique<ClientImpl>(options);
  absl::Status s = client->Open();
  // A refused connection (server starting, connections_max) is retried like
  // any other connection error.
  for (int attempt = 0; !s.ok() && IsConnectionError(s) && attempt < options.reconnect_attempts;
       ++attempt) {
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::min(100 << std::min(attempt, 8), kReconnectBackoffMsMax)));
    s = client->Open();
  }
  if (!s.ok()) return s;
  return std::unique_ptr<Client>(std::move(client));
}

absl::Status ParseServerAddress(std::string_view text, ClientOptions* options) {
  const size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return absl::InvalidArgumentError(
        StrCat("server address \"", text, "\": expected HOST:PORT, e.g. 127.0.0.1:7600"));
  }
  std::string_view host = text.substr(0, colon);
  const std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] =
      std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(StrCat("server address \"", text, "\": bad port"));
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  options->host = std::string(host);
  options->port = static_cast<uint16_t>(port);
  return absl::OkStatus();
}

}  // namespace pointledger::net
