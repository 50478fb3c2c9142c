#include "ledger/codec.h"

#include "ledger/limits.h"

namespace pointledger::ledger {

namespace {

void EncodeTransaction(const Transaction& t, ByteWriter& w) {
  w.IdBytes(t.id);
  w.U8(static_cast<uint8_t>(t.kind));
  w.U8(t.linked ? 1 : 0);
  w.Str(t.program);
  w.Str(t.member);
  w.Str(t.member2);
  w.Str(t.partner);
  w.U64(t.points);
  w.U64(t.points2);
  w.I64(t.delta);
  w.IdBytes(t.ref);
  w.I64(t.time_ns);
  w.I32(t.lock_days);
  w.U32(t.timeout_s);
  w.U8(t.clawback_partial ? 1 : 0);
  w.Str(t.currency);
  w.U64(t.point_value_micros);
  w.U32(t.expiry_days);
  w.U8(t.auto_open ? 1 : 0);
  w.U64(t.earn_price_micros);
  w.U64(t.redeem_price_micros);
  w.U64(t.lot_seq);
  w.U32(t.lot_index);
  w.Str(t.order_ref);
  w.Str(t.reason);
  w.Str(t.metadata);
}

void DecodeTransaction(ByteReader& r, Transaction* t) {
  t->id = r.IdBytes();
  const uint8_t kind = r.U8();
  t->kind = static_cast<Kind>(kind);
  t->linked = r.U8() != 0;
  t->program = r.Str();
  t->member = r.Str();
  t->member2 = r.Str();
  t->partner = r.Str();
  t->points = r.U64();
  t->points2 = r.U64();
  t->delta = r.I64();
  t->ref = r.IdBytes();
  t->time_ns = r.I64();
  t->lock_days = r.I32();
  t->timeout_s = r.U32();
  t->clawback_partial = r.U8() != 0;
  t->currency = r.Str();
  t->point_value_micros = r.U64();
  t->expiry_days = r.U32();
  t->auto_open = r.U8() != 0;
  t->earn_price_micros = r.U64();
  t->redeem_price_micros = r.U64();
  t->lot_seq = r.U64();
  t->lot_index = r.U32();
  t->order_ref = r.Str();
  t->reason = r.Str();
  t->metadata = r.Str();
}

}  // namespace

void EncodeRecord(const TxRecord& rec, std::string* out) {
  ByteWriter w(out);
  PL_CHECK(rec.format >= kRecordFormatMin && rec.format <= kRecordFormat);
  w.U8(rec.format);
  w.U64(rec.seq);
  w.I64(rec.timestamp_ns);
  EncodeTransaction(rec.tx, w);
  w.U8(static_cast<uint8_t>(rec.result.code));
  w.U64(rec.result.points);
  PL_CHECK(rec.postings.size() < 256);
  w.U8(static_cast<uint8_t>(rec.postings.size()));
  for (const Posting& p : rec.postings) {
    w.IdBytes(p.debit);
    w.IdBytes(p.credit);
    w.U64(p.points);
    w.U8(static_cast<uint8_t>(p.type));
  }
  const std::optional<Statement>& statement = rec.statement;
  w.U8(statement ? 1 : 0);
  if (statement) {
    w.I64(statement->from_ns);
    w.I64(statement->to_ns);
    w.I64(statement->earned_points);
    w.I64(statement->redeemed_points);
    w.I64(statement->partner_owes_micros);
    w.I64(statement->program_owes_micros);
    w.I64(statement->net_micros);
  }
}

bool DecodeRecord(std::string_view bytes, TxRecord* rec) {
  ByteReader r(bytes);
  rec->format = r.U8();
  if (rec->format < kRecordFormatMin || rec->format > kRecordFormat) return false;
  rec->seq = r.U64();
  rec->timestamp_ns = r.I64();
  DecodeTransaction(r, &rec->tx);
  const uint8_t code = r.U8();
  if (code > kCodeMax) return false;
  const auto kind = static_cast<uint8_t>(rec->tx.kind);
  if (kind < 1 || kind > kKindMax) return false;
  rec->result = Result{};
  rec->result.code = static_cast<Code>(code);
  rec->result.points = r.U64();
  rec->result.seq = rec->seq;
  rec->result.timestamp_ns = rec->timestamp_ns;
  const uint8_t posting_count = r.U8();
  rec->postings.clear();
  for (uint8_t i = 0; i < posting_count && r.ok(); ++i) {
    Posting p;
    p.debit = r.IdBytes();
    p.credit = r.IdBytes();
    p.points = r.U64();
    const uint8_t type = r.U8();
    if (type > 2) return false;
    p.type = static_cast<PostingType>(type);
    rec->postings.push_back(p);
  }
  const uint8_t has_statement = r.U8();
  if (has_statement > 1) return false;
  rec->statement.reset();
  if (has_statement == 1) {
    Statement& s = rec->statement.emplace();
    s.program = rec->tx.program;
    s.partner = rec->tx.partner;
    s.from_ns = r.I64();
    s.to_ns = r.I64();
    s.earned_points = r.I64();
    s.redeemed_points = r.I64();
    s.partner_owes_micros = r.I64();
    s.program_owes_micros = r.I64();
    s.net_micros = r.I64();
    s.payer = s.net_micros > 0 ? "partner" : s.net_micros < 0 ? "program" : "none";
  }
  return r.done();
}

std::string_view AccountKindName(AccountKind kind) {
  switch (kind) {
    case AccountKind::kMember: return "member";
    case AccountKind::kIssuance: return "issuance";
    case AccountKind::kRedemption: return "redemption";
    case AccountKind::kReferral: return "referral";
    case AccountKind::kAdjustment: return "adjustment";
    case AccountKind::kBreakage: return "breakage";
    case AccountKind::kHolds: return "holds";
    case AccountKind::kPartner: return "partner";
  }
  return "unknown";
}

void EncodeAccount(const AccountRec& a, std::string* out) {
  ByteWriter w(out);
  w.U8(static_cast<uint8_t>(a.kind));
  w.U8(a.closed ? 1 : 0);
  w.U64(a.debits_posted);
  w.U64(a.credits_posted);
  w.U64(a.debits_pending);
  w.U64(a.credits_pending);
  w.Str(a.program);
  w.Str(a.name);
}

bool DecodeAccount(std::string_view bytes, AccountRec* a) {
  ByteReader r(bytes);
  const uint8_t kind = r.U8();
  if (kind > static_cast<uint8_t>(AccountKind::kPartner)) return false;
  a->kind = static_cast<AccountKind>(kind);
  a->closed = r.U8() != 0;
  a->debits_posted = r.U64();
  a->credits_posted = r.U64();
  a->debits_pending = r.U64();
  a->credits_pending = r.U64();
  a->program = r.Str();
  a->name = r.Str();
  return r.done();
}

void EncodeProgram(const ProgramRec& p, std::string* out) {
  ByteWriter w(out);
  w.Str(p.currency);
  w.U64(p.point_value_micros);
  w.U32(p.expiry_days);
  w.U32(p.lock_days);
  w.U8(p.auto_open ? 1 : 0);
}

bool DecodeProgram(std::string_view bytes, ProgramRec* p) {
  ByteReader r(bytes);
  p->currency = r.Str();
  p->point_value_micros = r.U64();
  p->expiry_days = r.U32();
  p->lock_days = r.U32();
  p->auto_open = r.U8() != 0;
  // Every stored program passed CheckAmounts' bounds when it was created,
  // and the engine's time arithmetic relies on them (ts + expiry_days
  // days cannot overflow: limits.h). A row past them is damage, not a
  // program: before, an earn under a programs row whose expiry_days had
  // been changed overflowed int64 (undefined behaviour; found by the state
  // fuzz target, session 25).
  return r.done() && p->expiry_days <= kExpiryDaysMax &&
         p->lock_days <= static_cast<uint32_t>(kLockDaysMax) &&
         p->point_value_micros <= kPriceMicrosMax;
}

void EncodePieces(const std::vector<Piece>& pieces, std::string* out) {
  ByteWriter w(out);
  w.U32(static_cast<uint32_t>(pieces.size()));
  for (const Piece& p : pieces) {
    w.I64(p.expires_at_ns);
    w.U64(p.points);
  }
}

namespace {
bool ReadPieces(ByteReader& r, std::vector<Piece>* pieces) {
  const uint32_t n = r.U32();
  pieces->clear();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    Piece p;
    p.expires_at_ns = r.I64();
    p.points = r.U64();
    pieces->push_back(p);
  }
  return r.ok();
}
}  // namespace

bool DecodePieces(std::string_view bytes, std::vector<Piece>* pieces) {
  ByteReader r(bytes);
  return ReadPieces(r, pieces) && r.done();
}

std::string LotKey(const Id& account, int64_t expires_at_ns, uint64_t seq, uint32_t index) {
  std::string key;
  key.reserve(kLotKeyBytes);
  AppendLotKey(account, expires_at_ns, seq, index, &key);
  return key;
}

void AppendLotKey(const Id& account, int64_t expires_at_ns, uint64_t seq, uint32_t index,
                  std::string* out) {
  ByteWriter w(out);
  w.IdBytes(account);
  w.BeI64(expires_at_ns);
  w.BeU64(seq);
  w.BeU32(index);
}

bool DecodeLotKey(std::string_view key, Id* account, LotInfo* lot) {
  if (key.size() != kLotKeyBytes) return false;
  ByteReader r(key);
  *account = r.IdBytes();
  lot->expires_at_ns = r.BeI64();
  lot->source_seq = r.BeU64();
  lot->index = r.BeU32();
  return r.done();
}

void EncodeHold(const HoldRec& h, std::string* out) {
  ByteWriter w(out);
  w.Str(h.program);
  w.IdBytes(h.member);
  w.U8(static_cast<uint8_t>(h.state));
  w.U64(h.amount);
  w.I64(h.deadline_ns);
  w.U64(h.hold_seq);
  EncodePieces(h.pieces, out);
  // Both absent when 0 and empty (a hold of format 4 and before, or of
  // format 5 to 7 not captured, reads as it was written); the sources
  // (format 8) come after a capture_seq, 0 or not.
  if (h.capture_seq != 0 || !h.sources.empty()) w.U64(h.capture_seq);
  for (const HoldRec::Source& s : h.sources) {
    w.U64(s.seq);
    w.U32(s.index);
  }
}

bool DecodeHold(std::string_view bytes, HoldRec* h) {
  ByteReader r(bytes);
  h->program = r.Str();
  h->member = r.IdBytes();
  const uint8_t state = r.U8();
  if (state > 3) return false;
  h->state = static_cast<HoldState>(state);
  h->amount = r.U64();
  h->deadline_ns = r.I64();
  h->hold_seq = r.U64();
  if (!ReadPieces(r, &h->pieces)) return false;
  h->capture_seq = r.done() ? 0 : r.U64();
  h->sources.clear();
  if (!r.done()) {
    h->sources.resize(h->pieces.size());
    for (HoldRec::Source& s : h->sources) {
      s.seq = r.U64();
      s.index = r.U32();
      // A lot the hold took from was made before it.
      if (s.seq == 0 || s.seq >= h->hold_seq) return false;
    }
  }
  return r.done() && (h->capture_seq == 0 || h->state == HoldState::kCaptured);
}

std::string BeU64Key(uint64_t v) {
  std::string key;
  ByteWriter(&key).BeU64(v);
  return key;
}

}  // namespace pointledger::ledger
