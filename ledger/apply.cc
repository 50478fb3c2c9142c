// Transaction semantics: SPEC §2-§4 as refined by docs/semantics.md.
//
// Every kind follows one shape: read and check (no writes), then post into
// the per-transaction account cache (overflow is the last check), then write.
// A rejected transaction therefore never leaves a partial write behind, and
// only linked chains and whole batches need nested LMDB transactions.

#include <algorithm>
#include <cstring>
#include <limits>

#include "ledger/limits.h"
#include "ledger/sha256.h"
#include "ledger/store.h"

namespace pointledger::ledger {

namespace {

bool ValidKey(std::string_view s) { return !s.empty() && s.size() <= kMemberKeyBytesMax; }

bool ValidCurrency(std::string_view s) {
  return s.size() == kCurrencyBytes &&
         std::all_of(s.begin(), s.end(), [](char ch) { return ch >= 'A' && ch <= 'Z'; });
}

bool UsesMember(Kind k) {
  switch (k) {
    case Kind::kEarn: case Kind::kRedeem: case Kind::kReferral: case Kind::kTransfer:
    case Kind::kAdjust: case Kind::kHold: case Kind::kExpire: case Kind::kAccountClose:
    case Kind::kAccountOpen:
      return true;
    default:
      return false;
  }
}

Code CheckFields(const Transaction& t) {
  if (t.member.size() > kMemberKeyBytesMax || t.member2.size() > kMemberKeyBytesMax ||
      t.partner.size() > kNameBytesMax || t.order_ref.size() > kOrderRefBytesMax ||
      t.reason.size() > kReasonBytesMax || t.metadata.size() > kMetadataBytesMax ||
      t.currency.size() > kCurrencyBytes || !IsValidName(t.program)) {
    return Code::kFieldTooLong;
  }
  if (UsesMember(t.kind) && !ValidKey(t.member)) return Code::kFieldTooLong;
  if ((t.kind == Kind::kReferral || t.kind == Kind::kTransfer) && !ValidKey(t.member2)) {
    return Code::kFieldTooLong;
  }
  const bool needs_partner = t.kind == Kind::kPartnerCreate || t.kind == Kind::kPartnerPrice ||
                             t.kind == Kind::kSettle;
  if ((needs_partner || !t.partner.empty()) && !IsValidName(t.partner)) return Code::kFieldTooLong;
  if (t.kind == Kind::kProgramCreate && !ValidCurrency(t.currency)) return Code::kFieldTooLong;
  return Code::kOk;
}

uint8_t ScopeOf(Kind k) {
  switch (k) {
    case Kind::kEarn: case Kind::kRedeem: case Kind::kReferral: case Kind::kTransfer:
    case Kind::kHold: case Kind::kCapture: case Kind::kRelease: case Kind::kReverse:
    case Kind::kAccountOpen:  // enrollment, by the shop or the POS
      return kScopePost;
    default:
      return kScopeAdmin;
  }
}

Code CheckAmounts(const Transaction& t) {
  if (t.points > kPointsMax || t.points2 > kPointsMax) return Code::kInvalidAmount;
  if (t.delta > static_cast<int64_t>(kPointsMax) || t.delta < -static_cast<int64_t>(kPointsMax)) {
    return Code::kInvalidAmount;
  }
  switch (t.kind) {
    case Kind::kProgramCreate:
      if (t.lock_days < -1 || t.lock_days > kLockDaysMax || t.expiry_days > kExpiryDaysMax ||
          t.point_value_micros > kPriceMicrosMax) {
        return Code::kInvalidAmount;
      }
      break;
    case Kind::kPartnerCreate:
    case Kind::kPartnerPrice:
      if (t.earn_price_micros > kPriceMicrosMax || t.redeem_price_micros > kPriceMicrosMax) {
        return Code::kInvalidAmount;
      }
      break;
    case Kind::kEarn:
      if (t.points == 0 || t.lock_days < -1 || t.lock_days > kLockDaysMax) {
        return Code::kInvalidAmount;
      }
      break;
    case Kind::kRedeem:
    case Kind::kTransfer:
      if (t.points == 0) return Code::kInvalidAmount;
      break;
    case Kind::kReferral:
      if (t.points == 0 || t.points2 == 0) return Code::kInvalidAmount;
      break;
    case Kind::kAdjust:
      if (t.delta == 0) return Code::kInvalidAmount;
      break;
    case Kind::kHold:
      if (t.points == 0 || t.timeout_s == 0 || t.timeout_s > kHoldTimeoutSecondsMax) {
        return Code::kInvalidAmount;
      }
      break;
    default:
      break;
  }
  return Code::kOk;
}

// The sweep's transactions (an expire, a hold_timeout) carry the id derived
// from their content, and an expire names a time after the epoch (record
// format 6). Hand-made ones need not: one with the id of a real lot or
// hold and other content (an expiry 1 ns off, another hold's ref) was
// recorded, took the one id the sweep books that lot or hold under, and
// the lot never expired or the hold never timed out (found in review,
// session 21). Request-only, so the id stays free.
// Nor may one differ from what CollectDue makes in any other field (a
// `reason`, a `time_ns` on a timeout): stored under the reserved id, it
// left the sweep's own item an id_conflict (found in review, session 21).
bool IsSweepKind(Kind kind) { return kind == Kind::kExpire || kind == Kind::kHoldTimeout; }

Code CheckSweepId(const Transaction& t) {
  if (!IsSweepKind(t.kind)) return Code::kOk;
  Transaction want;  // as Ledger::CollectDue makes it
  want.kind = t.kind;
  want.program = t.program;
  if (t.kind == Kind::kExpire) {
    if (t.time_ns <= 0) return Code::kInvalidAmount;
    want.member = t.member;
    want.time_ns = t.time_ns;
    want.lot_seq = t.lot_seq;
    want.lot_index = t.lot_index;
    want.id = ExpireId(t.program, MemberAccountId(t.program, t.member), t.lot_seq, t.lot_index);
  } else {
    want.ref = t.ref;
    want.id = HoldTimeoutId(t.program, t.ref);
  }
  if (t.id != want.id || !FirstDifference(want, t).empty()) return Code::kInvalidAmount;
  return Code::kOk;
}

// Request checks that depend on the clock (semantics.md step 6).
Code CheckTimes(const Transaction& t, int64_t ts, uint8_t rules) {
  if (t.kind == Kind::kEarn && t.time_ns != 0 && t.time_ns <= ts) return Code::kExpiryInPast;
  if (t.kind == Kind::kPartnerPrice && t.time_ns != 0 && t.time_ns < ts) {
    return Code::kExpiryInPast;
  }
  if (t.kind == Kind::kSettle && t.time_ns > ts) return Code::kInvalidAmount;
  // A period ending before the epoch (format 6): recorded, its statement's
  // time could not be printed (found in review, session 21).
  if (t.kind == Kind::kSettle && t.time_ns < 0 && rules >= 6) return Code::kInvalidAmount;
  return Code::kOk;
}

bool CheckedAdd(uint64_t* total, uint64_t n) {
  if (*total > std::numeric_limits<uint64_t>::max() - n) return false;
  *total += n;
  return true;
}

bool Locked(const LotInfo& lot, int64_t ts) { return ts < lot.locked_until_ns; }
bool Expired(const LotInfo& lot, int64_t ts) { return lot.expires_at_ns <= ts; }
bool Usable(const LotInfo& lot, int64_t ts) { return !Locked(lot, ts) && !Expired(lot, ts); }

uint64_t AvailableIn(const std::vector<LotEntry>& lots, int64_t ts, std::string_view skip_key) {
  uint64_t sum = 0;
  for (const LotEntry& lot : lots) {
    if (lot.key() != skip_key && Usable(lot.info, ts)) sum += lot.info.remaining;
  }
  return sum;
}

// Into `key`, whose capacity is reused: no allocation per lot.
std::string_view ExpiryKey(std::string_view lot_key, int64_t expires_at_ns, std::string* key) {
  key->clear();
  ByteWriter(key).BeI64(expires_at_ns);
  key->append(lot_key);
  return *key;
}

// Into `key`, whose capacity is reused (as ExpiryKey).
std::string_view TwoIdKey(const Id& a, const Id& b, std::string* key) {
  key->assign(IdView(a));
  key->append(IdView(b));
  return *key;
}

std::string_view DeadlineKey(int64_t deadline_ns, const Id& hold, std::string* key) {
  key->clear();
  ByteWriter w(key);
  w.BeI64(deadline_ns);
  w.IdBytes(hold);
  return *key;
}

}  // namespace

Applier::Applier(View& view, Clock* clock, const ChainHead& head, Buffers* buffers)
    : view_(view),
      clock_(clock),
      head_(head),
      own_buffers_(buffers == nullptr ? std::make_unique<Buffers>() : nullptr),
      buffers_(buffers == nullptr ? *own_buffers_ : *buffers),
      ctx_(buffers_.ctx),
      scratch_(buffers_.scratch),
      key_buf_(buffers_.key),
      key2_buf_(buffers_.key2),
      value_buf_(buffers_.value),
      record_(buffers_.record),
      lots_a_(buffers_.lots_a),
      lots_b_(buffers_.lots_b),
      pieces_(buffers_.pieces),
      hold_(buffers_.hold) {
  ctx_.postings.reserve(4);
}

int64_t Applier::NextTimestamp() const {
  return std::max(clock_->NowNs(), head_.timestamp_ns + 1);
}

// ---------------------------------------------------------------------------
// Batches and chains. Each level is a savepoint of the MemTable, whose
// pending writes include the log entries the group commit will write.

absl::Status Applier::ApplyBatch(std::span<const Transaction> batch, const Auth& auth,
                                 std::vector<Result>* results) {
  PL_CHECK(!batch.empty() && batch.size() <= kBatchTransactionsMax);
  results->assign(batch.size(), Result{});
  // A batch that ends inside a chain: that chain is refused as a whole.
  size_t open_from = batch.size();
  if (batch.back().linked) {
    open_from = batch.size() - 1;
    while (open_from > 0 && batch[open_from - 1].linked) --open_from;
  }
  const ChainHead saved_head = head_;
  const uint64_t saved_recorded = recorded_;
  const MemTable::Mark mark = view_.active()->Savepoint();
  absl::Status status;
  for (size_t i = 0; i < open_from && status.ok();) {
    size_t end = i;
    while (batch[end].linked) ++end;  // end < open_from: the chain is closed
    if (end == i) {
      absl::StatusOr<Result> r = ApplyOne(batch[i], auth);
      if (r.ok()) (*results)[i] = *std::move(r);
      status = r.status();
    } else {
      status = ApplyChain(batch.subspan(i, end - i + 1), auth,
                          std::span<Result>(*results).subspan(i, end - i + 1));
    }
    i = end + 1;
  }
  for (size_t i = open_from; i < batch.size(); ++i) {
    (*results)[i].code = Code::kLinkedChainOpen;
    // As in a chain that failed: an id decided before keeps its outcome.
    if (!status.ok()) continue;
    absl::StatusOr<std::optional<Result>> early = Precheck(batch[i], auth);
    if (!early.ok()) {
      status = early.status();
    } else if (*early && (*early)->duplicate) {
      (*results)[i] = **std::move(early);
    }
  }
  if (status.ok() && view_.active()->pending_log().lmdb_bytes() > log_bytes_limit_) {
    status = absl::ResourceExhaustedError(
        "the log environment is full: its map (map_size) cannot take this batch");
  }
  if (!status.ok()) {
    view_.active()->RollbackTo(mark);
    head_ = saved_head;
    recorded_ = saved_recorded;
    results->clear();
  }
  return status;
}

absl::Status Applier::ApplyChain(std::span<const Transaction> chain, const Auth& auth,
                                 std::span<Result> results) {
  const ChainHead saved_head = head_;
  const uint64_t saved_recorded = recorded_;
  const MemTable::Mark mark = view_.active()->Savepoint();
  size_t failed = chain.size();
  for (size_t k = 0; k < chain.size(); ++k) {
    absl::StatusOr<Result> r = ApplyOne(chain[k], auth);
    if (!r.ok()) return r.status();  // the caller rolls the whole batch back
    results[k] = *std::move(r);
    if (results[k].code != Code::kOk) {
      failed = k;
      break;
    }
  }
  if (failed == chain.size()) return absl::OkStatus();
  // Roll the chain back; the failing member keeps its code, the others
  // report linked_event_failed. A freshly recorded rejection is recorded
  // again outside the chain, so the id keeps its outcome (SPEC §3).
  view_.active()->RollbackTo(mark);
  head_ = saved_head;
  recorded_ = saved_recorded;
  Result failing = results[failed];
  // Recorded first, so that another member with the same id answers as its
  // duplicate, not linked_event_failed: one attempt, one outcome (found in
  // review, session 19).
  if (failing.seq != 0 && !failing.duplicate) {
    PL_ASSIGN_OR_RETURN(failing, Record(chain[failed], failing.code, NextTimestamp()));
  }
  for (size_t k = 0; k < chain.size(); ++k) {
    results[k] = Result{};
    results[k].code = Code::kLinkedEventFailed;
    if (k == failed) continue;
    // SPEC §3 before §4: a member decided before this chain (not by it: that
    // was rolled back) keeps its outcome, so a client never reads "failed"
    // for points it was given, and posts them again under a new id.
    PL_ASSIGN_OR_RETURN(std::optional<Result> early, Precheck(chain[k], auth));
    if (early && early->duplicate) results[k] = *std::move(early);
  }
  results[failed] = failing;
  return absl::OkStatus();
}

// Re-applies a stored transaction at its own seq and timestamp. Everything
// the engine decides is a function of the state and the record, so the
// outcome and the hash must come out as stored; if not, the log and the
// checkpoint disagree and that is reported, never papered over.
absl::Status Applier::Replay(const TxRecord& rec, std::string_view stored) {
  if (rec.seq != head_.seq + 1) {
    return absl::DataLossError(StrCat("replay: expected seq ", head_.seq + 1, ", found ", rec.seq));
  }
  // Before anything is decided on it, the stored record must be the one
  // its hash covers: the hash compared at the end, with the replay's own
  // record, vouches only for the fields the replay reads, not for the
  // others (postings, result points, statement: what reads serve). A
  // record whose postings had changed replayed without a word, and the
  // trial balance then disagreed with the balances (found by the wal fuzz
  // target, session 24).
  PL_CHECK(stored.size() >= 32);
  const std::string_view prev(reinterpret_cast<const char*>(head_.hash.data()), head_.hash.size());
  const Digest own = Sha256({prev, stored.substr(32)});
  if (std::memcmp(own.data(), stored.data(), own.size()) != 0) {
    return absl::DataLossError(
        StrCat("replay: seq ", rec.seq, " does not hash to its stored hash (run audit verify)"));
  }
  // Nor may it hold what no ledger records, which a record with its own
  // hash can (a writer's bug, a hand that wrote the disk: the wal fuzz
  // target forges such chains). Every transaction passed these checks
  // (Precheck) before it was decided, and times only go forward
  // (NextTimestamp), up to kTimestampMax. The engine's arithmetic relies
  // on both: a lock of 184 million days, and a time near the end of int64,
  // overflowed. These are today's checks applied to records of every
  // format: they have not changed since the first. One that tightens must
  // apply only to records of the format that brings it (rules_), or a
  // ledger recorded before it would no longer open (docs/storage.md,
  // "Compatibility").
  if (CheckFields(rec.tx) != Code::kOk || CheckAmounts(rec.tx) != Code::kOk) {
    return absl::DataLossError(
        StrCat("replay: seq ", rec.seq, " holds a transaction with a field out of range"));
  }
  if (rec.timestamp_ns <= head_.timestamp_ns || rec.timestamp_ns > kTimestampMax) {
    return absl::DataLossError(StrCat("replay: seq ", rec.seq, " is timed at ", rec.timestamp_ns,
                                      " ns, not after seq ", head_.seq, " (", head_.timestamp_ns,
                                      " ns) or past the latest time a ledger records"));
  }
  // Decided by the rules of its own format, and re-encoded in it.
  const uint8_t newest = rules_;
  rules_ = rec.format;
  struct Restore {
    uint8_t& rules;
    uint8_t value;
    ~Restore() { rules = value; }
  } restore{rules_, newest};
  Code code = rec.result.code;
  if (code == Code::kOk) {
    Ctx& c = ctx_;
    c.tx = &rec.tx;
    c.ts = rec.timestamp_ns;
    c.seq = rec.seq;
    c.slot_count = 0;
    c.postings.clear();
    c.result_points = 0;
    c.has_statement = false;
    PL_ASSIGN_OR_RETURN(code, ApplyKind(c));
    if (code != Code::kOk) {
      return absl::DataLossError(StrCat("replay: seq ", rec.seq, " was ok, now ", CodeName(code)));
    }
  }
  PL_ASSIGN_OR_RETURN(const Result r, Record(rec.tx, code, rec.timestamp_ns));
  (void)r;
  if (head_.hash != rec.hash) {
    return absl::DataLossError(StrCat("replay: seq ", rec.seq, " hashes differently"));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// One transaction.

absl::StatusOr<Result> Applier::ApplyOne(const Transaction& tx, const Auth& auth) {
  PL_ASSIGN_OR_RETURN(std::optional<Result> early, Precheck(tx, auth));
  if (early) return *std::move(early);
  Result result;
  auto refuse = [&](Code code) {
    result.code = code;
    return result;
  };
  const int64_t ts = NextTimestamp();
  if (const Code c = CheckTimes(tx, ts, rules_); c != Code::kOk) return refuse(c);

  Ctx& c = ctx_;
  c.tx = &tx;
  c.ts = ts;
  c.seq = head_.seq + 1;
  c.slot_count = 0;
  c.postings.clear();
  c.result_points = 0;
  c.has_statement = false;
  c.not_recorded = false;
  PL_ASSIGN_OR_RETURN(const Code code, ApplyKind(c));
  if (c.not_recorded) return refuse(code);
  // Under an id another transaction holds, only a booking is recorded: a
  // rejection (the hold no longer pending) or an expire of a lot consumed
  // meanwhile, recorded, would be recorded again at every retry, since
  // the id cannot answer it as a duplicate.
  if (sweep_id_held_ && (code != Code::kOk || c.postings.empty())) return refuse(code);
  // Nor does a sweep's item take its id with a rejection (format 7): the
  // lot's or hold's state already keeps it from being booked twice, and a
  // recorded rejection was the item's answer for good. A linked chain
  // [release H, hold_timeout H] did that before H's deadline: the chain
  // failed, H was pending again, and its timeout was hold_not_pending
  // forever (found in review, session 31).
  if (rules_ >= 7 && IsSweepKind(tx.kind) && code != Code::kOk) return refuse(code);
  return Record(tx, code, ts);
}

absl::StatusOr<std::optional<Result>> Applier::Precheck(const Transaction& tx, const Auth& auth) {
  Result result;
  auto refuse = [&](Code code) {
    result.code = code;
    return std::optional<Result>(result);
  };
  sweep_id_held_ = false;
  if (IsZero(tx.id)) return refuse(Code::kIdZero);
  if (const Code c = CheckFields(tx); c != Code::kOk) return refuse(c);
  if ((auth.scopes & ScopeOf(tx.kind)) == 0 || !auth.AllowsProgram(tx.program)) {
    return refuse(Code::kPermissionDenied);
  }
  if (const Code c = CheckAmounts(tx); c != Code::kOk) return refuse(c);

  // Exactly once: a decided id answers with its outcome, forever.
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> seen, view_.Get(dbs_.ids, IdView(tx.id)));
  if (seen) {
    ByteReader r(*seen);
    const uint64_t seq = r.U64();
    if (!r.done()) return absl::DataLossError("ids: malformed entry");
    PL_ASSIGN_OR_RETURN(std::optional<TxRecord> original, ReadRecord(view_, dbs_, seq));
    if (!original) return absl::DataLossError(StrCat("ids: seq ", seq, " missing"));
    // SPEC §3 names the first field that differs; the program is compared
    // first. Ids are global, but another program's transaction is not this
    // caller's to read: in declaration order (kind first) a key could probe
    // the kind, member and amount of a transaction it may not see, field by
    // field. Within one program the order is the declaration's.
    const std::string_view diff =
        original->tx.program != tx.program ? "program" : FirstDifference(original->tx, tx);
    // A sweep's item that an older format recorded as a rejection is
    // decided again by its state since format 7 (see ApplyOne: the
    // rejection may have been taken while its hold was pending).
    const bool sweep_item = rules_ >= 7 && IsSweepKind(tx.kind) && CheckSweepId(tx) == Code::kOk;
    if (diff.empty() && !(sweep_item && original->result.code != Code::kOk)) {
      result = original->result;
      result.duplicate = true;
      return std::optional<Result>(result);
    }
    // A sweep's id is derived from its lot or hold, so a client can take
    // it first with another transaction (a redeem of nobody, recorded as
    // account_not_found), and then the lot never expired and the hold
    // never timed out: the sweep's item was id_conflict forever (found in
    // review, session 31). Since format 7 it is decided all the same, if
    // it is exactly what the sweep makes (a hand-made one stays a conflict).
    if (!sweep_item) {
      result.code = Code::kIdConflict;
      result.conflict_field = std::string(diff);
      return std::optional<Result>(result);
    }
    sweep_id_held_ = true;
  }
  // After the replay check: a decided id sent again with other content is
  // id_conflict, as for every kind.
  if (rules_ >= 6) {
    if (const Code c = CheckSweepId(tx); c != Code::kOk) return refuse(c);
  }
  return std::optional<Result>();
}

// Appends the transaction to the log and the hash chain and decides its id.
// For kOk, the postings, points and statement come from ctx_.
absl::StatusOr<Result> Applier::Record(const Transaction& tx, Code code, int64_t ts) {
  Ctx& c = ctx_;
  const bool ok = code == Code::kOk;
  // Assigned field by field into the reused record: copies into its
  // strings and postings keep their capacity.
  TxRecord& rec = record_;
  rec.format = rules_;
  rec.seq = head_.seq + 1;
  rec.timestamp_ns = ts;
  rec.tx = tx;
  rec.result = Result{};
  rec.result.code = code;
  rec.result.points = ok ? c.result_points : 0;
  rec.postings.clear();
  if (ok) rec.postings.assign(c.postings.begin(), c.postings.end());
  rec.hash = {};
  rec.statement.reset();
  if (ok && c.has_statement) rec.statement = c.statement;
  scratch_.clear();
  scratch_.append(32, '\0');  // room for the hash
  EncodeRecord(rec, &scratch_);
  // Unreachable for a transaction Precheck passed (the largest, an
  // account_close, has its holds' voids in one posting since format 5); a
  // stored record replayed may have been changed on disk (found by a
  // storage review, session 19).
  if (scratch_.size() > kRecordBytesMax + 32) {
    return absl::DataLossError(StrCat("seq ", rec.seq, ": a record of ", scratch_.size() - 32,
                                      " bytes, over the limit of ", kRecordBytesMax));
  }
  const Digest hash =
      Sha256({std::string_view(reinterpret_cast<const char*>(head_.hash.data()), head_.hash.size()),
              std::string_view(scratch_).substr(32)});
  std::memcpy(scratch_.data(), hash.data(), hash.size());

  PL_RETURN_IF_ERROR(view_.Put(dbs_.log, BeU64Key(rec.seq), scratch_));
  // A sweep's transaction leaves an id another holds to it (format 7, see
  // Precheck); asked here, not told, so that a replay decides the same.
  bool take_id = true;
  if (rules_ >= 7 && IsSweepKind(tx.kind)) {
    PL_ASSIGN_OR_RETURN(std::optional<std::string_view> held, view_.Get(dbs_.ids, IdView(tx.id)));
    take_id = !held.has_value();
  }
  if (take_id) {
    std::string seq_value;
    ByteWriter(&seq_value).U64(rec.seq);
    PL_RETURN_IF_ERROR(view_.Put(dbs_.ids, IdView(tx.id), seq_value));
  }

  // History: one entry per member whose balance moved.
  if (ok) {
    for (size_t i = 0; i < c.slot_count; ++i) {
      const Slot& s = c.slots[i];
      if (s.rec.kind != AccountKind::kMember) continue;
      int64_t posted = 0, pending = 0;
      bool touched = false;
      for (const Posting& p : rec.postings) {
        const int64_t n = static_cast<int64_t>(p.points);
        const int sign = p.credit == s.id ? 1 : p.debit == s.id ? -1 : 0;
        if (sign == 0) continue;
        touched = true;
        if (p.type == PostingType::kPosted) posted += sign * n;
        if (p.type == PostingType::kPending) pending -= n;  // reserved: out
        if (p.type == PostingType::kVoid) pending += n;
      }
      if (!touched) continue;
      std::string& key = key_buf_;
      key.assign(IdView(s.id));
      ByteWriter(&key).BeU64(rec.seq);
      std::string& value = value_buf_;
      value.clear();
      ByteWriter(&value).I64(posted != 0 ? posted : pending);
      PL_RETURN_IF_ERROR(view_.Put(dbs_.history, key, value));
    }
  }

  std::memcpy(head_.hash.data(), scratch_.data(), 32);
  head_.seq = rec.seq;
  head_.timestamp_ns = rec.timestamp_ns;
  ++recorded_;
  Result result;
  result.code = code;
  result.seq = rec.seq;
  result.timestamp_ns = rec.timestamp_ns;
  result.points = rec.result.points;
  return result;
}

absl::StatusOr<Code> Applier::ApplyKind(Ctx& c) {
  const Transaction& t = *c.tx;
  if (t.kind == Kind::kProgramCreate) return ProgramCreate(c);
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> prog, view_.Get(dbs_.programs, t.program));
  if (!prog) return Code::kProgramNotFound;
  if (!DecodeProgram(*prog, &c.program)) return absl::DataLossError("programs: malformed");
  switch (t.kind) {
    case Kind::kPartnerCreate: return PartnerCreate(c);
    case Kind::kPartnerPrice: return PartnerPrice(c);
    case Kind::kEarn: return Earn(c);
    case Kind::kRedeem: return Redeem(c);
    case Kind::kReferral: return Referral(c);
    case Kind::kTransfer: return Transfer(c);
    case Kind::kAdjust: return Adjust(c);
    case Kind::kHold: return Hold(c);
    case Kind::kCapture:
    case Kind::kRelease:
    case Kind::kHoldTimeout: return EndHold(c);
    case Kind::kExpire: return Expire(c);
    case Kind::kSettle: return Settle(c);
    case Kind::kAccountClose: return AccountClose(c);
    case Kind::kAccountOpen: return AccountOpen(c);
    case Kind::kReverse: return Reverse(c);
    case Kind::kProgramCreate: break;
  }
  return Code::kInvalidAmount;  // unknown kind: refused, recorded
}

// ---------------------------------------------------------------------------
// Accounts and postings.

absl::StatusOr<Applier::Slot*> Applier::Account(Ctx& c, const Id& id) {
  for (size_t i = 0; i < c.slot_count; ++i) {
    if (c.slots[i].id == id) return &c.slots[i];
  }
  PL_CHECK(c.slot_count < c.slots.size());
  Slot* s = &c.slots[c.slot_count++];
  s->id = id;
  s->dirty = false;
  // Reset, keeping the strings' capacity: a member key over 15 bytes would
  // otherwise be allocated again by every transaction.
  std::string program = std::move(s->rec.program);
  std::string name = std::move(s->rec.name);
  s->rec = AccountRec{};
  program.clear();
  name.clear();
  s->rec.program = std::move(program);
  s->rec.name = std::move(name);
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v, view_.Get(dbs_.accounts, IdView(id)));
  s->exists = v.has_value();
  if (v && !DecodeAccount(*v, &s->rec)) {
    return absl::DataLossError(StrCat("accounts: malformed ", IdToHex(id)));
  }
  return s;
}

absl::StatusOr<Code> Applier::Member(Ctx& c, std::string_view key, bool open_if_needed,
                                     Slot** out) {
  PL_ASSIGN_OR_RETURN(Slot * s, Account(c, MemberAccountId(c.tx->program, key)));
  if (!s->exists) {
    if (!open_if_needed || !c.program.auto_open) return Code::kAccountNotFound;
    s->rec.kind = AccountKind::kMember;
    s->rec.program = c.tx->program;
    s->rec.name.assign(key);
    s->dirty = true;  // created only if the transaction succeeds
  } else if (s->rec.kind != AccountKind::kMember) {
    return Code::kAccountNotFound;
  } else if (s->rec.closed) {
    return Code::kAccountClosed;
  }
  *out = s;
  return Code::kOk;
}

Code Applier::Post(Ctx& c, Slot* debit, Slot* credit, uint64_t points, PostingType type) {
  if (points == 0) return Code::kOk;
  AccountRec& d = debit->rec;
  AccountRec& k = credit->rec;
  switch (type) {
    case PostingType::kPosted:
      if (!CheckedAdd(&d.debits_posted, points) || !CheckedAdd(&k.credits_posted, points)) {
        return Code::kOverflow;
      }
      // A member's posted balance stays within int64: its history rows are
      // signed changes, and an account_close posts the whole balance at
      // once (three earns of 2^62 used to leave a close whose history row
      // wrapped to a credit).
      if (rules_ >= 2 && credit->rec.kind == AccountKind::kMember &&
          k.credits_posted - k.debits_posted > uint64_t{std::numeric_limits<int64_t>::max()}) {
        return Code::kOverflow;
      }
      break;
    case PostingType::kPending:
      if (!CheckedAdd(&d.debits_pending, points) || !CheckedAdd(&k.credits_pending, points)) {
        return Code::kOverflow;
      }
      break;
    case PostingType::kVoid:
      PL_CHECK(d.debits_pending >= points && k.credits_pending >= points);
      d.debits_pending -= points;
      k.credits_pending -= points;
      break;
  }
  debit->dirty = credit->dirty = true;
  c.postings.push_back(Posting{debit->id, credit->id, points, type});
  return Code::kOk;
}

absl::Status Applier::Flush(Ctx& c) {
  for (size_t i = 0; i < c.slot_count; ++i) {
    Slot& s = c.slots[i];
    if (!s.dirty) continue;
    scratch_.clear();
    EncodeAccount(s.rec, &scratch_);
    PL_RETURN_IF_ERROR(view_.Put(dbs_.accounts, IdView(s.id), scratch_));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Lots.

absl::Status LoadLots(const View& txn, const Dbs& dbs, const Id& account,
                      std::vector<LotEntry>* lots) {
  PL_ASSIGN_OR_RETURN(ViewCursor cursor, ViewCursor::Open(txn, dbs.lots));
  return LoadLots(cursor, account, lots);
}

absl::Status LoadLots(ViewCursor& cursor, const Id& account, std::vector<LotEntry>* lots) {
  lots->clear();
  cursor.Bound(IdView(account));
  PL_ASSIGN_OR_RETURN(bool found, cursor.SeekAtLeast(IdView(account)));
  while (found && cursor.key().substr(0, 16) == IdView(account)) {
    LotEntry& e = lots->emplace_back();
    Id owner;
    ByteReader r(cursor.value());
    e.info.remaining = r.U64();
    e.info.locked_until_ns = r.I64();
    if (!DecodeLotKey(cursor.key(), &owner, &e.info) || !r.done()) {
      return absl::DataLossError("lots: malformed entry");
    }
    std::copy(cursor.key().begin(), cursor.key().end(), e.key_bytes.begin());
    PL_ASSIGN_OR_RETURN(found, cursor.Next());
  }
  return absl::OkStatus();
}

absl::StatusOr<ViewCursor*> Applier::Kept(KeptCursor& kept, Table t) {
  if (!kept.cursor || kept.generation != view_.state_generation()) {
    kept.cursor.reset();
    PL_ASSIGN_OR_RETURN(ViewCursor cursor, ViewCursor::Open(view_, t));
    kept.cursor.emplace(std::move(cursor));
    kept.generation = view_.state_generation();
  }
  return &*kept.cursor;
}

absl::Status Applier::MemberLots(const Id& account, std::vector<LotEntry>* lots) {
  PL_ASSIGN_OR_RETURN(ViewCursor * cursor, Kept(lots_cursor_, dbs_.lots));
  return LoadLots(*cursor, account, lots);
}

int64_t Applier::DefaultExpiry(const Ctx& c) const {
  if (c.program.expiry_days == 0) return kNever;
  return c.ts + int64_t{c.program.expiry_days} * kNanosPerDay;
}

absl::Status Applier::AddLot(const Id& account, int64_t expires_at_ns, uint64_t seq,
                             uint32_t index, uint64_t points, int64_t locked_until_ns) {
  if (points == 0) return absl::OkStatus();
  std::string& key = key_buf_;
  key.clear();
  AppendLotKey(account, expires_at_ns, seq, index, &key);
  std::string& value = value_buf_;
  value.clear();
  ByteWriter w(&value);
  w.U64(points);
  w.I64(locked_until_ns);
  // No MDB_NOOVERWRITE check: the key holds this transaction's own seq, so
  // it is new by construction (or, for a hold's points going back, an
  // older lot's key that RefillLot found gone), and the check cost a
  // lookup through every layer down to LMDB on every earn.
  PL_RETURN_IF_ERROR(view_.Put(dbs_.lots, key, value));
  if (expires_at_ns != kNever) {
    PL_RETURN_IF_ERROR(view_.Put(dbs_.expiry, ExpiryKey(key, expires_at_ns, &key2_buf_), ""));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Applier::RefillLot(const Id& account, int64_t expires_at_ns, uint64_t seq,
                                        uint32_t index, uint64_t points) {
  std::string& key = key_buf_;
  key.clear();
  AppendLotKey(account, expires_at_ns, seq, index, &key);
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v, view_.Get(dbs_.lots, key));
  if (!v) return false;
  ByteReader r(*v);
  const uint64_t remaining = r.U64();
  const int64_t locked_until_ns = r.I64();
  if (!r.done()) return absl::DataLossError("lots: malformed entry");
  if (points > std::numeric_limits<uint64_t>::max() - remaining) {
    return absl::DataLossError("lots: a lot past 2^64 - 1 points");
  }
  std::string& value = value_buf_;
  value.clear();
  ByteWriter w(&value);
  w.U64(remaining + points);
  w.I64(locked_until_ns);
  PL_RETURN_IF_ERROR(view_.Put(dbs_.lots, key, value));
  return true;
}

absl::Status Applier::TakeFromLot(const LotEntry& lot, uint64_t points) {
  // The checks below fail only on stored state changed on disk: DataLoss,
  // which audit verify explains, rather than a crash at every start.
  if (points > lot.info.remaining) return absl::DataLossError("lots: a lot holds less than taken from it");
  if (points == lot.info.remaining) {
    PL_ASSIGN_OR_RETURN(bool existed, view_.Del(dbs_.lots, lot.key()));
    if (!existed) return absl::DataLossError("lots: a lot read is not there");
    if (lot.info.expires_at_ns != kNever) {
      PL_ASSIGN_OR_RETURN(existed,
                          view_.Del(dbs_.expiry, ExpiryKey(lot.key(), lot.info.expires_at_ns, &key2_buf_)));
    }
    return absl::OkStatus();
  }
  std::string& value = value_buf_;
  value.clear();
  ByteWriter w(&value);
  w.U64(lot.info.remaining - points);
  w.I64(lot.info.locked_until_ns);
  return view_.Put(dbs_.lots, lot.key(), value);
}

absl::Status Applier::Consume(std::vector<LotEntry>& lots, int64_t ts, uint64_t points,
                              std::string_view skip_key, std::vector<Piece>* pieces,
                              std::vector<HoldRec::Source>* sources) {
  for (LotEntry& lot : lots) {
    if (points == 0) break;
    if (lot.key() == skip_key || !Usable(lot.info, ts) || lot.info.remaining == 0) continue;
    const uint64_t take = std::min(points, lot.info.remaining);
    PL_RETURN_IF_ERROR(TakeFromLot(lot, take));
    lot.info.remaining -= take;
    points -= take;
    pieces->push_back(Piece{lot.info.expires_at_ns, take});
    if (sources != nullptr) sources->push_back({lot.info.source_seq, lot.info.index});
  }
  if (points != 0) return absl::DataLossError("lots: a member's lots hold less than their balance");
  return absl::OkStatus();
}

absl::Status Applier::PutEffects(uint64_t seq, const std::vector<Piece>& pieces) {
  scratch_.clear();
  EncodePieces(pieces, &scratch_);
  return view_.Put(dbs_.effects, BeU64Key(seq), scratch_);
}

absl::Status Applier::AddFlow(const Ctx& c, const Id& partner, FlowKind kind, int64_t points,
                              const TxRecord* reversed) {
  // Buffers reused (SPEC §9): the flow's key and value, and the probes.
  std::string& key = buffers_.flow_key;
  key.assign(IdView(partner));
  ByteWriter kw(&key);
  kw.BeI64(c.ts);
  kw.BeU64(c.seq);
  std::string& value = value_buf_;
  value.clear();
  ByteWriter vw(&value);
  vw.U8(static_cast<uint8_t>(kind));
  vw.I64(points);
  if (reversed != nullptr && rules_ >= 2) {
    // A reversal refunds what the original was priced at: priced at its
    // own time instead, a price change in between left money owed on
    // points that net to zero (found in review, session 16).
    std::string& original = key2_buf_;
    original.assign(IdView(partner));
    ByteWriter ow(&original);
    ow.BeI64(reversed->timestamp_ns);
    ow.BeU64(reversed->seq);
    PL_ASSIGN_OR_RETURN(std::optional<std::string_view> flow, view_.Get(dbs_.flows, original));
    if (!flow) return absl::DataLossError(StrCat("flows: the flow of seq ", reversed->seq, " is missing"));
    ByteReader fr(*flow);
    fr.U8();
    fr.I64();
    const uint64_t price = fr.U64();
    if (!fr.done()) return absl::DataLossError("flows: malformed entry");
    vw.U64(price);
    return view_.Put(dbs_.flows, key, value);
  }
  // The price in effect at this flow's time: the last entry starting at or
  // before it. A partner always has one (partner_create writes it).
  PL_ASSIGN_OR_RETURN(ViewCursor * prices, Kept(prices_cursor_, dbs_.prices));
  ViewCursor& cursor = *prices;
  std::string& seek = key2_buf_;
  seek.assign(IdView(partner));
  ByteWriter(&seek).BeI64(c.ts);
  seek.push_back('\xff');  // just past (partner, ts)
  PL_ASSIGN_OR_RETURN(bool found, cursor.SeekAtLeast(seek));
  PL_ASSIGN_OR_RETURN(found, found ? cursor.Prev() : cursor.Last());
  if (!found || cursor.key().substr(0, 16) != IdView(partner)) {
    return absl::DataLossError("prices: partner without a price");
  }
  ByteReader pr(cursor.value());
  const uint64_t earn_price = pr.U64();
  const uint64_t redeem_price = pr.U64();
  if (!pr.done()) return absl::DataLossError("prices: malformed entry");
  vw.U64(kind == FlowKind::kEarn ? earn_price : redeem_price);
  return view_.Put(dbs_.flows, key, value);
}

absl::Status Applier::PutHold(const Id& hold_id, const HoldRec& hold) {
  scratch_.clear();
  EncodeHold(hold, &scratch_);
  return view_.Put(dbs_.holds, IdView(hold_id), scratch_);
}

// ---------------------------------------------------------------------------
// Configuration.

absl::StatusOr<Code> Applier::ProgramCreate(Ctx& c) {
  const Transaction& t = *c.tx;
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> existing, view_.Get(dbs_.programs, t.program));
  if (existing) return Code::kProgramExists;
  ProgramRec p;
  p.currency = t.currency;
  p.point_value_micros = t.point_value_micros;
  p.expiry_days = t.expiry_days;
  p.lock_days = t.lock_days < 0 ? 0 : static_cast<uint32_t>(t.lock_days);
  p.auto_open = t.auto_open;
  scratch_.clear();
  EncodeProgram(p, &scratch_);
  PL_RETURN_IF_ERROR(view_.Put(dbs_.programs, t.program, scratch_));
  for (AccountKind kind : {AccountKind::kIssuance, AccountKind::kRedemption, AccountKind::kReferral,
                           AccountKind::kAdjustment, AccountKind::kBreakage, AccountKind::kHolds}) {
    AccountRec a;
    a.kind = kind;
    a.program = t.program;
    scratch_.clear();
    EncodeAccount(a, &scratch_);
    PL_RETURN_IF_ERROR(view_.Put(dbs_.accounts,
                                 IdView(SystemAccountId(t.program, AccountKindName(kind))), scratch_));
  }
  return Code::kOk;
}

absl::Status PutPrice(View& txn, const Dbs& dbs, const Id& partner, int64_t from_ns,
                      uint64_t earn, uint64_t redeem) {
  std::string key(IdView(partner));
  ByteWriter(&key).BeI64(from_ns);
  std::string value;
  ByteWriter w(&value);
  w.U64(earn);
  w.U64(redeem);
  return txn.Put(dbs.prices, key, value);
}

absl::StatusOr<Code> Applier::PartnerCreate(Ctx& c) {
  const Transaction& t = *c.tx;
  const Id id = PartnerAccountId(t.program, t.partner);
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> existing, view_.Get(dbs_.partners, IdView(id)));
  if (existing) return Code::kProgramExists;
  AccountRec a;
  a.kind = AccountKind::kPartner;
  a.program = t.program;
  a.name = t.partner;
  scratch_.clear();
  EncodeAccount(a, &scratch_);
  PL_RETURN_IF_ERROR(view_.Put(dbs_.accounts, IdView(id), scratch_));
  std::string last_end;
  ByteWriter(&last_end).I64(0);
  PL_RETURN_IF_ERROR(view_.Put(dbs_.partners, IdView(id), last_end));
  PL_RETURN_IF_ERROR(PutPrice(view_, dbs_, id, c.ts, t.earn_price_micros, t.redeem_price_micros));
  return Code::kOk;
}

absl::StatusOr<Code> Applier::PartnerPrice(Ctx& c) {
  const Transaction& t = *c.tx;
  const Id id = PartnerAccountId(t.program, t.partner);
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> existing, view_.Get(dbs_.partners, IdView(id)));
  if (!existing) return Code::kPartnerNotFound;
  const int64_t from = t.time_ns != 0 ? t.time_ns : c.ts;
  PL_RETURN_IF_ERROR(PutPrice(view_, dbs_, id, from, t.earn_price_micros, t.redeem_price_micros));
  return Code::kOk;
}

// ---------------------------------------------------------------------------
// Earning and spending.

absl::StatusOr<Code> Applier::Earn(Ctx& c) {
  const Transaction& t = *c.tx;
  Slot* source = nullptr;
  if (!t.partner.empty()) {
    PL_ASSIGN_OR_RETURN(source, Account(c, PartnerAccountId(t.program, t.partner)));
    if (!source->exists || source->rec.kind != AccountKind::kPartner) return Code::kPartnerNotFound;
  } else {
    PL_ASSIGN_OR_RETURN(source, Account(c, SystemAccountId(t.program, "issuance")));
  }
  Slot* member = nullptr;
  PL_ASSIGN_OR_RETURN(Code code, Member(c, t.member, /*open_if_needed=*/true, &member));
  if (code != Code::kOk) return code;
  if (Code o = Post(c, source, member, t.points, PostingType::kPosted); o != Code::kOk) return o;

  const int64_t expires = t.time_ns != 0 ? t.time_ns : DefaultExpiry(c);
  const int64_t lock_days = t.lock_days >= 0 ? t.lock_days : int64_t{c.program.lock_days};
  const int64_t locked_until = lock_days > 0 ? c.ts + lock_days * kNanosPerDay : 0;
  PL_RETURN_IF_ERROR(Flush(c));
  PL_RETURN_IF_ERROR(AddLot(member->id, expires, c.seq, 0, t.points, locked_until));
  pieces_.assign({Piece{expires, t.points}});
  PL_RETURN_IF_ERROR(PutEffects(c.seq, pieces_));
  if (!t.partner.empty()) {
    PL_RETURN_IF_ERROR(AddFlow(c, source->id, FlowKind::kEarn, static_cast<int64_t>(t.points)));
  }
  return Code::kOk;
}

absl::StatusOr<Code> Applier::Redeem(Ctx& c) {
  const Transaction& t = *c.tx;
  Slot* sink = nullptr;
  if (!t.partner.empty()) {
    PL_ASSIGN_OR_RETURN(sink, Account(c, PartnerAccountId(t.program, t.partner)));
    if (!sink->exists || sink->rec.kind != AccountKind::kPartner) return Code::kPartnerNotFound;
  } else {
    PL_ASSIGN_OR_RETURN(sink, Account(c, SystemAccountId(t.program, "redemption")));
  }
  Slot* member = nullptr;
  PL_ASSIGN_OR_RETURN(Code code, Member(c, t.member, /*open_if_needed=*/false, &member));
  if (code != Code::kOk) return code;
  PL_RETURN_IF_ERROR(MemberLots(member->id, &lots_a_));
  if (AvailableIn(lots_a_, c.ts, {}) < t.points) return Code::kInsufficientPoints;
  if (Code o = Post(c, member, sink, t.points, PostingType::kPosted); o != Code::kOk) return o;

  PL_RETURN_IF_ERROR(Flush(c));
  pieces_.clear();
  PL_RETURN_IF_ERROR(Consume(lots_a_, c.ts, t.points, {}, &pieces_));
  PL_RETURN_IF_ERROR(PutEffects(c.seq, pieces_));
  if (!t.partner.empty()) {
    PL_RETURN_IF_ERROR(AddFlow(c, sink->id, FlowKind::kRedeem, static_cast<int64_t>(t.points)));
  }
  return Code::kOk;
}

absl::StatusOr<Code> Applier::Referral(Ctx& c) {
  const Transaction& t = *c.tx;
  if (t.member == t.member2) return Code::kSameAccount;
  PL_ASSIGN_OR_RETURN(Slot * source, Account(c, SystemAccountId(t.program, "referral")));
  Slot* referrer = nullptr;
  Slot* referee = nullptr;
  PL_ASSIGN_OR_RETURN(Code code, Member(c, t.member, true, &referrer));
  if (code != Code::kOk) return code;
  PL_ASSIGN_OR_RETURN(code, Member(c, t.member2, true, &referee));
  if (code != Code::kOk) return code;
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> rewarded,
                      view_.Get(dbs_.referees, IdView(referee->id)));
  if (rewarded) return Code::kReferralAlreadyRewarded;
  if (Code o = Post(c, source, referrer, t.points, PostingType::kPosted); o != Code::kOk) return o;
  if (Code o = Post(c, source, referee, t.points2, PostingType::kPosted); o != Code::kOk) return o;

  const int64_t expires = DefaultExpiry(c);
  PL_RETURN_IF_ERROR(Flush(c));
  PL_RETURN_IF_ERROR(AddLot(referrer->id, expires, c.seq, 0, t.points, 0));
  PL_RETURN_IF_ERROR(AddLot(referee->id, expires, c.seq, 1, t.points2, 0));
  pieces_.assign({Piece{expires, t.points}, Piece{expires, t.points2}});
  PL_RETURN_IF_ERROR(PutEffects(c.seq, pieces_));
  std::string seq_value;
  ByteWriter(&seq_value).U64(c.seq);
  PL_RETURN_IF_ERROR(view_.Put(dbs_.referees, IdView(referee->id), seq_value));
  return Code::kOk;
}

absl::StatusOr<Code> Applier::Transfer(Ctx& c) {
  const Transaction& t = *c.tx;
  if (t.member == t.member2) return Code::kSameAccount;
  Slot* from = nullptr;
  Slot* to = nullptr;
  PL_ASSIGN_OR_RETURN(Code code, Member(c, t.member, false, &from));
  if (code != Code::kOk) return code;
  PL_ASSIGN_OR_RETURN(code, Member(c, t.member2, true, &to));
  if (code != Code::kOk) return code;
  PL_RETURN_IF_ERROR(MemberLots(from->id, &lots_a_));
  if (AvailableIn(lots_a_, c.ts, {}) < t.points) return Code::kInsufficientPoints;
  if (Code o = Post(c, from, to, t.points, PostingType::kPosted); o != Code::kOk) return o;

  PL_RETURN_IF_ERROR(Flush(c));
  pieces_.clear();
  PL_RETURN_IF_ERROR(Consume(lots_a_, c.ts, t.points, {}, &pieces_));
  for (size_t i = 0; i < pieces_.size(); ++i) {
    PL_RETURN_IF_ERROR(AddLot(to->id, pieces_[i].expires_at_ns, c.seq, static_cast<uint32_t>(i),
                              pieces_[i].points, 0));
  }
  PL_RETURN_IF_ERROR(PutEffects(c.seq, pieces_));
  return Code::kOk;
}

absl::StatusOr<Code> Applier::Adjust(Ctx& c) {
  const Transaction& t = *c.tx;
  PL_ASSIGN_OR_RETURN(Slot * adjustment, Account(c, SystemAccountId(t.program, "adjustment")));
  Slot* member = nullptr;
  const bool up = t.delta > 0;
  const uint64_t n = up ? static_cast<uint64_t>(t.delta) : static_cast<uint64_t>(-t.delta);
  PL_ASSIGN_OR_RETURN(Code code, Member(c, t.member, /*open_if_needed=*/up, &member));
  if (code != Code::kOk) return code;
  if (up) {
    if (Code o = Post(c, adjustment, member, n, PostingType::kPosted); o != Code::kOk) return o;
    const int64_t expires = DefaultExpiry(c);
    PL_RETURN_IF_ERROR(Flush(c));
    PL_RETURN_IF_ERROR(AddLot(member->id, expires, c.seq, 0, n, 0));
    pieces_.assign({Piece{expires, n}});
    PL_RETURN_IF_ERROR(PutEffects(c.seq, pieces_));
    return Code::kOk;
  }
  PL_RETURN_IF_ERROR(MemberLots(member->id, &lots_a_));
  if (AvailableIn(lots_a_, c.ts, {}) < n) return Code::kInsufficientPoints;
  if (Code o = Post(c, member, adjustment, n, PostingType::kPosted); o != Code::kOk) return o;
  PL_RETURN_IF_ERROR(Flush(c));
  pieces_.clear();
  PL_RETURN_IF_ERROR(Consume(lots_a_, c.ts, n, {}, &pieces_));
  PL_RETURN_IF_ERROR(PutEffects(c.seq, pieces_));
  return Code::kOk;
}

// ---------------------------------------------------------------------------
// Holds.

absl::StatusOr<Code> Applier::Hold(Ctx& c) {
  const Transaction& t = *c.tx;
  PL_ASSIGN_OR_RETURN(Slot * holds, Account(c, SystemAccountId(t.program, "holds")));
  Slot* member = nullptr;
  PL_ASSIGN_OR_RETURN(Code code, Member(c, t.member, false, &member));
  if (code != Code::kOk) return code;
  PL_RETURN_IF_ERROR(MemberLots(member->id, &lots_a_));
  if (AvailableIn(lots_a_, c.ts, {}) < t.points) return Code::kInsufficientPoints;
  if (Code o = Post(c, member, holds, t.points, PostingType::kPending); o != Code::kOk) return o;

  PL_RETURN_IF_ERROR(Flush(c));
  // Field by field: assigning a new HoldRec would drop the strings' and
  // the pieces' capacity.
  HoldRec& hold = hold_;
  hold.program.assign(t.program);
  hold.member = member->id;
  hold.state = HoldState::kPending;
  hold.amount = t.points;
  hold.deadline_ns = c.ts + int64_t{t.timeout_s} * kNanosPerSecond;
  hold.hold_seq = c.seq;
  hold.pieces.clear();
  hold.capture_seq = 0;
  hold.sources.clear();
  PL_RETURN_IF_ERROR(
      Consume(lots_a_, c.ts, t.points, {}, &hold.pieces, rules_ >= 8 ? &hold.sources : nullptr));
  PL_RETURN_IF_ERROR(PutHold(t.id, hold));
  PL_RETURN_IF_ERROR(view_.Put(dbs_.hold_deadlines, DeadlineKey(hold.deadline_ns, t.id, &key2_buf_), ""));
  PL_RETURN_IF_ERROR(view_.Put(dbs_.member_holds, TwoIdKey(member->id, t.id, &key2_buf_), ""));
  return Code::kOk;
}

absl::Status Applier::GiveBack(const Ctx& c, const Id& member, int64_t expires_at_ns, uint64_t points,
                               const HoldRec::Source* from, uint32_t index) {
  if (points == 0) return absl::OkStatus();
  // Into the lot the points came from (format 8: an earn's own lot stays
  // its own for a reversal), made again under its own key if it is gone
  // (emptied, by the hold itself or since); before, and for a lot the
  // sweep has booked, as a new lot with the piece's expiry. A booked lot
  // made again would keep its points past the next sweep, whose id for it
  // is taken; its id is what tells.
  if (from != nullptr) {
    PL_ASSIGN_OR_RETURN(bool refilled, RefillLot(member, expires_at_ns, from->seq, from->index, points));
    if (refilled) return absl::OkStatus();
    const Id booked = ExpireId(c.tx->program, member, from->seq, from->index);
    PL_ASSIGN_OR_RETURN(std::optional<std::string_view> taken, view_.Get(dbs_.ids, IdView(booked)));
    // Unlocked: the hold took from it, so its lock had passed.
    if (!taken) return AddLot(member, expires_at_ns, from->seq, from->index, points, 0);
  }
  return AddLot(member, expires_at_ns, c.seq, index, points, 0);
}

absl::StatusOr<Code> Applier::EndHold(Ctx& c) {
  const Transaction& t = *c.tx;
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v, view_.Get(dbs_.holds, IdView(t.ref)));
  HoldRec& hold = hold_;  // DecodeHold sets every field
  if (v && !DecodeHold(*v, &hold)) return absl::DataLossError("holds: malformed entry");
  if (!v || hold.program != t.program) {
    // A timeout's id derives from its hold's: recorded before the hold
    // exists, it would be the one the sweep needs, and the hold would
    // never time out (found in review, session 19).
    if (t.kind == Kind::kHoldTimeout && rules_ >= 5) c.not_recorded = true;
    return Code::kHoldNotFound;
  }
  const bool due = c.ts >= hold.deadline_ns;
  if (hold.state != HoldState::kPending) return Code::kHoldNotPending;
  if (t.kind == Kind::kHoldTimeout && !due) {
    // The sweep's mistake (an early --as-of, a clock that stepped back),
    // not an outcome of the hold: refused without taking the derived id,
    // or the hold could never time out (docs/semantics.md).
    c.not_recorded = true;
    return Code::kHoldNotPending;
  }
  if (t.kind != Kind::kHoldTimeout && due) return Code::kHoldNotPending;
  const uint64_t captured = t.kind != Kind::kCapture ? 0 : t.points != 0 ? t.points : hold.amount;
  if (captured > hold.amount) return Code::kCaptureExceedsHold;

  PL_ASSIGN_OR_RETURN(Slot * member, Account(c, hold.member));
  PL_ASSIGN_OR_RETURN(Slot * holds, Account(c, SystemAccountId(t.program, "holds")));
  PL_ASSIGN_OR_RETURN(Slot * redemption, Account(c, SystemAccountId(t.program, "redemption")));
  if (!member->exists) return absl::DataLossError("holds: member account missing");
  if (member->rec.debits_pending < hold.amount || holds->rec.credits_pending < hold.amount) {
    return absl::DataLossError("holds: a hold's amount is past the pending points it voids");
  }
  Post(c, member, holds, hold.amount, PostingType::kVoid);
  if (Code o = Post(c, member, redemption, captured, PostingType::kPosted); o != Code::kOk) return o;

  PL_RETURN_IF_ERROR(Flush(c));
  // The hold's pieces pay for the capture first (oldest expiry first); what
  // is left goes back to the member (GiveBack).
  pieces_.clear();
  uint64_t to_capture = captured;
  for (uint32_t index = 0; index < hold.pieces.size(); ++index) {
    const Piece& piece = hold.pieces[index];
    const uint64_t take = std::min(to_capture, piece.points);
    if (take > 0) pieces_.push_back(Piece{piece.expires_at_ns, take});
    to_capture -= take;
    const HoldRec::Source* from =
        rules_ >= 8 && index < hold.sources.size() ? &hold.sources[index] : nullptr;
    PL_RETURN_IF_ERROR(GiveBack(c, member->id, piece.expires_at_ns, piece.points - take, from, index));
  }
  if (t.kind == Kind::kCapture) PL_RETURN_IF_ERROR(PutEffects(c.seq, pieces_));
  hold.state = t.kind == Kind::kCapture   ? HoldState::kCaptured
               : t.kind == Kind::kRelease ? HoldState::kReleased
                                          : HoldState::kTimedOut;
  if (t.kind == Kind::kCapture && rules_ >= 5) hold.capture_seq = c.seq;
  PL_RETURN_IF_ERROR(PutHold(t.ref, hold));
  PL_RETURN_IF_ERROR(view_.Del(dbs_.hold_deadlines, DeadlineKey(hold.deadline_ns, t.ref, &key2_buf_)).status());
  PL_RETURN_IF_ERROR(view_.Del(dbs_.member_holds, TwoIdKey(hold.member, t.ref, &key2_buf_)).status());
  c.result_points = captured;
  return Code::kOk;
}

// ---------------------------------------------------------------------------
// Expiry, settlement, closing.

absl::StatusOr<Code> Applier::Expire(Ctx& c) {
  const Transaction& t = *c.tx;
  if (rules_ >= 5 && t.lot_seq >= c.seq) {
    // A lot that cannot exist yet: recorded, this derived id would be the
    // one the sweep books that lot under, and the lot would never expire
    // (found in review, session 19). Request-only: the id stays free.
    c.not_recorded = true;
    return Code::kInvalidAmount;
  }
  PL_ASSIGN_OR_RETURN(Slot * member, Account(c, MemberAccountId(t.program, t.member)));
  if (!member->exists || member->rec.kind != AccountKind::kMember) return Code::kAccountNotFound;
  PL_ASSIGN_OR_RETURN(Slot * breakage, Account(c, SystemAccountId(t.program, "breakage")));
  LotEntry lot;
  key_buf_.clear();
  AppendLotKey(member->id, t.time_ns, t.lot_seq, t.lot_index, &key_buf_);
  PL_CHECK(key_buf_.size() == kLotKeyBytes);
  std::copy(key_buf_.begin(), key_buf_.end(), lot.key_bytes.begin());
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v, view_.Get(dbs_.lots, lot.key()));
  if (!v && rules_ >= 6) {
    // The lot there under another expiry: this expire is not the sweep's
    // for it, and recorded would take the id the sweep needs (format 6).
    PL_RETURN_IF_ERROR(MemberLots(member->id, &lots_a_));
    for (const LotEntry& e : lots_a_) {
      if (e.info.source_seq == t.lot_seq && e.info.index == t.lot_index) {
        c.not_recorded = true;
        return Code::kInvalidAmount;
      }
    }
  }
  if (!v) return Code::kOk;  // consumed meanwhile: nothing to book
  ByteReader r(*v);
  lot.info.remaining = r.U64();
  lot.info.locked_until_ns = r.I64();
  lot.info.expires_at_ns = t.time_ns;
  if (!r.done()) return absl::DataLossError("lots: malformed entry");
  if (rules_ >= 5 && t.time_ns == kNever) {
    // SPEC §2: expiry books lots "past their expiry"; a lot that never
    // expires is never due, however early --as-of is (found in review,
    // session 19). Request-only: the id stays free.
    c.not_recorded = true;
    return Code::kInvalidAmount;
  }
  if (Code o = Post(c, member, breakage, lot.info.remaining, PostingType::kPosted); o != Code::kOk) {
    return o;
  }
  PL_RETURN_IF_ERROR(Flush(c));
  PL_RETURN_IF_ERROR(TakeFromLot(lot, lot.info.remaining));
  c.result_points = lot.info.remaining;
  return Code::kOk;
}

absl::StatusOr<Code> Applier::Settle(Ctx& c) {
  const Transaction& t = *c.tx;
  const Id partner_id = PartnerAccountId(t.program, t.partner);
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v, view_.Get(dbs_.partners, IdView(partner_id)));
  if (!v) return Code::kPartnerNotFound;
  ByteReader r(*v);
  const int64_t from = r.I64();
  if (!r.done()) return absl::DataLossError("partners: malformed entry");
  const int64_t to = std::max(from, t.time_ns != 0 ? t.time_ns : c.ts);
  absl::StatusOr<Statement> statement = ComputeStatement(view_, dbs_, partner_id, from, to);
  // A period whose totals exceed int64 cannot be stated: refused, recorded.
  if (absl::IsOutOfRange(statement.status())) return Code::kOverflow;
  PL_RETURN_IF_ERROR(statement.status());
  c.statement = *std::move(statement);
  c.statement.program = t.program;
  c.statement.partner = t.partner;
  c.has_statement = true;

  PL_ASSIGN_OR_RETURN(Slot * partner, Account(c, partner_id));
  PL_ASSIGN_OR_RETURN(Slot * issuance, Account(c, SystemAccountId(t.program, "issuance")));
  PL_ASSIGN_OR_RETURN(Slot * redemption, Account(c, SystemAccountId(t.program, "redemption")));
  const int64_t e = c.statement.earned_points;
  const int64_t rd = c.statement.redeemed_points;
  Code o = e >= 0 ? Post(c, issuance, partner, static_cast<uint64_t>(e), PostingType::kPosted)
                  : Post(c, partner, issuance, static_cast<uint64_t>(-e), PostingType::kPosted);
  if (o != Code::kOk) return o;
  o = rd >= 0 ? Post(c, partner, redemption, static_cast<uint64_t>(rd), PostingType::kPosted)
              : Post(c, redemption, partner, static_cast<uint64_t>(-rd), PostingType::kPosted);
  if (o != Code::kOk) return o;
  PL_RETURN_IF_ERROR(Flush(c));
  std::string end;
  ByteWriter(&end).I64(to);
  PL_RETURN_IF_ERROR(view_.Put(dbs_.partners, IdView(partner_id), end));
  return Code::kOk;
}

// Enrollment: the only way into a program without auto_open (with it, an
// open is a convenience: the first earn would open the member anyway).
// Opening an open member is ok and changes nothing; a closed one stays
// closed (account_closed). No postings, no history row.
absl::StatusOr<Code> Applier::AccountOpen(Ctx& c) {
  const Transaction& t = *c.tx;
  PL_ASSIGN_OR_RETURN(Slot * s, Account(c, MemberAccountId(t.program, t.member)));
  if (s->exists) {
    if (s->rec.kind != AccountKind::kMember) return Code::kAccountNotFound;
    return s->rec.closed ? Code::kAccountClosed : Code::kOk;
  }
  s->rec.kind = AccountKind::kMember;
  s->rec.program = t.program;
  s->rec.name = t.member;
  s->dirty = true;
  PL_RETURN_IF_ERROR(Flush(c));
  return Code::kOk;
}

absl::StatusOr<Code> Applier::AccountClose(Ctx& c) {
  const Transaction& t = *c.tx;
  Slot* member = nullptr;
  PL_ASSIGN_OR_RETURN(Code code, Member(c, t.member, false, &member));
  if (code != Code::kOk) return code;
  PL_ASSIGN_OR_RETURN(Slot * holds, Account(c, SystemAccountId(t.program, "holds")));
  PL_ASSIGN_OR_RETURN(Slot * breakage, Account(c, SystemAccountId(t.program, "breakage")));

  // Void every pending hold; its points are forfeited with the rest.
  std::vector<std::pair<Id, HoldRec>> pending;
  {
    PL_ASSIGN_OR_RETURN(ViewCursor cursor,
                        ViewCursor::Open(view_, dbs_.member_holds, IdView(member->id)));
    PL_ASSIGN_OR_RETURN(bool found, cursor.SeekAtLeast(IdView(member->id)));
    while (found && cursor.key().substr(0, 16) == IdView(member->id)) {
      // member id ‖ hold id. Another length is damage, named as such
      // (before, a later check caught what it led to, less clearly).
      if (cursor.key().size() != 32) return absl::DataLossError("member_holds: malformed entry");
      ByteReader kr(cursor.key().substr(16));
      pending.emplace_back(kr.IdBytes(), HoldRec{});
      PL_ASSIGN_OR_RETURN(found, cursor.Next());
    }
  }
  uint64_t held = 0;  // Σ amounts, at most debits_pending: no overflow
  for (auto& [hold_id, hold] : pending) {
    PL_ASSIGN_OR_RETURN(std::optional<std::string_view> v, view_.Get(dbs_.holds, IdView(hold_id)));
    if (!v || !DecodeHold(*v, &hold)) return absl::DataLossError("holds: missing or malformed");
    // A damaged index could name another member's hold: voiding it would
    // spread the damage to that member's books.
    if (hold.member != member->id || hold.state != HoldState::kPending || hold.program != t.program) {
      return absl::DataLossError("member_holds: names a hold that is not this member's pending hold");
    }
    if (!CheckedAdd(&held, hold.amount)) return absl::DataLossError("holds: a member's holds overflow");
  }
  // One void posting for all of them (format 5): one per hold let a member
  // with a few hundred holds make a record past its limits, and closing
  // that account crashed the server (found in review, session 19).
  if (member->rec.debits_pending < held || holds->rec.credits_pending < held) {
    return absl::DataLossError("holds: a member's holds are past the pending points they void");
  }
  if (rules_ < 5) {
    for (const auto& [hold_id, hold] : pending) Post(c, member, holds, hold.amount, PostingType::kVoid);
  } else if (held > 0) {
    Post(c, member, holds, held, PostingType::kVoid);
  }
  const uint64_t posted = member->rec.credits_posted - member->rec.debits_posted;
  if (Code o = Post(c, member, breakage, posted, PostingType::kPosted); o != Code::kOk) return o;

  member->rec.closed = true;
  member->dirty = true;
  PL_RETURN_IF_ERROR(Flush(c));
  PL_RETURN_IF_ERROR(MemberLots(member->id, &lots_a_));
  for (const LotEntry& lot : lots_a_) PL_RETURN_IF_ERROR(TakeFromLot(lot, lot.info.remaining));
  for (auto& [hold_id, hold] : pending) {
    hold.state = HoldState::kReleased;
    PL_RETURN_IF_ERROR(PutHold(hold_id, hold));
    PL_RETURN_IF_ERROR(view_.Del(dbs_.hold_deadlines, DeadlineKey(hold.deadline_ns, hold_id, &key2_buf_)).status());
    PL_RETURN_IF_ERROR(view_.Del(dbs_.member_holds, TwoIdKey(member->id, hold_id, &key2_buf_)).status());
  }
  c.result_points = posted;
  return Code::kOk;
}

// ---------------------------------------------------------------------------
// Reversals (docs/semantics.md "Reversals").

absl::StatusOr<Code> Applier::Reverse(Ctx& c) {
  const Transaction& t = *c.tx;
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> seen, view_.Get(dbs_.ids, IdView(t.ref)));
  if (!seen) return Code::kOriginalNotFound;
  ByteReader sr(*seen);
  uint64_t original_seq = sr.U64();
  PL_ASSIGN_OR_RETURN(std::optional<TxRecord> original,
                      ReadRecord(view_, dbs_, original_seq));
  if (!original || !sr.done()) return absl::DataLossError("ids: dangling entry");
  if (original->tx.program != t.program) return Code::kOriginalNotFound;
  if (original->result.code != Code::kOk) return Code::kOriginalNotReversible;
  if (original->tx.kind == Kind::kHold && rules_ >= 5) {
    // SPEC §2: a captured hold is reversible. Named by the hold's own id
    // it is its capture, with one count of what was reversed for both ids.
    PL_ASSIGN_OR_RETURN(std::optional<std::string_view> hv, view_.Get(dbs_.holds, IdView(t.ref)));
    HoldRec hold;
    if (!hv || !DecodeHold(*hv, &hold)) return absl::DataLossError("holds: a hold's entry is missing or malformed");
    if (hold.capture_seq == 0) return Code::kOriginalNotReversible;  // not captured, or before format 5
    original_seq = hold.capture_seq;
    PL_ASSIGN_OR_RETURN(original, ReadRecord(view_, dbs_, original_seq));
    if (!original || original->tx.kind != Kind::kCapture) {
      return absl::DataLossError("holds: a captured hold names no capture");
    }
  }
  const Transaction& o = original->tx;

  uint64_t total = 0;
  switch (o.kind) {
    case Kind::kEarn: case Kind::kRedeem: case Kind::kTransfer: total = o.points; break;
    case Kind::kAdjust: total = o.delta > 0 ? uint64_t(o.delta) : uint64_t(-o.delta); break;
    case Kind::kCapture: total = original->result.points; break;
    case Kind::kReferral: total = o.points + o.points2; break;
    default: return Code::kOriginalNotReversible;
  }
  // Before format 3 a referral was reversed whole, once (docs/semantics.md).
  if (rules_ < 3 && o.kind == Kind::kReferral && t.points != 0 && t.points != total) {
    return Code::kOriginalNotReversible;
  }
  // What earlier reversals took: one sum, or for a referral reversed by
  // format 4 rules, one per leg (docs/storage.md, `reversed`).
  const std::string done_key = BeU64Key(original_seq);
  PL_ASSIGN_OR_RETURN(std::optional<std::string_view> dv, view_.Get(dbs_.reversed, done_key));
  uint64_t done = 0;
  std::array<uint64_t, 2> leg_done{};
  const bool referral = o.kind == Kind::kReferral;
  if (dv) {
    ByteReader dr(*dv);
    done = dr.U64();
    if (referral && dv->size() == 16) {
      leg_done = {done, dr.U64()};
      done += leg_done[1];
    } else if (referral) {
      // A format-3 sum counts what was asked, referrer first: that is
      // how many of each leg were asked for.
      leg_done[0] = std::min(done, o.points);
      leg_done[1] = done - leg_done[0];
    }
    if (!dr.done()) return absl::DataLossError("reversed: malformed entry");
  }
  if (rules_ < 3 && referral && done > 0) return Code::kReversalExceedsOriginal;
  const uint64_t amount = t.points != 0 ? t.points : total - done;
  if (amount == 0 || amount > total - done) return Code::kReversalExceedsOriginal;

  std::string value;
  absl::StatusOr<Code> code;
  if (o.kind == Kind::kEarn || referral || (o.kind == Kind::kAdjust && o.delta > 0)) {
    std::array<uint64_t, 2> taken{};
    code = ReverseIntoSource(c, *original, leg_done, amount, &taken);
    if (!referral) {
      ByteWriter(&value).U64(done + taken[0]);
    } else if (rules_ >= 4) {
      // Each leg counts what it gave back, so points a clawback could not
      // take stay reversible, from the leg they belong to (SPEC §2: the
      // sum of the reversals, what they took, never exceeds the original).
      ByteWriter(&value).U64(leg_done[0] + taken[0]);
      ByteWriter(&value).U64(leg_done[1] + taken[1]);
    } else {
      ByteWriter(&value).U64(done + amount);  // format 3: what was asked
    }
  } else if (o.kind == Kind::kTransfer) {
    uint64_t counted = 0;
    code = ReverseTransfer(c, *original, amount, &counted);
    ByteWriter(&value).U64(done + counted);
  } else {  // redeem, capture, adjust down
    code = ReverseIntoMember(c, *original, done, amount);
    ByteWriter(&value).U64(done + amount);
  }
  if (!code.ok()) return code.status();
  if (*code != Code::kOk) return *code;
  PL_RETURN_IF_ERROR(view_.Put(dbs_.reversed, done_key, value));
  return Code::kOk;
}

// Earn, adjust up and referral: each leg gives its points back from the
// original's own lot first, then from the member's other available lots.
// A referral's points are reversed referrer first: this reversal asks the
// referrer for what is left of theirs (a - leg_done[0]), up to `amount`,
// and the referee for the rest.
absl::StatusOr<Code> Applier::ReverseIntoSource(Ctx& c, const TxRecord& original,
                                                std::array<uint64_t, 2> leg_done, uint64_t amount,
                                                std::array<uint64_t, 2>* taken) {
  const Transaction& t = *c.tx;
  struct Leg {
    Slot* member = nullptr;
    Slot* source = nullptr;
    uint64_t want = 0;
    uint64_t take = 0;
    std::string own_key;
    std::vector<LotEntry>* lots = nullptr;
  };
  std::vector<Piece> created;
  {
    PL_ASSIGN_OR_RETURN(std::optional<std::string_view> ev,
                        view_.Get(dbs_.effects, BeU64Key(original.seq)));
    if (!ev || !DecodePieces(*ev, &created)) return absl::DataLossError("effects: missing");
  }
  const size_t legs_count = original.postings.size();
  if (legs_count < 1 || legs_count > 2 || created.size() != legs_count) {
    return absl::DataLossError("effects: the original's lots do not match its postings");
  }
  std::array<Leg, 2> legs;
  for (size_t i = 0; i < legs_count; ++i) {
    const Posting& p = original.postings[i];
    Leg& leg = legs[i];
    PL_ASSIGN_OR_RETURN(leg.source, Account(c, p.debit));
    PL_ASSIGN_OR_RETURN(leg.member, Account(c, p.credit));
    if (!leg.member->exists) return absl::DataLossError("reverse: member missing");
    if (legs_count == 1) {
      leg.want = amount;
    } else {
      const uint64_t referrer = std::min(amount, original.postings[0].points - leg_done[0]);
      leg.want = i == 0 ? referrer : amount - referrer;
    }
    // A leg this reversal takes nothing from may be closed. From format 4 a
    // referral leg's untaken points stay asked for, so with clawback_partial
    // a closed leg gives what it has, nothing (its points were forfeited at
    // the close), and the reversal goes on to the other leg; as
    // account_closed it would keep the referee's points out of reach.
    const bool gives_nothing = rules_ >= 4 && legs_count == 2 && t.clawback_partial;
    leg.lots = i == 0 ? &lots_a_ : &lots_b_;
    if (leg.want > 0 && leg.member->rec.closed) {
      if (!gives_nothing) return Code::kAccountClosed;
      leg.lots->clear();
      continue;  // take 0
    }
    leg.own_key = LotKey(leg.member->id, created[i].expires_at_ns, original.seq,
                         static_cast<uint32_t>(i));
    PL_RETURN_IF_ERROR(MemberLots(leg.member->id, leg.lots));
    uint64_t own = 0;
    for (const LotEntry& lot : *leg.lots) {
      if (lot.key() == leg.own_key) own = lot.info.remaining;
    }
    const uint64_t have = own + AvailableIn(*leg.lots, c.ts, leg.own_key);
    if (have < leg.want && !t.clawback_partial) return Code::kInsufficientPoints;
    leg.take = std::min(have, leg.want);
  }
  for (size_t i = 0; i < legs_count; ++i) {
    if (Code o = Post(c, legs[i].member, legs[i].source, legs[i].take, PostingType::kPosted);
        o != Code::kOk) {
      return o;
    }
  }
  PL_RETURN_IF_ERROR(Flush(c));
  *taken = {};
  for (size_t i = 0; i < legs_count; ++i) {
    Leg& leg = legs[i];
    uint64_t rest = leg.take;
    for (const LotEntry& lot : *leg.lots) {
      if (lot.key() != leg.own_key) continue;
      const uint64_t from_own = std::min(rest, lot.info.remaining);
      PL_RETURN_IF_ERROR(TakeFromLot(lot, from_own));
      rest -= from_own;
    }
    pieces_.clear();
    PL_RETURN_IF_ERROR(Consume(*leg.lots, c.ts, rest, leg.own_key, &pieces_));
    (*taken)[i] = leg.take;
    if (leg.source->rec.kind == AccountKind::kPartner && leg.take > 0) {
      PL_RETURN_IF_ERROR(
          AddFlow(c, leg.source->id, FlowKind::kEarn, -static_cast<int64_t>(leg.take), &original));
    }
  }
  c.result_points = (*taken)[0] + (*taken)[1];
  return Code::kOk;
}

// Redeem, adjust down and capture: points go back to the member as lots with
// the consumed pieces' expiry, last consumed first.
absl::StatusOr<Code> Applier::ReverseIntoMember(Ctx& c, const TxRecord& original,
                                                uint64_t done, uint64_t amount) {
  const Posting* main = nullptr;
  for (const Posting& p : original.postings) {
    if (p.type == PostingType::kPosted) main = &p;
  }
  if (main == nullptr) return absl::DataLossError("reverse: the original has no posted posting");
  PL_ASSIGN_OR_RETURN(Slot * member, Account(c, main->debit));
  PL_ASSIGN_OR_RETURN(Slot * sink, Account(c, main->credit));
  if (!member->exists) return absl::DataLossError("reverse: member missing");
  if (member->rec.closed) return Code::kAccountClosed;
  std::vector<Piece> consumed;
  {
    PL_ASSIGN_OR_RETURN(std::optional<std::string_view> ev,
                        view_.Get(dbs_.effects, BeU64Key(original.seq)));
    if (!ev || !DecodePieces(*ev, &consumed)) return absl::DataLossError("effects: missing");
  }
  if (Code o = Post(c, sink, member, amount, PostingType::kPosted); o != Code::kOk) return o;
  PL_RETURN_IF_ERROR(Flush(c));
  uint64_t skip = done;
  uint64_t rest = amount;
  uint32_t index = 0;
  for (auto it = consumed.rbegin(); it != consumed.rend() && rest > 0; ++it) {
    uint64_t part = it->points;
    const uint64_t skipped = std::min(skip, part);
    skip -= skipped;
    part -= skipped;
    const uint64_t give = std::min(part, rest);
    if (give == 0) continue;
    PL_RETURN_IF_ERROR(AddLot(member->id, it->expires_at_ns, c.seq, index++, give, 0));
    rest -= give;
  }
  if (rest != 0) return absl::DataLossError("effects: the original's pieces hold less than it took");
  if (sink->rec.kind == AccountKind::kPartner) {
    PL_RETURN_IF_ERROR(AddFlow(c, sink->id, FlowKind::kRedeem, -static_cast<int64_t>(amount), &original));
  }
  c.result_points = amount;
  return Code::kOk;
}

absl::StatusOr<Code> Applier::ReverseTransfer(Ctx& c, const TxRecord& original, uint64_t amount,
                                              uint64_t* taken) {
  if (original.postings.size() != 1) return absl::DataLossError("reverse: a transfer without one posting");
  PL_ASSIGN_OR_RETURN(Slot * from, Account(c, original.postings[0].debit));
  PL_ASSIGN_OR_RETURN(Slot * to, Account(c, original.postings[0].credit));
  if (!from->exists || !to->exists) return absl::DataLossError("reverse: member missing");
  if (from->rec.closed || to->rec.closed) return Code::kAccountClosed;
  PL_RETURN_IF_ERROR(MemberLots(to->id, &lots_a_));
  const uint64_t have = AvailableIn(lots_a_, c.ts, {});
  if (have < amount && !c.tx->clawback_partial) return Code::kInsufficientPoints;
  *taken = std::min(have, amount);
  if (Code o = Post(c, to, from, *taken, PostingType::kPosted); o != Code::kOk) return o;
  PL_RETURN_IF_ERROR(Flush(c));
  pieces_.clear();
  PL_RETURN_IF_ERROR(Consume(lots_a_, c.ts, *taken, {}, &pieces_));
  for (size_t i = 0; i < pieces_.size(); ++i) {
    PL_RETURN_IF_ERROR(AddLot(from->id, pieces_[i].expires_at_ns, c.seq, static_cast<uint32_t>(i),
                              pieces_[i].points, 0));
  }
  PL_RETURN_IF_ERROR(PutEffects(c.seq, pieces_));
  c.result_points = *taken;
  return Code::kOk;
}

}  // namespace pointledger::ledger
