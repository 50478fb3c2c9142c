#include "net/wire.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "flatbuffers/util.h"
#include "ledger/status.h"
#include "net/limits.h"

namespace pointledger::net {

namespace {

absl::Status Malformed(std::string_view what) {
  return absl::InvalidArgumentError(StrCat("malformed_request: ", what));
}

// Every Verifier option is set here, explicitly (STYLE.md). FlatBuffers
// 2.0.8's Options has no max_size: the size bound is the frame length,
// which the caller has already checked against frame_bytes_max.
flatbuffers::Verifier::Options VerifierOptions() {
  flatbuffers::Verifier::Options options;
  options.max_depth = kVerifierDepthMax;
  options.max_tables = kVerifierTablesMax;
  options.check_alignment = true;
  options.check_nested_flatbuffers = false;  // we have no nested buffers
  return options;
}

bool Aligned(const uint8_t* p) { return reinterpret_cast<uintptr_t>(p) % 8 == 0; }

void Assign(const flatbuffers::String* s, std::string* out) {
  if (s == nullptr) {
    out->clear();
  } else {
    out->assign(s->data(), s->size());
  }
}

void AssignUpTo(const flatbuffers::String* s, size_t limit, std::string* out) {
  if (s == nullptr) {
    out->clear();
  } else {
    out->assign(s->data(), std::min<size_t>(s->size(), limit + 1));
  }
}

flatbuffers::Offset<flatbuffers::String> StringOrNull(flatbuffers::FlatBufferBuilder& fbb,
                                                      std::string_view s) {
  if (s.empty()) return 0;
  return fbb.CreateString(s.data(), s.size());
}

bool CodeInRange(wire::Code code) {
  return static_cast<int>(code) <= ledger::kCodeMax;
}

}  // namespace

absl::StatusOr<const wire::Request*> VerifyRequestFrame(std::span<const uint8_t> frame) {
  PL_CHECK(Aligned(frame.data()));
  flatbuffers::Verifier verifier(frame.data(), frame.size(), VerifierOptions());
  if (!wire::VerifySizePrefixedRequestBuffer(verifier)) {
    // The commonest mistake of a hand-made client (found in review, session
    // 30): a buffer finished without its size prefix, the length prepended
    // after. Its 8-byte fields are then 4 bytes off their alignment counted
    // from the prefix, and only frames that hold one (a request_id but 0)
    // fail. Say so, rather than leave the peer a bare "malformed".
    // Such a buffer is well formed after the prefix: verified there, from
    // a copy in 8-aligned memory. (Verified in place without the alignment
    // check, as until session 32, the verifier read misaligned fields:
    // undefined behaviour, found by the frame fuzz target.) Malformed
    // frames close the connection, so the copy is paid once per one.
    constexpr size_t kPrefix = sizeof(flatbuffers::uoffset_t);
    const size_t body = frame.size() > kPrefix ? frame.size() - kPrefix : 0;
    std::vector<uint64_t> copy((body + 7) / 8);
    if (body > 0) std::memcpy(copy.data(), frame.data() + kPrefix, body);
    flatbuffers::Verifier second(reinterpret_cast<const uint8_t*>(copy.data()), body, VerifierOptions());
    if (body > 0 && wire::VerifyRequestBuffer(second)) {
      return Malformed(
          "a Request whose 8-byte fields are not 8-byte aligned counted from the frame's length prefix: "
          "finish the buffer with FinishSizePrefixedRequestBuffer, not Finish with the length prepended "
          "(docs/protocol.md)");
    }
    return Malformed("not a Request that passes the FlatBuffers verifier");
  }
  const wire::Request* request = wire::GetSizePrefixedRequest(frame.data());
  // The verifier accepts union tags it does not know (a newer peer's).
  if (request->body_type() == wire::RequestBody::NONE ||
      request->body_type() > wire::RequestBody::MAX || request->body() == nullptr) {
    return Malformed("unknown or missing request body");
  }
  return request;
}

absl::StatusOr<const wire::Response*> VerifyResponseFrame(std::span<const uint8_t> frame) {
  PL_CHECK(Aligned(frame.data()));
  flatbuffers::Verifier verifier(frame.data(), frame.size(), VerifierOptions());
  if (!wire::VerifySizePrefixedResponseBuffer(verifier)) {
    return Malformed("not a Response that passes the FlatBuffers verifier");
  }
  const wire::Response* response = wire::GetSizePrefixedResponse(frame.data());
  if (response->body_type() > wire::ResponseBody::MAX ||
      response->error() > wire::ConnError::MAX) {
    return Malformed("unknown response body or error");
  }
  return response;
}

// ---------------------------------------------------------------------------

absl::Status TransactionFromWire(const wire::Transaction& in, ledger::Transaction* out) {
  const flatbuffers::Optional<wire::Kind> kind = in.kind();
  if (!kind.has_value()) return Malformed("a transaction without a kind");
  const int k = static_cast<int>(*kind);
  if (k < 1 || k > ledger::kKindMax) return Malformed(StrCat("unknown transaction kind ", k));
  out->id = IdFromWire(in.id());
  out->kind = static_cast<ledger::Kind>(k);
  out->linked = in.linked();
  // Each string field is copied up to one byte past its limit: enough for
  // the ledger to answer field_too_long, and no more. The Verifier lets
  // every field of 8,190 transactions point at one long string, so
  // copying whole fields let a 49 KB frame cost the server gigabytes
  // (found by a hostile-client review, session 19).
  AssignUpTo(in.program(), ledger::kNameBytesMax, &out->program);
  AssignUpTo(in.member(), ledger::kMemberKeyBytesMax, &out->member);
  AssignUpTo(in.member2(), ledger::kMemberKeyBytesMax, &out->member2);
  AssignUpTo(in.partner(), ledger::kNameBytesMax, &out->partner);
  out->points = in.points();
  out->points2 = in.points2();
  out->delta = in.delta();
  out->ref = IdFromWire(in.ref());
  out->time_ns = in.time_ns();
  out->lock_days = in.lock_days();
  out->timeout_s = in.timeout_s();
  out->clawback_partial = in.clawback_partial();
  AssignUpTo(in.currency(), ledger::kCurrencyBytes, &out->currency);
  out->point_value_micros = in.point_value_micros();
  out->expiry_days = in.expiry_days();
  out->auto_open = in.auto_open();
  out->earn_price_micros = in.earn_price_micros();
  out->redeem_price_micros = in.redeem_price_micros();
  out->lot_seq = in.lot_seq();
  out->lot_index = in.lot_index();
  AssignUpTo(in.order_ref(), ledger::kOrderRefBytesMax, &out->order_ref);
  AssignUpTo(in.reason(), ledger::kReasonBytesMax, &out->reason);
  AssignUpTo(in.metadata(), ledger::kMetadataBytesMax, &out->metadata);
  return absl::OkStatus();
}

bool IsValidUtf8(std::string_view text) {
  const std::string s(text);  // FromUTF8 stops at the terminating NUL
  const char* p = s.c_str();
  const char* end = p + s.size();
  while (p < end) {
    if (flatbuffers::FromUTF8(&p) < 0) return false;
  }
  return p == end;
}

flatbuffers::Offset<wire::Transaction> TransactionToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                         const ledger::Transaction& tx) {
  // Strings first: a table is built in one go after its children.
  const auto program = StringOrNull(fbb, tx.program);
  const auto member = StringOrNull(fbb, tx.member);
  const auto member2 = StringOrNull(fbb, tx.member2);
  const auto partner = StringOrNull(fbb, tx.partner);
  const auto currency = StringOrNull(fbb, tx.currency);
  const auto order_ref = StringOrNull(fbb, tx.order_ref);
  const auto reason = StringOrNull(fbb, tx.reason);
  const auto metadata = StringOrNull(fbb, tx.metadata);
  const wire::Id128 id = IdToWire(tx.id);
  const wire::Id128 ref = IdToWire(tx.ref);
  return wire::CreateTransaction(
      fbb, &id, static_cast<wire::Kind>(tx.kind), tx.linked, program, member, member2, partner,
      tx.points, tx.points2, tx.delta, ledger::IsZero(tx.ref) ? nullptr : &ref, tx.time_ns,
      tx.lock_days, tx.timeout_s, tx.clawback_partial, currency, tx.point_value_micros,
      tx.expiry_days, tx.auto_open, tx.earn_price_micros, tx.redeem_price_micros, tx.lot_seq,
      tx.lot_index, order_ref, reason, metadata);
}

// ---------------------------------------------------------------------------

flatbuffers::Offset<wire::Result> ResultToWire(flatbuffers::FlatBufferBuilder& fbb,
                                               const ledger::Result& r) {
  const auto conflict = StringOrNull(fbb, r.conflict_field);
  return wire::CreateResult(fbb, static_cast<wire::Code>(r.code), r.duplicate, r.seq,
                            r.timestamp_ns, r.points, conflict);
}

absl::Status ResultFromWire(const wire::Result& in, ledger::Result* out) {
  if (!CodeInRange(in.code())) {
    return Malformed(StrCat("unknown result code ", static_cast<int>(in.code())));
  }
  out->code = static_cast<ledger::Code>(in.code());
  out->duplicate = in.duplicate();
  out->seq = in.seq();
  out->timestamp_ns = in.timestamp_ns();
  out->points = in.points();
  Assign(in.conflict_field(), &out->conflict_field);
  return absl::OkStatus();
}

flatbuffers::Offset<wire::Balance> BalanceToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                 std::string_view program,
                                                 std::string_view member,
                                                 const ledger::Balance& b) {
  const auto p = StringOrNull(fbb, program);
  const auto m = StringOrNull(fbb, member);
  std::vector<flatbuffers::Offset<wire::ExpiringLot>> lots;
  lots.reserve(b.expiring.size());
  for (const ledger::ExpiringLot& lot : b.expiring) {
    lots.push_back(wire::CreateExpiringLot(fbb, lot.expires_at_ns, lot.points));
  }
  const auto expiring = fbb.CreateVector(lots);
  return wire::CreateBalance(fbb, wire::Code::ok, p, m, b.posted, b.pending, b.locked,
                             b.expired, b.available, b.closed, expiring, b.debits_posted,
                             b.credits_posted, b.debits_pending, b.credits_pending);
}

ledger::Balance BalanceFromWire(const wire::Balance& in) {
  ledger::Balance b;
  b.debits_posted = in.debits_posted();
  b.credits_posted = in.credits_posted();
  b.debits_pending = in.debits_pending();
  b.credits_pending = in.credits_pending();
  b.posted = in.posted();
  b.pending = in.pending();
  b.locked = in.locked();
  b.expired = in.expired();
  b.available = in.available();
  b.closed = in.closed();
  if (in.expiring() != nullptr) {
    b.expiring.reserve(in.expiring()->size());
    for (const wire::ExpiringLot* lot : *in.expiring()) {
      b.expiring.push_back(ledger::ExpiringLot{lot->at_ns(), lot->points()});
    }
  }
  return b;
}

flatbuffers::Offset<wire::HistoryEntry> HistoryEntryToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                           const ledger::HistoryEntry& e) {
  const wire::Id128 id = IdToWire(e.id);
  return wire::CreateHistoryEntry(fbb, e.seq, e.timestamp_ns, static_cast<wire::Kind>(e.kind),
                                  e.points, &id);
}

absl::StatusOr<ledger::HistoryEntry> HistoryEntryFromWire(const wire::HistoryEntry& in) {
  const flatbuffers::Optional<wire::Kind> kind = in.kind();
  if (!kind.has_value() || static_cast<int>(*kind) < 1 ||
      static_cast<int>(*kind) > ledger::kKindMax) {
    return Malformed("history entry with an unknown kind");
  }
  ledger::HistoryEntry e;
  e.seq = in.seq();
  e.timestamp_ns = in.timestamp_ns();
  e.id = IdFromWire(in.id());
  e.kind = static_cast<ledger::Kind>(*kind);
  e.points = in.points();
  return e;
}

flatbuffers::Offset<wire::TxRecord> TxRecordToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                   const ledger::TxRecord& rec) {
  const auto tx = TransactionToWire(fbb, rec.tx);
  const auto result = ResultToWire(fbb, rec.result);
  std::vector<wire::Posting> postings;
  postings.reserve(rec.postings.size());
  for (const ledger::Posting& p : rec.postings) {
    postings.emplace_back(IdToWire(p.debit), IdToWire(p.credit), p.points,
                          static_cast<wire::PostingType>(p.type));
  }
  const auto posting_vector = fbb.CreateVectorOfStructs(postings);
  const auto hash = fbb.CreateVector(rec.hash.data(), rec.hash.size());
  const auto statement =
      rec.statement ? StatementToWire(fbb, *rec.statement) : flatbuffers::Offset<wire::Statement>();
  return wire::CreateTxRecord(fbb, wire::Code::ok, rec.seq, rec.timestamp_ns, tx, result,
                              posting_vector, hash, statement);
}

absl::StatusOr<ledger::TxRecord> TxRecordFromWire(const wire::TxRecord& in) {
  ledger::TxRecord rec;
  rec.seq = in.seq();
  rec.timestamp_ns = in.timestamp_ns();
  if (in.transaction() == nullptr || in.result() == nullptr) {
    return Malformed("transaction record without its transaction or result");
  }
  PL_RETURN_IF_ERROR(TransactionFromWire(*in.transaction(), &rec.tx));
  PL_RETURN_IF_ERROR(ResultFromWire(*in.result(), &rec.result));
  if (in.postings() != nullptr) {
    for (const wire::Posting* p : *in.postings()) {
      if (static_cast<int>(p->type()) > static_cast<int>(ledger::PostingType::kVoid)) {
        return Malformed("posting with an unknown type");
      }
      rec.postings.push_back(ledger::Posting{IdFromWire(&p->debit()), IdFromWire(&p->credit()),
                                             p->points(),
                                             static_cast<ledger::PostingType>(p->type())});
    }
  }
  if (in.hash() == nullptr || in.hash()->size() != rec.hash.size()) {
    return Malformed("transaction record without a 32-byte hash");
  }
  std::memcpy(rec.hash.data(), in.hash()->data(), rec.hash.size());
  if (in.statement() != nullptr) rec.statement = StatementFromWire(*in.statement());
  return rec;
}

flatbuffers::Offset<wire::Statement> StatementToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                     const ledger::Statement& s) {
  const auto program = StringOrNull(fbb, s.program);
  const auto partner = StringOrNull(fbb, s.partner);
  const auto payer = StringOrNull(fbb, s.payer);
  return wire::CreateStatement(fbb, wire::Code::ok, program, partner, s.from_ns, s.to_ns,
                               s.earned_points, s.redeemed_points, s.partner_owes_micros,
                               s.program_owes_micros, s.net_micros, payer);
}

ledger::Statement StatementFromWire(const wire::Statement& in) {
  ledger::Statement s;
  s.program = std::string(View(in.program()));
  s.partner = std::string(View(in.partner()));
  s.from_ns = in.from_ns();
  s.to_ns = in.to_ns();
  s.earned_points = in.earned_points();
  s.redeemed_points = in.redeemed_points();
  s.partner_owes_micros = in.partner_owes_micros();
  s.program_owes_micros = in.program_owes_micros();
  s.net_micros = in.net_micros();
  s.payer = std::string(View(in.payer()));
  return s;
}

flatbuffers::Offset<wire::Head> HeadToWire(flatbuffers::FlatBufferBuilder& fbb,
                                           const ledger::ChainHead& head) {
  const auto hash = fbb.CreateVector(head.hash.data(), head.hash.size());
  return wire::CreateHead(fbb, head.seq, hash, head.timestamp_ns, wire::Code::ok);
}

absl::StatusOr<ledger::ChainHead> HeadFromWire(const wire::Head& in) {
  ledger::ChainHead head;
  head.seq = in.seq();
  head.timestamp_ns = in.timestamp_ns();
  if (in.hash() == nullptr || in.hash()->size() != head.hash.size()) {
    return Malformed("head without a 32-byte hash");
  }
  std::memcpy(head.hash.data(), in.hash()->data(), head.hash.size());
  return head;
}

std::string_view ConnErrorName(wire::ConnError error) {
  switch (error) {
    case wire::ConnError::none: return "none";
    case wire::ConnError::unauthorized: return "unauthorized";
    case wire::ConnError::malformed_request: return "malformed_request";
    case wire::ConnError::request_too_large: return "request_too_large";
    case wire::ConnError::batch_too_large: return "batch_too_large";
    case wire::ConnError::unsupported_version: return "unsupported_version";
    case wire::ConnError::server_busy: return "server_busy";
  }
  return "unknown_error";
}

void FinishResponse(flatbuffers::FlatBufferBuilder& fbb, uint64_t request_id,
                    wire::ConnError error, std::string_view message,
                    wire::ResponseBody body_type, flatbuffers::Offset<void> body) {
  const auto m = StringOrNull(fbb, message);
  const auto response =
      wire::CreateResponse(fbb, /*version=*/1, request_id, error, m, body_type, body);
  wire::FinishSizePrefixedResponseBuffer(fbb, response);
}

void FinishRequest(flatbuffers::FlatBufferBuilder& fbb, uint64_t request_id,
                   wire::RequestBody body_type, flatbuffers::Offset<void> body) {
  const auto request = wire::CreateRequest(fbb, /*version=*/1, request_id, body_type, body);
  wire::FinishSizePrefixedRequestBuffer(fbb, request);
}

flatbuffers::Offset<wire::Liability> LiabilityToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                     const ledger::Liability& l) {
  std::vector<flatbuffers::Offset<wire::PartnerMovement>> partners;
  for (const ledger::PartnerMovement& m : l.partners) {
    partners.push_back(wire::CreatePartnerMovement(fbb, StringOrNull(fbb, m.partner),
                                                   m.earned_points, m.redeemed_points));
  }
  const auto partners_vec = fbb.CreateVector(partners);
  const auto program = StringOrNull(fbb, l.program);
  const auto currency = StringOrNull(fbb, l.currency);
  wire::LiabilityBuilder b(fbb);
  b.add_code(wire::Code::ok);
  b.add_program(program);
  b.add_currency(currency);
  b.add_point_value_micros(l.point_value_micros);
  b.add_from_ns(l.from_ns);
  b.add_to_ns(l.to_ns);
  b.add_as_of_ns(l.as_of_ns);
  b.add_as_of_seq(l.as_of_seq);
  b.add_outstanding_points(l.outstanding_points);
  b.add_outstanding_value_micros(l.outstanding_value_micros);
  b.add_expired_unswept_points(l.expired_unswept_points);
  b.add_expiring_30d_points(l.expiring_30d_points);
  b.add_expiring_60d_points(l.expiring_60d_points);
  b.add_expiring_90d_points(l.expiring_90d_points);
  b.add_issued_points(l.issued_points);
  b.add_redeemed_points(l.redeemed_points);
  b.add_reversed_points(l.reversed_points);
  b.add_reversed_issued_points(l.reversed_issued_points);
  b.add_reversed_redeemed_points(l.reversed_redeemed_points);
  b.add_expired_points(l.expired_points);
  b.add_forfeited_points(l.forfeited_points);
  b.add_adjusted_down_points(l.adjusted_down_points);
  b.add_adjusted_up_points(l.adjusted_up_points);
  b.add_breakage_rate(l.breakage_rate);
  b.add_partners(partners_vec);
  return b.Finish();
}

ledger::Liability LiabilityFromWire(const wire::Liability& in) {
  ledger::Liability l;
  l.program = std::string(View(in.program()));
  l.currency = std::string(View(in.currency()));
  l.point_value_micros = in.point_value_micros();
  l.from_ns = in.from_ns();
  l.to_ns = in.to_ns();
  l.as_of_ns = in.as_of_ns();
  l.as_of_seq = in.as_of_seq();
  l.outstanding_points = in.outstanding_points();
  l.outstanding_value_micros = in.outstanding_value_micros();
  l.expired_unswept_points = in.expired_unswept_points();
  l.expiring_30d_points = in.expiring_30d_points();
  l.expiring_60d_points = in.expiring_60d_points();
  l.expiring_90d_points = in.expiring_90d_points();
  l.issued_points = in.issued_points();
  l.redeemed_points = in.redeemed_points();
  l.reversed_points = in.reversed_points();
  l.reversed_issued_points = in.reversed_issued_points();
  l.reversed_redeemed_points = in.reversed_redeemed_points();
  l.expired_points = in.expired_points();
  l.forfeited_points = in.forfeited_points();
  l.adjusted_down_points = in.adjusted_down_points();
  l.adjusted_up_points = in.adjusted_up_points();
  l.breakage_rate = in.breakage_rate();
  if (in.partners() != nullptr) {
    for (const wire::PartnerMovement* m : *in.partners()) {
      l.partners.push_back({std::string(View(m->partner())), m->earned_points(),
                            m->redeemed_points()});
    }
  }
  return l;
}

flatbuffers::Offset<wire::Discrepancies> AuditToWire(flatbuffers::FlatBufferBuilder& fbb,
                                                     const ledger::AuditReport& report) {
  std::vector<flatbuffers::Offset<wire::Discrepancy>> items;
  for (const ledger::Discrepancy& d : report.discrepancies) {
    if (items.size() == ledger::kAuditListedMax) break;
    items.push_back(wire::CreateDiscrepancy(fbb, StringOrNull(fbb, d.what), StringOrNull(fbb, d.where),
                                            StringOrNull(fbb, d.expected),
                                            StringOrNull(fbb, d.found), d.seq));
  }
  const auto items_vec = fbb.CreateVector(items);
  const auto head = HeadToWire(fbb, report.head);
  return wire::CreateDiscrepancies(fbb, wire::Code::ok, head, report.first_bad_seq,
                                   report.discrepancy_count, items_vec, report.rebuild_peak_entries,
                                   report.rebuild_spills);
}

absl::StatusOr<ledger::AuditReport> AuditFromWire(const wire::Discrepancies& in) {
  ledger::AuditReport report;
  if (in.head() != nullptr) {
    PL_ASSIGN_OR_RETURN(report.head, HeadFromWire(*in.head()));
  }
  report.first_bad_seq = in.first_bad_seq();
  report.discrepancy_count = in.count();
  report.rebuild_peak_entries = in.rebuild_peak_rows();
  report.rebuild_spills = in.rebuild_spills();
  if (in.items() != nullptr) {
    for (const wire::Discrepancy* d : *in.items()) {
      report.discrepancies.push_back({std::string(View(d->what())), std::string(View(d->where())),
                                      std::string(View(d->expected())),
                                      std::string(View(d->found())), d->seq()});
    }
  }
  return report;
}

}  // namespace pointledger::net
